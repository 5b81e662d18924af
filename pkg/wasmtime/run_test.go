package wasmtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	testingclock "k8s.io/utils/clock/testing"

	"github.com/krustlet/krustlet-go/pkg/provider"
	"github.com/krustlet/krustlet-go/test/framework/wasmbuild"
)

func TestHelloOutputReachesWriters(t *testing.T) {
	r := runArgs(t, "echo", "hello", "stderr", "oops", "echo", "bye")
	if r.status.ExitCode != 0 || r.status.Reason != "" {
		t.Errorf("status = %+v, want exit 0 and no reason", r.status)
	}
	if r.stdout != "hello\nbye\n" || r.stderr != "oops\n" {
		t.Errorf("stdout %q, stderr %q", r.stdout, r.stderr)
	}
	if r.status.StartedAt.IsZero() || r.status.FinishedAt.Before(r.status.StartedAt) {
		t.Errorf("times: started %v, finished %v", r.status.StartedAt, r.status.FinishedAt)
	}
}

func TestLargeOutputIsComplete(t *testing.T) {
	// More than a FIFO holds (64 KiB): the copier must keep up.
	big := strings.Repeat("x", 100_000)
	r := runArgs(t, "echo", big, "echo", big)
	if want := big + "\n" + big + "\n"; r.stdout != want {
		t.Errorf("stdout has %d bytes, want %d", len(r.stdout), len(want))
	}
}

func TestArgsAndEnv(t *testing.T) {
	p := shared(t)
	cfg, stdout, stderr := config(pull(t, p, testmod(t)), "args", "env", "GREETING", "assert-env", "EMPTY=", "assert-env", "GREETING=hi there")
	cfg.Env = []provider.EnvVar{{Name: "GREETING", Value: "hi there"}, {Name: "EMPTY"}}
	r := runToEnd(t, p, cfg, stdout, stderr)
	if r.status.ExitCode != 0 {
		t.Fatalf("status %+v, stderr %q", r.status, r.stderr)
	}
	want := "testmod\nargs\nenv\nGREETING\nassert-env\nEMPTY=\nassert-env\nGREETING=hi there\nhi there\n"
	if r.stdout != want {
		t.Errorf("stdout = %q, want %q", r.stdout, want)
	}
}

func TestExitCodes(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		code int32
	}{
		{"normal Go exit", []string{"echo", "x"}, 0},
		{"exit 0", []string{"exit", "0"}, 0},
		{"exit 3", []string{"exit", "3"}, 3},
		{"Go panic", []string{"panic"}, 2},
		{"unknown action", []string{"nope"}, 64},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runArgs(t, tc.args...)
			if r.status.ExitCode != tc.code || r.status.Reason != "" {
				t.Errorf("status = %+v, want code %d and no reason (the core derives it)", r.status, tc.code)
			}
		})
	}
}

func TestTrapReportedWithoutRustBacktrace(t *testing.T) {
	t.Setenv("RUST_BACKTRACE", "1")
	p := shared(t)
	for _, tc := range []struct {
		name, module string
		args         []string
		want         []string
		stdout       string
	}{
		{"unreachable", wasmbuild.MustBuildWAT(t, "trap"), nil, []string{"wasm trap: wasm `unreachable` instruction executed", "wasm backtrace:", "boom"}, "about to trap\n"},
		{"out of bounds", testmod(t), []string{"trap"}, []string{"wasm trap: out of bounds memory access", "memory fault at wasm address", "main.run"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, stdout, stderr := config(pull(t, p, tc.module), tc.args...)
			r := runToEnd(t, p, cfg, stdout, stderr)
			t.Logf("message: %s", r.status.Message)
			if r.status.ExitCode != ExitCodeTrap || r.status.Reason != ReasonError {
				t.Errorf("status = %+v, want %d/%s", r.status, ExitCodeTrap, ReasonError)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.status.Message, w) {
					t.Errorf("message %q lacks %q", r.status.Message, w)
				}
			}
			for _, bad := range []string{"Stack backtrace", "anyhow", "Caused by"} {
				if strings.Contains(r.status.Message, bad) {
					t.Errorf("message %q contains %q", r.status.Message, bad)
				}
			}
			if r.stdout != tc.stdout {
				t.Errorf("stdout = %q, want %q", r.stdout, tc.stdout)
			}
		})
	}
}

