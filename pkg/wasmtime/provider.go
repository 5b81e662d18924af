package wasmtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bytecodealliance/wasmtime-go/v39"
	"golang.org/x/sync/singleflight"
	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/krustlet/krustlet-go/pkg/provider"
)

const (
	// RuntimeName is the runtime's name in nodeInfo.containerRuntimeVersion.
	RuntimeName = "wasmtime"
	// Architecture is the Node's nodeInfo.architecture, as krustlet had it.
	Architecture = "wasm-wasi"
	// wasmtimeGoModule is the module whose version RuntimeVersion reports.
	wasmtimeGoModule = "github.com/bytecodealliance/wasmtime-go/v39"
	// fallbackVersion is reported when the build carries no module
	// information (keep it equal to go.mod's requirement).
	fallbackVersion = "39.0.1"
	// DefaultEpochInterval is how often the engine's epoch advances.
	DefaultEpochInterval = 10 * time.Millisecond
	// maxThreads is the Go runtime's thread limit the provider asks for:
	// every running guest holds one OS thread (see doc.go), and Go's
	// default of 10,000 would crash the whole node when reached.
	maxThreads = 20000
)

// Options configure a Provider. DataDir is required; the zero value of every
// other field has a default.
type Options struct {
	// DataDir is the provider's own directory: compiled modules are kept in
	// DataDir/compiled, per-run scratch files in DataDir/runs. It is created
	// if missing.
	DataDir string
	// AllowLocalModules lets images be local files, fs/ABSOLUTE_PATH
	// (krustlet's convention), for development.
	AllowLocalModules bool
	// Source fetches every image that is not a local file, e.g. from an OCI
	// registry. Nil: such images fail to pull with ErrImagePull.
	Source ModuleSource
	// Clock gives run timestamps and times grace periods. Default: the real
	// clock. Guest sleeps and the epoch ticker always use real time.
	Clock clock.Clock
	// Logger is used for work not tied to a caller's context (compiling,
	// runs ending). Default: klog.Background().
	Logger klog.Logger
	// EpochInterval is the period of the engine's epoch ticker: how long a
	// guest stuck in a compute loop may run once it is told to stop, and how
	// often a running guest's memory size is sampled. Default 10 ms; at most
	// one second.
	EpochInterval time.Duration
}

// Validate checks the options and fills in defaults.
func (o *Options) Validate() error {
	if o.DataDir == "" {
		return errors.New("wasmtime provider: DataDir is required")
	}
	abs, err := filepath.Abs(o.DataDir)
	if err != nil {
		return fmt.Errorf("wasmtime provider: DataDir: %w", err)
	}
	o.DataDir = abs
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.Logger.GetSink() == nil {
		o.Logger = klog.Background()
	}
	switch {
	case o.EpochInterval == 0:
		o.EpochInterval = DefaultEpochInterval
	case o.EpochInterval < 0 || o.EpochInterval > time.Second:
		return fmt.Errorf("wasmtime provider: EpochInterval %v is not in (0, 1s]", o.EpochInterval)
	}
	return nil
}

// Provider runs WASI preview 1 modules in this process, one wasmtime Store
// and one OS thread per run, sharing one Engine and one Linker. It is safe
// for concurrent use.
type Provider struct {
	opts    Options
	log     klog.Logger
	engine  *wasmtime.Engine
	linker  *wasmtime.Linker
	version string
	// procPipes: standard output goes through pipes named by
	// /proc/self/fd paths rather than FIFOs (see stdio).
	procPipes bool

	compileGroup singleflight.Group
	compiles     atomic.Int64 // modules compiled (not loaded from the cache)
	mu           sync.Mutex
	modules      map[string]*compiled // by module digest
	images       map[string]string    // image ID → module digest
	runs         map[string]*run      // by ContainerConfig.ID, while running

	stopTicker chan struct{}
	closeOnce  sync.Once
	tickerDone chan struct{}
}

var (
	_ provider.Provider      = (*Provider)(nil)
	_ provider.StatsProvider = (*Provider)(nil)
	_ provider.PodAdmitter   = (*Provider)(nil)
	_ provider.HealthChecker = (*Provider)(nil)
)

