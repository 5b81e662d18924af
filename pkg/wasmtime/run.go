package wasmtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bytecodealliance/wasmtime-go/v39"
	"k8s.io/klog/v2"

	"github.com/krustlet/krustlet-go/pkg/provider"
)

// run is one run of a container: one Store, one OS thread.
type run struct {
	p   *Provider
	cfg provider.ContainerConfig
	mod *compiled
	log klog.Logger
	g   guest // freed by the guest's goroutine once ended is set

	stdio     *stdio
	wasiBase  time.Time // zero of the guest's monotonic clock (see poll)
	startedAt time.Time

	forced      atomic.Bool
	forcedGrace atomic.Int64 // grace period of the Stop that forced the run
	forceOnce   sync.Once
	stopCh      chan struct{} // closed when the node forces the run to end

	done chan struct{} // closed once the run ended and its output drained

	mu       sync.Mutex
	ended    bool // the guest's thread is gone: g is no longer valid
	status   provider.ExitStatus
	cpuFinal uint64
	memFinal uint64
}

var _ provider.Container = (*run)(nil)

// StartContainer starts one run of cfg's module on its own OS thread and
// returns once the module is instantiated and its _start function called.
//
// Errors wrap provider.ErrCreateContainer: the image was not pulled, a mount
// is not a directory, the module imports what WASI preview 1 does not
// provide, or needs more memory at start than its limit; see doc.go.
func (p *Provider) StartContainer(ctx context.Context, cfg provider.ContainerConfig) (provider.Container, error) {
	logger := klog.FromContext(ctx).WithValues("pod", klog.KRef(cfg.Namespace, cfg.PodName), "container", cfg.Name, "runID", cfg.ID)
	if cfg.ID == "" {
		return nil, fmt.Errorf("%w: the run has no ID", provider.ErrCreateContainer)
	}
	// PullImage returns once the module is compiled and loaded, so a
	// pulled image's module is in memory.
	p.mu.Lock()
	mod := p.modules[p.images[cfg.Image.ID]]
	p.mu.Unlock()
	if mod == nil {
		return nil, fmt.Errorf("%w: image %q (%s) has not been pulled on this node", provider.ErrCreateContainer, cfg.Image.Ref, cfg.Image.ID)
	}
	if err := checkRunnable(mod, cfg); err != nil {
		return nil, fmt.Errorf("%w: %w", provider.ErrCreateContainer, err)
	}

	r := &run{
		p:      p,
		cfg:    cfg,
		mod:    mod,
		log:    logger,
		stopCh: make(chan struct{}),
		done:   make(chan struct{}),
	}
	p.mu.Lock()
	if _, dup := p.runs[cfg.ID]; dup {
		p.mu.Unlock()
		return nil, fmt.Errorf("%w: a run with ID %q is already running", provider.ErrCreateContainer, cfg.ID)
	}
	p.runs[cfg.ID] = r
	p.mu.Unlock()

	r.g = newGuest()
	started := make(chan error, 1)
	go r.main(started)
	if err := <-started; err != nil {
		return nil, fmt.Errorf("%w: %w", provider.ErrCreateContainer, err)
	}
	logger.V(2).Info("Started container run")
	return r, nil
}

// checkRunnable finds, before anything is made, the reasons a module cannot
// run with cfg, in words a user can act on.
func checkRunnable(mod *compiled, cfg provider.ContainerConfig) error {
	if len(mod.missing) > 0 {
		return fmt.Errorf("the module imports %s, which this node does not provide: it offers WASI preview 1 (wasi_snapshot_preview1) only", strings.Join(mod.missing, ", "))
	}
	if limit := cfg.Resources.MemoryLimitBytes; limit > 0 && mod.minMemory > uint64(limit) {
		return fmt.Errorf("the module needs %s of linear memory at start, more than the container's memory limit of %s", mib(mod.minMemory), mib(uint64(limit)))
	}
	for _, m := range cfg.Mounts {
		if !filepath.IsAbs(m.ContainerPath) {
			return fmt.Errorf("mount path %q is not absolute", m.ContainerPath)
		}
		fi, err := os.Stat(m.HostPath)
		if err != nil {
			return fmt.Errorf("mount at %s: %w", m.ContainerPath, err)
		}
		if !fi.IsDir() {
			return fmt.Errorf("mount at %s: %s is a file, but WASI can expose only directories to a module; mount the directory that holds it instead (a subPath that names a file is not supported)", m.ContainerPath, m.HostPath)
		}
	}
	return nil
}