func TestMemoryLimitEndsAsOOMKilled(t *testing.T) {
	p := shared(t)
	const limit = 64 << 20
	growLoop := watModule(t, `(module
	  (memory (export "memory") 1)
	  (func (export "_start")
	    (loop $grow
	      (br_if $grow (i32.ne (memory.grow (i32.const 1)) (i32.const -1))))
	    unreachable))`)
	for _, tc := range []struct {
		name, module string
		args         []string
	}{
		// Go: the runtime prints "fatal error: out of memory", exits 2.
		{"Go allocation", testmod(t), []string{"alloc", "200", "echo", "unreachable"}},
		// One allocation far above the limit fails while memory is low:
		// only the runtime's message tells.
		{"Go single large allocation", testmod(t), []string{"alloc-once", "200", "echo", "unreachable"}},
		// Rust-like: memory.grow fails, the guest aborts with a trap.
		{"grow until refused, then trap", growLoop, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, stdout, stderr := config(pull(t, p, tc.module), tc.args...)
			cfg.Resources.MemoryLimitBytes = limit
			r := runToEnd(t, p, cfg, stdout, stderr)
			t.Logf("message: %s", r.status.Message)
			if r.status.ExitCode != ExitCodeKilled || r.status.Reason != ReasonOOMKilled {
				t.Errorf("status = %+v, want %d/%s", r.status, ExitCodeKilled, ReasonOOMKilled)
			}
			if strings.Contains(r.stdout, "unreachable") {
				t.Error("the guest went on after running out of memory")
			}
		})
	}
	// The node is fine: the same limit with a small allocation completes.
	cfg, stdout, stderr := config(pull(t, p, testmod(t)), "alloc", "10", "echo", "ok")
	cfg.Resources.MemoryLimitBytes = limit
	if r := runToEnd(t, p, cfg, stdout, stderr); r.status.ExitCode != 0 || r.stdout != "ok\n" {
		t.Errorf("after OOM runs: status %+v, stdout %q", r.status, r.stdout)
	}
}

func TestFailureUnrelatedToMemoryIsNotOOM(t *testing.T) {
	p := shared(t)
	cfg, stdout, stderr := config(pull(t, p, testmod(t)), "exit", "4")
	cfg.Resources.MemoryLimitBytes = 256 << 20
	if r := runToEnd(t, p, cfg, stdout, stderr); r.status.ExitCode != 4 || r.status.Reason != "" {
		t.Errorf("status = %+v, want exit 4, no reason", r.status)
	}
}

