package wasmtime

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/bytecodealliance/wasmtime-go/v39"
	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2/ktesting"

	"github.com/krustlet/krustlet-go/pkg/provider"
	"github.com/krustlet/krustlet-go/test/framework/wasmbuild"
)

// hangLimit bounds every wait in these tests: it catches hangs, it is not
// a performance assertion.
const hangLimit = 60 * time.Second

var (
	sharedOnce sync.Once
	sharedP    *Provider
	sharedErr  error
	sharedDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if sharedP != nil {
		sharedP.Close()
	}
	if sharedDir != "" {
		os.RemoveAll(sharedDir)
	}
	os.Exit(code)
}

// shared returns a provider that tests without special options share, so
// that the test module is compiled once for the package.
func shared(t testing.TB) *Provider {
	t.Helper()
	sharedOnce.Do(func() {
		sharedDir, sharedErr = os.MkdirTemp("", "krustlet-wasmtime-test-")
		if sharedErr == nil {
			sharedP, sharedErr = New(Options{DataDir: sharedDir, AllowLocalModules: true})
		}
	})
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	return sharedP
}

// newProvider returns a provider of its own for t.
func newProvider(t testing.TB, opts Options) *Provider {
	t.Helper()
	if opts.DataDir == "" {
		opts.DataDir = t.TempDir()
	}
	p, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func testContext(t testing.TB) context.Context {
	ctx := context.Background()
	if _, bench := t.(*testing.B); !bench {
		_, ctx = ktesting.NewTestContext(t)
	}
	ctx, cancel := context.WithTimeout(ctx, hangLimit)
	t.Cleanup(cancel)
	return ctx
}

// testmod returns the path of the general-purpose test module.
func testmod(t testing.TB) string { return wasmbuild.MustBuild(t, "testmod") }

// watModule compiles WebAssembly text into a module file.
func watModule(t testing.TB, wat string) string {
	t.Helper()
	wasm, err := wasmtime.Wat2Wasm(wat)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "module.wasm")
	if err := os.WriteFile(path, wasm, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func pull(t testing.TB, p *Provider, path string) provider.Image {
	t.Helper()
	img, err := p.PullImage(testContext(t), provider.PullRequest{Image: "fs/" + path, Policy: v1.PullIfNotPresent})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// syncBuffer is a bytes.Buffer safe for concurrent use, like the core's log
// writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var runSeq struct {
	sync.Mutex
	n int
}

// config returns a ContainerConfig for img with argv args and fresh
// output buffers.
func config(img provider.Image, args ...string) (provider.ContainerConfig, *syncBuffer, *syncBuffer) {
	runSeq.Lock()
	runSeq.n++
	n := runSeq.n
	runSeq.Unlock()
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	return provider.ContainerConfig{
		ID:        fmt.Sprintf("uid-%d_app_0", n),
		PodUID:    fmt.Sprintf("uid-%d", n),
		Namespace: "default",
		PodName:   "pod",
		Name:      "app",
		Image:     img,
		Args:      append([]string{"testmod"}, args...),
		Stdout:    stdout,
		Stderr:    stderr,
	}, stdout, stderr
}

// result is what a run left behind.
type result struct {
	status         provider.ExitStatus
	stdout, stderr string
}

// runToEnd starts cfg and waits for it.
func runToEnd(t testing.TB, p *Provider, cfg provider.ContainerConfig, stdout, stderr *syncBuffer) result {
	t.Helper()
	ctx := testContext(t)
	c, err := p.StartContainer(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return result{st, stdout.String(), stderr.String()}
}

// runArgs runs the test module with args on the shared provider.
func runArgs(t testing.TB, args ...string) result {
	t.Helper()
	p := shared(t)
	cfg, stdout, stderr := config(pull(t, p, testmod(t)), args...)
	return runToEnd(t, p, cfg, stdout, stderr)
}