// main is the run's goroutine, locked to its OS thread for good: the
// thread's CPU clock is the run's CPU time, and the thread exits with the
// goroutine. It reports on started whether _start could be called.
func (r *run) main(started chan<- error) {
	runtime.LockOSThread() // never unlocked: the thread ends with the run

	var (
		status   provider.ExitStatus
		memBytes uint64
		cpu      uint64
	)
	defer func() {
		if e := recover(); e != nil {
			// A bug here must not take the node down with it.
			r.log.Error(fmt.Errorf("%v", e), "Container run panicked")
			status = provider.ExitStatus{ExitCode: ExitCodeTrap, Reason: ReasonError, Message: fmt.Sprintf("internal error in the wasmtime provider: %v", e), StartedAt: r.startedAt, FinishedAt: r.p.opts.Clock.Now()}
			select {
			case started <- fmt.Errorf("internal error in the wasmtime provider: %v", e):
			default:
			}
		}
		r.finish(status, cpu, memBytes)
	}()

	store := wasmtime.NewStoreWithData(r.p.engine, r)
	defer store.Close() // closes the FIFOs' write ends: the copiers see EOF
	inst, err := r.instantiate(store)
	if err != nil {
		started <- err
		return
	}
	var mem *wasmtime.Memory
	if ext := inst.GetExport(store, "memory"); ext != nil {
		mem = ext.Memory()
	}
	if mem != nil {
		r.g.setMemory(store, mem)
	}
	start := inst.GetFunc(store, "_start")
	if start == nil {
		r.stdio.close()
		started <- errors.New("the module exports no _start function")
		return
	}
	r.stdio.start(r.log, r.cfg.Stdout, r.cfg.Stderr)
	r.startedAt = r.p.opts.Clock.Now()
	started <- nil

	var callErr error
	if r.isForced() {
		callErr = errors.New(stoppedMessage)
	} else {
		_, callErr = start.Call(store)
	}
	finishedAt := r.p.opts.Clock.Now()
	cpu = r.g.cpuNanos()
	if mem != nil {
		memBytes = uint64(mem.DataSize(store))
	}
	// The status reads the end of stderr: close the store (and with it
	// the pipes' write ends) and drain first.
	store.Close()
	r.stdio.wait()
	status = r.exitStatus(callErr, memBytes)
	status.FinishedAt = finishedAt
}

// instantiate sets up the store (limits, WASI, epoch callback) and
// instantiates the module. The store's data is r.
func (r *run) instantiate(store *wasmtime.Store) (*wasmtime.Instance, error) {
	limit := int64(-1)
	if l := r.cfg.Resources.MemoryLimitBytes; l > 0 {
		limit = l
	}
	store.Limiter(limit, -1, -1, -1, -1)

	wc := wasmtime.NewWasiConfig()
	defer wc.Close() // a no-op once SetWasi has taken it
	wc.SetArgv(r.cfg.Args)
	keys, vals := make([]string, 0, len(r.cfg.Env)+1), make([]string, 0, len(r.cfg.Env)+1)
	hasPWD := false
	for _, e := range r.cfg.Env {
		keys, vals = append(keys, e.Name), append(vals, e.Value)
		hasPWD = hasPWD || e.Name == "PWD"
	}
	if r.cfg.WorkingDir != "" && !hasPWD {
		// WASI has no working directory; Go guests (and any that read
		// PWD) take it from PWD.
		keys, vals = append(keys, "PWD"), append(vals, r.cfg.WorkingDir)
	}
	wc.SetEnv(keys, vals)
	for _, m := range r.cfg.Mounts {
		dirPerms, filePerms := wasmtime.DIR_READ|wasmtime.DIR_WRITE, wasmtime.FILE_READ|wasmtime.FILE_WRITE
		if m.ReadOnly {
			dirPerms, filePerms = wasmtime.DIR_READ, wasmtime.FILE_READ
		}
		if err := wc.PreopenDir(m.HostPath, m.ContainerPath, dirPerms, filePerms); err != nil {
			return nil, fmt.Errorf("mount at %s: cannot open %s: %w", m.ContainerPath, m.HostPath, err)
		}
	}
	scratch := ""
	if !r.p.procPipes {
		scratch = filepath.Join(r.p.opts.DataDir, runsDir)
	}
	s, err := setupStdio(scratch, r.cfg.ID, wc)
	if err != nil {
		return nil, fmt.Errorf("setting up standard output: %w", err)
	}
	r.stdio = s
	store.SetWasi(wc)
	r.wasiBase = time.Now()

	if err := r.g.install(store); err != nil {
		s.close()
		return nil, err
	}
	store.SetEpochDeadline(1)
	r.g.cpuBegin()
	inst, err := r.p.linker.Instantiate(store, r.mod.module)
	if err != nil {
		s.close()
		return nil, fmt.Errorf("cannot instantiate the module: %s", trapMessage(err))
	}
	return inst, nil
}