func TestStopEndsComputeLoop(t *testing.T) {
	p := shared(t)
	ctx := testContext(t)
	cfg, _, _ := config(pull(t, p, testmod(t)), "spin", "forever")
	c, err := p.StartContainer(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Stop(ctx, 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	st, _ := c.Wait(ctx)
	if st.ExitCode != ExitCodeKilled || st.Reason != ReasonError || !strings.Contains(st.Message, "grace period of 100ms") {
		t.Errorf("status = %+v", st)
	}
	if err := c.Stop(ctx, time.Second); err != nil {
		t.Errorf("stopping an ended run: %v", err)
	}
}

func TestStopEndsSleepAfterGrace(t *testing.T) {
	p := shared(t)
	ctx := testContext(t)
	cfg, stdout, _ := config(pull(t, p, testmod(t)), "echo", "sleeping", "sleep", "1h", "echo", "woke")
	c, err := p.StartContainer(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := c.Stop(ctx, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	t.Logf("Stop with a 2s grace period returned after %v", time.Since(start))
	st, _ := c.Wait(ctx)
	if st.ExitCode != ExitCodeKilled || st.Reason != ReasonError {
		t.Errorf("status = %+v", st)
	}
	if got := stdout.String(); got != "sleeping\n" {
		t.Errorf("stdout = %q", got)
	}
}

func TestStopLetsGuestFinishWithinGrace(t *testing.T) {
	p := shared(t)
	ctx := testContext(t)
	cfg, stdout, _ := config(pull(t, p, testmod(t)), "sleep", "200ms", "echo", "done", "exit", "5")
	c, err := p.StartContainer(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Stop(ctx, hangLimit); err != nil {
		t.Fatal(err)
	}
	st, _ := c.Wait(ctx)
	if st.ExitCode != 5 || st.Reason != "" || stdout.String() != "done\n" {
		t.Errorf("status = %+v, stdout %q: want the guest's own exit", st, stdout.String())
	}
}

func TestStopGracePeriodFollowsTheClock(t *testing.T) {
	fake := testingclock.NewFakeClock(time.Now())
	p := newProvider(t, Options{DataDir: sharedCacheCopy(t), AllowLocalModules: true, Clock: fake})
	ctx := testContext(t)
	cfg, _, _ := config(pull(t, p, testmod(t)), "sleep", "1h")
	c, err := p.StartContainer(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- c.Stop(ctx, time.Hour) }()
	for !fake.HasWaiters() {
		select {
		case err := <-stopped:
			t.Fatalf("Stop returned before the grace period passed: %v", err)
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(time.Millisecond):
		}
	}
	fake.Step(time.Hour)
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	if st, _ := c.Wait(ctx); st.ExitCode != ExitCodeKilled || !strings.Contains(st.Message, "1h0m0s") {
		t.Errorf("status = %+v", st)
	}
}

func TestStopWithZeroGrace(t *testing.T) {
	p := shared(t)
	ctx := testContext(t)
	cfg, _, _ := config(pull(t, p, testmod(t)), "sleep", "1h")
	c, err := p.StartContainer(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Stop(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if st, _ := c.Wait(ctx); st.ExitCode != ExitCodeKilled || st.Message != "stopped by the node" {
		t.Errorf("status = %+v", st)
	}
}

func TestMounts(t *testing.T) {
	p := shared(t)
	img := pull(t, p, testmod(t))
	ro, rw := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(ro, "config.txt"), []byte("from host"), 0o644); err != nil {
		t.Fatal(err)
	}
	mounts := []provider.Mount{
		{HostPath: ro, ContainerPath: "/config", ReadOnly: true},
		{HostPath: rw, ContainerPath: "/data"},
	}
	for _, tc := range []struct {
		name   string
		args   []string
		code   int32
		stdout string
	}{
		{"read a read-only mount", []string{"read", "/config/config.txt", "assert-file", "/config/config.txt", "from host"}, 0, "from host"},
		{"write to a read-only mount", []string{"write", "/config/new.txt", "x"}, 11, ""},
		{"overwrite in a read-only mount", []string{"write", "/config/config.txt", "x"}, 11, ""},
		{"write to a writable mount", []string{"write", "/data/out.txt", "written", "assert-file", "/data/out.txt", "written"}, 0, ""},
		{"read outside the mounts", []string{"read", "/etc/passwd"}, 1, ""},
		{"escape a mount with ..", []string{"read", "/data/../../../../etc/passwd"}, 1, ""},
		{"list the mounts", []string{"ls", "/config"}, 0, "config.txt\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, stdout, stderr := config(img, tc.args...)
			cfg.Mounts = mounts
			r := runToEnd(t, p, cfg, stdout, stderr)
			if r.status.ExitCode != tc.code || r.stdout != tc.stdout {
				t.Errorf("status %+v, stdout %q, stderr %q; want code %d, stdout %q", r.status, r.stdout, r.stderr, tc.code, tc.stdout)
			}
		})
	}
	if b, err := os.ReadFile(filepath.Join(rw, "out.txt")); err != nil || string(b) != "written" {
		t.Errorf("host sees %q, %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(ro, "new.txt")); err == nil {
		t.Error("the guest created a file in a read-only mount")
	}
}

func TestWorkingDirIsPWD(t *testing.T) {
	p := shared(t)
	cfg, stdout, stderr := config(pull(t, p, testmod(t)), "cwd", "write", "rel.txt", "x")
	dir := t.TempDir()
	cfg.Mounts = []provider.Mount{{HostPath: dir, ContainerPath: "/work"}}
	cfg.WorkingDir = "/work"
	r := runToEnd(t, p, cfg, stdout, stderr)
	if r.status.ExitCode != 0 || r.stdout != "/work\n" {
		t.Errorf("status %+v, stdout %q, stderr %q", r.status, r.stdout, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "rel.txt")); err != nil {
		t.Errorf("relative write did not land in the working directory: %v", err)
	}
}

func TestStartErrors(t *testing.T) {
	p := shared(t)
	ctx := testContext(t)
	img := pull(t, p, testmod(t))
	file := filepath.Join(t.TempDir(), "settings.json")
	os.WriteFile(file, []byte("{}"), 0o644)
	missing := pull(t, p, watModule(t, `(module
	  (import "env" "host_log" (func (param i32)))
	  (import "wasi_snapshot_preview1" "sock_open" (func (param i32) (result i32)))
	  (memory (export "memory") 1)
	  (func (export "_start")))`))

	for _, tc := range []struct {
		name   string
		img    provider.Image
		mutate func(*provider.ContainerConfig)
		want   []string
	}{
		{"missing imports", missing, nil, []string{"env::host_log", "wasi_snapshot_preview1::sock_open", "WASI preview 1"}},
		{"memory minimum above the limit", img, func(c *provider.ContainerConfig) { c.Resources.MemoryLimitBytes = 1 << 20 }, []string{"needs 2.", "memory limit of 1.0 MiB"}},
		{"file mount", img, func(c *provider.ContainerConfig) {
			c.Mounts = []provider.Mount{{HostPath: file, ContainerPath: "/etc/settings.json"}}
		}, []string{"is a file", "only directories", "subPath"}},
		{"mount source missing", img, func(c *provider.ContainerConfig) {
			c.Mounts = []provider.Mount{{HostPath: file + ".nope", ContainerPath: "/x"}}
		}, []string{"no such file"}},
		{"image not pulled", provider.Image{Ref: "fs//nope.wasm", ID: "fs//nope.wasm@sha256:00"}, nil, []string{"has not been pulled"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, _, _ := config(tc.img)
			if tc.mutate != nil {
				tc.mutate(&cfg)
			}
			_, err := p.StartContainer(ctx, cfg)
			if !errors.Is(err, provider.ErrCreateContainer) {
				t.Fatalf("err = %v, want ErrCreateContainer", err)
			}
			t.Logf("error: %v", err)
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestDuplicateRunID(t *testing.T) {
	p := shared(t)
	ctx := testContext(t)
	cfg, _, _ := config(pull(t, p, testmod(t)), "sleep", "1h")
	c, err := p.StartContainer(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop(ctx, 0)
	if _, err := p.StartContainer(ctx, cfg); !errors.Is(err, provider.ErrCreateContainer) {
		t.Errorf("second start with one ID: %v", err)
	}
}

func TestManyConcurrentRuns(t *testing.T) {
	p := shared(t)
	img := pull(t, p, testmod(t))
	const n = 200
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			cfg, stdout, _ := config(img, "echo", fmt.Sprint("run ", i))
			ctx := testContext(t)
			c, err := p.StartContainer(ctx, cfg)
			if err != nil {
				errs <- err
				return
			}
			st, err := c.Wait(ctx)
			if err == nil && (st.ExitCode != 0 || stdout.String() != fmt.Sprintf("run %d\n", i)) {
				err = fmt.Errorf("run %d: status %+v, stdout %q", i, st, stdout.String())
			}
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestStoppedRunsLeakNothing(t *testing.T) {
	p := shared(t)
	ctx := testContext(t)
	img := pull(t, p, testmod(t))
	runArgs(t, "echo", "warm up")
	fds0, threads0 := countFDs(t), countThreads(t)
	for _, args := range [][]string{{"sleep", "1h"}, {"spin", "forever"}, {"echo", "x"}} {
		for range 10 {
			cfg, _, _ := config(img, args...)
			c, err := p.StartContainer(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Stop(ctx, 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Threads exit asynchronously after their goroutine returns.
	deadline := time.Now().Add(hangLimit)
	for countThreads(t) > threads0+2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if fds := countFDs(t); fds > fds0 {
		t.Errorf("open files: %d before, %d after", fds0, fds)
	}
	if th := countThreads(t); th > threads0+2 {
		t.Errorf("threads: %d before, %d after", threads0, th)
	}
	if n := len(p.runs); n != 0 {
		t.Errorf("%d runs still registered", n)
	}
	entries, _ := os.ReadDir(filepath.Join(p.opts.DataDir, runsDir))
	if len(entries) != 0 {
		t.Errorf("scratch files left: %v", entries)
	}
}

func TestContainerStats(t *testing.T) {
	p := shared(t)
	ctx := testContext(t)
	cfg, _, _ := config(pull(t, p, testmod(t)), "alloc", "8", "spin", "forever")
	c, err := p.StartContainer(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var st provider.ContainerStats
	for st.CPUNanos < uint64(50*time.Millisecond) || st.MemoryBytes < 8<<20 {
		if ctx.Err() != nil {
			t.Fatalf("stats never showed the run's use: %+v", st)
		}
		time.Sleep(10 * time.Millisecond)
		if st, err = p.ContainerStats(ctx, cfg.ID); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("stats: cpu %v, memory %s", time.Duration(st.CPUNanos), mib(st.MemoryBytes))
	if st.Timestamp.IsZero() {
		t.Error("no timestamp")
	}
	c.Stop(ctx, 0)
	if _, err := p.ContainerStats(ctx, cfg.ID); err == nil {
		t.Error("stats of an ended run succeeded")
	}
}

func TestOutputWriterFailureDoesNotBlockGuest(t *testing.T) {
	p := shared(t)
	cfg, _, _ := config(pull(t, p, testmod(t)), "echo", strings.Repeat("y", 200_000), "exit", "0")
	cfg.Stdout = failingWriter{}
	cfg.Stderr = nil
	ctx := testContext(t)
	c, err := p.StartContainer(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := c.Wait(ctx); err != nil || st.ExitCode != 0 {
		t.Errorf("status %+v, %v", st, err)
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func countFDs(t testing.TB) int {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	return len(entries)
}

func countThreads(t testing.TB) int {
	entries, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Skip("no /proc/self/task")
	}
	return len(entries)
}

// sharedCacheCopy returns a fresh data dir that holds a copy of the shared
// provider's compiled cache, so a provider with special options starts
// without compiling.
func sharedCacheCopy(t testing.TB) string {
	t.Helper()
	p := shared(t)
	pull(t, p, testmod(t))
	dir := t.TempDir()
	src := filepath.Join(p.opts.DataDir, compiledDir)
	dst := filepath.Join(dir, compiledDir)
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestFIFOFallback(t *testing.T) {
	p := newProvider(t, Options{DataDir: sharedCacheCopy(t), AllowLocalModules: true})
	if !p.procPipes {
		t.Log("this machine uses FIFOs already")
	}
	p.procPipes = false // as on a node without /proc
	img := pull(t, p, testmod(t))
	big := strings.Repeat("z", 100_000)
	cfg, stdout, stderr := config(img, "echo", big, "stderr", "to stderr")
	if r := runToEnd(t, p, cfg, stdout, stderr); r.status.ExitCode != 0 || r.stdout != big+"\n" || r.stderr != "to stderr\n" {
		t.Errorf("status %+v, %d bytes of stdout, stderr %q", r.status, len(r.stdout), r.stderr)
	}
	ctx := testContext(t)
	cfg, _, _ = config(img, "sleep", "1h")
	c, err := p.StartContainer(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Stop(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(filepath.Join(p.opts.DataDir, runsDir)); len(entries) != 0 {
		t.Errorf("scratch files left: %v", entries)
	}
}