// New builds a provider and starts its epoch ticker; Close stops it.
func New(opts Options) (*Provider, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	for _, dir := range []string{opts.DataDir, filepath.Join(opts.DataDir, compiledDir)} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("wasmtime provider: %w", err)
		}
	}
	// Scratch files of runs of an earlier process are useless now.
	runsPath := filepath.Join(opts.DataDir, runsDir)
	if err := os.RemoveAll(runsPath); err != nil {
		return nil, fmt.Errorf("wasmtime provider: clearing %s: %w", runsPath, err)
	}
	if err := os.MkdirAll(runsPath, 0o700); err != nil {
		return nil, fmt.Errorf("wasmtime provider: %w", err)
	}

	quietRustBacktraces()
	if prev := debug.SetMaxThreads(maxThreads); prev > maxThreads {
		debug.SetMaxThreads(prev) // only ever raise the limit
	}

	engine := wasmtime.NewEngineWithConfig(engineConfig())
	linker := wasmtime.NewLinker(engine)
	if err := linker.DefineWasi(); err != nil {
		return nil, fmt.Errorf("wasmtime provider: defining WASI: %w", err)
	}
	if err := definePollOneoff(linker); err != nil {
		return nil, fmt.Errorf("wasmtime provider: %w", err)
	}
	p := &Provider{
		opts:       opts,
		log:        opts.Logger.WithName("wasmtime"),
		engine:     engine,
		linker:     linker,
		version:    RuntimeVersion(),
		procPipes:  procPipesWork(),
		modules:    map[string]*compiled{},
		images:     map[string]string{},
		runs:       map[string]*run{},
		stopTicker: make(chan struct{}),
		tickerDone: make(chan struct{}),
	}
	go p.tick()
	return p, nil
}

// engineSettings names every engine setting that changes compiled code; it
// is part of the compiled-module cache key.
const engineSettings = "epoch_interruption=true"

func engineConfig() *wasmtime.Config {
	cfg := wasmtime.NewConfig()
	cfg.SetEpochInterruption(true)
	return cfg
}

// tick advances the engine's epoch every EpochInterval, which is what lets
// the epoch-deadline callback of each running guest see its stop flag (see
// cgo.go). One goroutine serves every run.
func (p *Provider) tick() {
	defer close(p.tickerDone)
	t := time.NewTicker(p.opts.EpochInterval)
	defer t.Stop()
	for {
		select {
		case <-p.stopTicker:
			return
		case <-t.C:
			p.engine.IncrementEpoch()
		}
	}
}

// Close stops the epoch ticker. Call it once every run has ended: a guest
// still computing can no longer be interrupted afterwards.
func (p *Provider) Close() error {
	p.closeOnce.Do(func() {
		close(p.stopTicker)
		<-p.tickerDone
	})
	return nil
}

// quietRustBacktraces keeps wasmtime's errors from capturing a Rust stack
// trace for every trap: the anyhow crate does so when RUST_BACKTRACE=1 is set
// unless RUST_LIB_BACKTRACE=0, and the trace is both slow to take and noise
// in a container's termination message. Panics still honour RUST_BACKTRACE.
// Messages are stripped of a trace all the same (cleanMessage), since anyhow
// reads the variables once per process and may have done so already.
func quietRustBacktraces() {
	if _, set := os.LookupEnv("RUST_LIB_BACKTRACE"); !set {
		os.Setenv("RUST_LIB_BACKTRACE", "0")
	}
}

// RuntimeVersion is the version of wasmtime this binary runs: that of the
// wasmtime-go module in the build information, which follows wasmtime's own
// version, or the version this package was written against.
func RuntimeVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, m := range bi.Deps {
			if m.Path != wasmtimeGoModule {
				continue
			}
			if m.Replace != nil {
				m = m.Replace
			}
			if v, ok := strings.CutPrefix(m.Version, "v"); ok && v != "" {
				return v
			}
		}
	}
	return fallbackVersion
}

// Node returns what krustlet's wasi provider put on its Node, so that pods
// written for krustlet schedule unchanged.
func (p *Provider) Node() provider.NodeInfo {
	const arch = "wasm32-wasi"
	return provider.NodeInfo{
		Labels: map[string]string{
			v1.LabelArchStable: arch,
			v1.LabelOSStable:   arch,
		},
		Taints: []v1.Taint{
			{Key: v1.LabelArchStable, Value: arch, Effect: v1.TaintEffectNoSchedule},
			{Key: v1.LabelArchStable, Value: arch, Effect: v1.TaintEffectNoExecute},
		},
		RuntimeName:    RuntimeName,
		RuntimeVersion: p.version,
		Architecture:   Architecture,
	}
}

// ContainerStats reads a running container's usage: the CPU time of the
// thread that runs it since it started, and its linear memory size, sampled
// by the guest's own thread at every epoch tick and every blocking call.
func (p *Provider) ContainerStats(ctx context.Context, id string) (provider.ContainerStats, error) {
	p.mu.Lock()
	r := p.runs[id]
	p.mu.Unlock()
	if r == nil {
		return provider.ContainerStats{}, fmt.Errorf("container run %q is not running", id)
	}
	cpu, mem := r.usage()
	return provider.ContainerStats{Timestamp: p.opts.Clock.Now(), CPUNanos: cpu, MemoryBytes: mem}, nil
}