// finish records how the run ended, once its output is drained, and lets
// Wait return.
func (r *run) finish(status provider.ExitStatus, cpu, memBytes uint64) {
	if r.stdio != nil {
		// The store is closed (deferred before), so the FIFOs hit EOF.
		r.stdio.wait()
	}
	r.mu.Lock()
	r.ended = true
	r.status = status
	r.cpuFinal = cpu
	r.memFinal = memBytes
	r.mu.Unlock()
	r.g.free()
	r.p.mu.Lock()
	if r.p.runs[r.cfg.ID] == r {
		delete(r.p.runs, r.cfg.ID)
	}
	r.p.mu.Unlock()
	close(r.done)
	if !status.StartedAt.IsZero() {
		r.log.V(2).Info("Container run ended", "exitCode", status.ExitCode, "reason", status.Reason, "cpu", time.Duration(cpu), "memoryBytes", memBytes)
	}
}

// Wait blocks until the run ends (or ctx ends) and returns how it ended.
func (r *run) Wait(ctx context.Context) (provider.ExitStatus, error) {
	select {
	case <-r.done:
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.status, nil
	case <-ctx.Done():
		return provider.ExitStatus{}, ctx.Err()
	}
}

// Stop ends the run within grace. A Wasm guest cannot be sent SIGTERM, so
// Stop waits up to grace for it to exit by itself, then forces it: the
// epoch-deadline callback traps it in Wasm code within one epoch tick, and
// the cancellable poll_oneoff traps it in a sleep at once. The grace timer
// runs on even if ctx ends first. A forced run ends with ExitCodeKilled,
// Reason Error.
func (r *run) Stop(ctx context.Context, grace time.Duration) error {
	select {
	case <-r.done:
		return nil
	default:
	}
	if grace <= 0 {
		r.force(0)
	} else {
		r.log.V(2).Info("Stopping container run", "gracePeriod", grace)
		t := r.p.opts.Clock.NewTimer(grace)
		go func() {
			select {
			case <-t.C():
				r.force(grace)
			case <-r.done:
				t.Stop()
			}
		}()
	}
	select {
	case <-r.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// force ends the run now.
func (r *run) force(grace time.Duration) {
	r.forceOnce.Do(func() {
		r.log.V(2).Info("Forcing container run to end", "gracePeriod", grace)
		r.forcedGrace.Store(int64(grace))
		r.forced.Store(true)
		close(r.stopCh)
		r.mu.Lock()
		if !r.ended {
			r.g.stop()
		}
		r.mu.Unlock()
	})
}

func (r *run) isForced() bool { return r.forced.Load() }

func (r *run) forcedAfter() time.Duration { return time.Duration(r.forcedGrace.Load()) }

// usage returns the CPU time and memory of the run so far.
func (r *run) usage() (cpu, mem uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ended {
		return r.cpuFinal, r.memFinal
	}
	return r.g.cpuNanos(), r.g.memBytes()
}
