package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/krustlet/krustlet-go/test/framework/controlplane"
)

// TestBenchSmoke runs the quick variant of the benchmarks (make
// bench-smoke: every scenario of hack/bench with small numbers, on a
// control plane of its own, beside a kwok node) so that the harness never
// rots. It fails when a scenario errors, never on a performance number.
func TestBenchSmoke(t *testing.T) {
	root, err := controlplane.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Minute)
	defer cancel()
	dir := t.TempDir()
	// hack/bench is a module of its own (its plotting dependencies stay
	// out of the product's go.mod): build it, then run the binary, so that
	// a timeout reaches the bench itself and it stops what it started.
	bench := filepath.Join(dir, "bench")
	build := exec.CommandContext(ctx, "go", "build", "-o", bench, ".")
	build.Dir = filepath.Join(root, "hack", "bench")
	build.Env = append(os.Environ(), "GOWORK=off")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building hack/bench: %v\n%s", err, out)
	}
	out := filepath.Join(dir, "report")
	cmd := exec.CommandContext(ctx, bench, "-smoke", "-out", out, "-krustlet", krustletBin)
	cmd.Dir = build.Dir
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = time.Minute
	start := time.Now()
	output, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("bench -smoke failed after %v: %v\n%s", time.Since(start).Round(time.Second), err, output)
	}
	for _, f := range []string{"report.md", "results.json", "latency-1.png", "throughput.png", "density.png"} {
		if fi, err := os.Stat(filepath.Join(out, f)); err != nil || fi.Size() == 0 {
			t.Errorf("bench -smoke wrote no %s: %v", f, err)
		}
	}
	lines := strings.Split(strings.TrimSpace(string(output)), "\n")
	t.Logf("bench -smoke passed in %v; its last lines:\n%s", time.Since(start).Round(time.Second), strings.Join(lines[max(0, len(lines)-5):], "\n"))
}
