package wasmtime

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bytecodealliance/wasmtime-go/v39"

	"github.com/krustlet/krustlet-go/pkg/provider"
)

// Run with: go test -run '^$' -bench . -benchtime 1x ./pkg/wasmtime/
// (the density benchmarks start hundreds of guests per iteration).

// BenchmarkFirstStart is a pull, start and run of the Go test module on a
// node that has never compiled it.
func BenchmarkFirstStart(b *testing.B) {
	module := testmod(b)
	for b.Loop() {
		p := newProvider(b, Options{AllowLocalModules: true})
		cfg, stdout, stderr := config(pull(b, p, module), "echo", "hi")
		runToEnd(b, p, cfg, stdout, stderr)
		p.Close()
	}
}

// BenchmarkCachedStart is the same on a node that compiled it before (a
// new provider on the same data dir: the module comes from the cache).
func BenchmarkCachedStart(b *testing.B) {
	module := testmod(b)
	dir := sharedCacheCopy(b)
	for b.Loop() {
		p := newProvider(b, Options{DataDir: dir, AllowLocalModules: true})
		cfg, stdout, stderr := config(pull(b, p, module), "echo", "hi")
		runToEnd(b, p, cfg, stdout, stderr)
		p.Close()
		if p.compiles.Load() != 0 {
			b.Fatal("compiled despite the cache")
		}
	}
}

// BenchmarkRun is one short run of a module already loaded: store, WASI
// context, FIFOs, thread, instantiation, the guest's own start-up, exit.
func BenchmarkRun(b *testing.B) {
	p := shared(b)
	img := pull(b, p, testmod(b))
	for b.Loop() {
		cfg, stdout, stderr := config(img, "exit", "0")
		runToEnd(b, p, cfg, stdout, stderr)
	}
}

// BenchmarkInstantiate is the instantiation alone: a store with WASI and
// the module instantiated through the provider's linker.
func BenchmarkInstantiate(b *testing.B) {
	p := shared(b)
	img := pull(b, p, testmod(b))
	mod := p.modules[p.images[img.ID]]
	for b.Loop() {
		store := wasmtime.NewStore(p.engine)
		store.SetWasi(wasmtime.NewWasiConfig())
		if _, err := p.linker.Instantiate(store, mod.module); err != nil {
			b.Fatal(err)
		}
		store.Close()
	}
}

// BenchmarkStopLatency is how long a guest in a compute loop takes to end
// once forced, for several epoch intervals.
func BenchmarkStopLatency(b *testing.B) {
	for _, interval := range []time.Duration{time.Millisecond, 10 * time.Millisecond, 100 * time.Millisecond} {
		b.Run("epoch="+interval.String(), func(b *testing.B) {
			p := newProvider(b, Options{DataDir: sharedCacheCopy(b), AllowLocalModules: true, EpochInterval: interval})
			img := pull(b, p, testmod(b))
			ctx := testContext(b)
			var total time.Duration
			for b.Loop() {
				cfg, _, _ := config(img, "spin", "forever")
				c, err := p.StartContainer(ctx, cfg)
				if err != nil {
					b.Fatal(err)
				}
				time.Sleep(20 * time.Millisecond) // let it spin
				start := time.Now()
				c.Stop(ctx, 0)
				total += time.Since(start)
			}
			b.ReportMetric(float64(total.Microseconds())/float64(b.N), "µs-to-stop")
		})
	}
}

// BenchmarkComputeOverhead is a fixed computation (200 million loop
// iterations) under several epoch intervals: the cost of epoch checks and
// of the deadline callback.
func BenchmarkComputeOverhead(b *testing.B) {
	for _, interval := range []time.Duration{time.Millisecond, 10 * time.Millisecond, 100 * time.Millisecond} {
		b.Run("epoch="+interval.String(), func(b *testing.B) {
			p := newProvider(b, Options{DataDir: sharedCacheCopy(b), AllowLocalModules: true, EpochInterval: interval})
			img := pull(b, p, testmod(b))
			for b.Loop() {
				cfg, stdout, stderr := config(img, "loop", "200")
				runToEnd(b, p, cfg, stdout, stderr)
			}
		})
	}
}

// BenchmarkSleepingRuns starts N guests that sleep, and reports the node's
// resident memory and threads per guest.
func BenchmarkSleepingRuns(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprintf("runs=%d", n), func(b *testing.B) {
			p := shared(b)
			img := pull(b, p, testmod(b))
			ctx := testContext(b)
			for b.Loop() {
				runtime.GC()
				debug.FreeOSMemory()
				rss0, threads0 := rssBytes(b), countThreads(b)
				runs := make([]provider.Container, n)
				ready := make([]*readyWriter, n)
				for i := range runs {
					cfg, _, _ := config(img, "echo", "ready", "sleep", "1h")
					ready[i] = newReadyWriter()
					cfg.Stdout, cfg.Stderr = ready[i], io.Discard
					c, err := p.StartContainer(ctx, cfg)
					if err != nil {
						b.Fatal(err)
					}
					runs[i] = c
				}
				for _, r := range ready {
					<-r.ch // every guest is asleep
				}
				runtime.GC()
				rss, threads := rssBytes(b), countThreads(b)
				b.ReportMetric(float64(rss-rss0)/float64(n)/(1<<20), "RSS-MiB/run")
				b.ReportMetric(float64(threads-threads0)/float64(n), "threads/run")
				var wg sync.WaitGroup
				for _, c := range runs {
					wg.Go(func() { c.Stop(ctx, 0) })
				}
				wg.Wait()
			}
		})
	}
}

// readyWriter signals once the guest wrote its first line.
type readyWriter struct {
	once sync.Once
	ch   chan struct{}
}

func newReadyWriter() *readyWriter { return &readyWriter{ch: make(chan struct{})} }

func (w *readyWriter) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte("\n")) {
		w.once.Do(func() { close(w.ch) })
	}
	return len(p), nil
}

func rssBytes(tb testing.TB) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		tb.Skip("no /proc/self/status")
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			return kb << 10
		}
	}
	tb.Skip("no VmRSS")
	return 0
}
