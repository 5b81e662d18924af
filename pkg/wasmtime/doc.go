// Package wasmtime is krustlet-go's default provider: it runs WebAssembly
// modules written for WASI preview 1 in the node's own process, on wasmtime
// through wasmtime-go (v39; cgo, with the static library that module ships).
//
// # What it owns
//
//   - One wasmtime Engine per Provider, with epoch interruption on, and one
//     goroutine that advances the epoch every Options.EpochInterval (10 ms).
//   - One Linker, shared by every run: WASI preview 1, with poll_oneoff
//     replaced by a cancellable version (see Stopping).
//   - Images: local files (fs/PATH, when Options.AllowLocalModules is set,
//     krustlet's convention: fs//abs/path.wasm; a :tag after the path is
//     ignored as krustlet did) and whatever Options.Source fetches (package
//     registry plugs in there through the ModuleSource interface). Without a
//     source, other references fail with provider.ErrImagePull saying no
//     registry is configured (provider.ErrImageNeverPull under policy Never).
//   - The compiled-module cache: PullImage returns once the module is
//     compiled, so an invalid module fails the pull (provider.ErrImageInspect)
//     rather than the start. Each module is compiled once per node:
//     concurrent pulls of one digest share one compile (singleflight), and
//     the result of Module.Serialize is kept in DataDir/compiled under the
//     module's digest, the wasmtime version and a hash of the engine
//     settings, written to a temporary file and renamed, with a SHA-256 sum
//     beside it. A load checks the sum and maps the file
//     (NewModuleDeserializeFile); an entry that is missing, corrupt or stale
//     is compiled again, never an error. Loaded modules stay in memory for
//     the provider's life.
//   - Runs: one Store per run (StartContainer), on a goroutine locked to its
//     own OS thread, which exits with the run.
//
// Use:
//
//	p, err := wasmtime.New(wasmtime.Options{DataDir: "/var/lib/krustlet/wasmtime"})
//	img, err := p.PullImage(ctx, provider.PullRequest{Image: ref, Policy: v1.PullIfNotPresent})
//	c, err := p.StartContainer(ctx, provider.ContainerConfig{ID: id, Image: img, Args: argv, Stdout: w, Stderr: w})
//	status, err := c.Wait(ctx)
//
// # From ContainerConfig to WASI
//
// Args is argv as given, argv[0] included: the core puts command[0] there,
// or the container's name. krustlet passed the container's args without a
// program name, so a module ported from krustlet that read its first
// argument from argv[0] must now read argv[1], as any program does.
//
// Env is the environment, in order. Each Mount is a preopened directory at
// its ContainerPath, read-only (directory and file permissions) when the
// mount is. WASI can preopen directories only: a mount whose host path is a
// file (a subPath naming a file) fails StartContainer with
// provider.ErrCreateContainer saying so. WASI has no working directory:
// WorkingDir is passed as PWD (unless Env sets PWD), which Go guests use to
// resolve relative paths; other guests ignore it.
//
// Standard output and error go to the core's writers through pipes (see
// stdio in stdio.go for why a pipe, and when a FIFO); Wait returns only
// once both are drained. Stdin is empty; ContainerConfig.Stdin is ignored.
//
// # Exit status
//
//   - _start returns, or the guest calls proc_exit(0) (a Go guest's normal
//     exit reaches wasmtime-go as an error with exit status 0): ExitCode 0,
//     no Reason (the core says Completed).
//   - proc_exit(N): ExitCode N, no Reason (the core says Error). A Go panic
//     is exit code 2.
//   - A trap (unreachable, out-of-bounds access, stack overflow...): ExitCode
//     1, Reason Error, Message the trap and its Wasm backtrace, without the
//     Rust backtrace that RUST_BACKTRACE=1 adds (New also sets
//     RUST_LIB_BACKTRACE=0 when it is unset, so that wasmtime does not take
//     one at all). The kubelet reports a crashed container with a non-zero
//     code and Reason Error; a trap has no signal number to put in 128+N.
//   - Out of memory: ExitCode 137, Reason OOMKilled (see Limits).
//   - Stopped by the node: ExitCode 137, Reason Error, Message "stopped by
//     the node after the grace period of 30s" — what the kubelet reports for
//     a container it had to SIGKILL.
//   - A module that cannot be instantiated: StartContainer fails, wrapping
//     provider.ErrCreateContainer, and says why: the imports it names that
//     the node does not provide (WASI preview 1 is all there is), or the
//     memory it needs at start against the container's limit. The kubelet
//     reports a container that cannot be created as Waiting with
//     CreateContainerError and retries it with back-off; that is the truth
//     for a module that never ran (ContainerCannotRun with 128 is the Docker
//     engine's report of a process that failed to exec, a terminated state).
//
// # Limits
//
// Resources.MemoryLimitBytes caps each linear memory of the run through the
// store's limiter, and a module whose initial memory is already larger fails
// to start. The limiter only refuses a memory.grow (it returns -1) and
// wasmtime-go offers no hook to see a refusal, so a run is OOMKilled when it
// ends abnormally (non-zero exit, or a trap) with a limit set and either its
// memory is within 1 MiB of the limit, or its stderr, near its end, shows
// the words its runtime prints when an allocation fails ("out of memory":
// Go, which then exits with code 2; "memory allocation of N bytes failed":
// Rust, which then traps; "Cannot allocate memory": C). Measured with a Go
// guest and a 64 MiB limit: allocating 1 MiB at a time ends at 63.5 MiB of
// memory; one 200 MiB allocation fails at 3.1 MiB, caught by its message.
// A run that handles the refusal and exits 0 has not been killed and is not
// reported so.
//
// CPU limits are not enforced: each run is one thread that the kernel
// schedules like any other of the node. Requests are admitted against the
// node's allocatable CPU by the core; fuel and epoch deadlines are not used
// to throttle (both would stop a guest rather than slow it down).
// ContainerStats reports the CPU time of the run's thread (its per-thread
// CPU clock, read live from other threads; nanosecond resolution) and the
// size of its linear memory, sampled on the guest's own thread at each
// epoch tick while it computes and at each poll_oneoff.
//
// # Stopping
//
// Stop(ctx, grace) ends a run within grace whatever the module does. A Wasm
// guest cannot receive SIGTERM, so Stop waits up to grace (timed with
// Options.Clock) for the guest to exit by itself, then forces it:
//
//   - Wasm code: every store has an epoch deadline of one tick and a
//     deadline callback (wasmtime_store_epoch_deadline_callback, which
//     wasmtime-go does not wrap; cgo.go calls the C API directly) that, on
//     the guest's thread, extends the deadline by a tick, or ends the run
//     once the stop flag is set. Measured time from force to the end of a
//     run spinning in a loop: ~1 ms with a 1 ms epoch, ~8 ms with 10 ms,
//     ~70 ms with 100 ms; the cost of the callback on a 0.5 s computation
//     was below the noise of this shared 2-core machine (±10%) at every
//     interval, so 10 ms it is.
//   - Host calls: epoch interruption does not reach a guest blocked in a
//     WASI call (measured: a 5 s sleep with a 500 ms deadline slept the full
//     5 s). The only WASI call a guest blocks in on purpose is poll_oneoff:
//     every sleep of Go, Rust and C guests. The Linker shadows it
//     (AllowShadowing + FuncWrap) with a version that waits in Go on a
//     timer and on the run's stop channel, and traps the guest when forced:
//     Stop with a 2 s grace on a guest sleeping for an hour returns after
//     2.00 s. It implements clock subscriptions, relative and absolute, on
//     the realtime and monotonic clocks (an absolute monotonic time is read
//     against the WASI context's own clock, which starts when the context
//     is made), answers CPU-time clocks with EINVAL events, and reports
//     fd_read and fd_write subscriptions ready at once (a run's descriptors
//     are pipes being drained, empty stdin and files, none of which block
//     for long). The alternative, a child process per container that can be
//     killed, was not needed: shadowing works and keeps a run at ~1.65 MiB
//     and one thread.
//
// A forced run's goroutine and thread end, its store is closed (which
// closes its pipes) and its output drained before Wait returns; the leak
// test checks threads, open files and scratch files after stopped runs.
// Guest sleeps and the epoch ticker use real time, not Options.Clock.
//
// # Density
//
// Every running guest holds one OS thread (it is inside a cgo call for its
// whole life), so New raises the Go runtime's thread limit to 20,000 (Go's
// default, 10,000, would crash the node when reached). Measured with the Go
// test module sleeping: 1.64-1.65 MiB of resident memory and one thread per run,
// the same at 100 and at 1,000 runs. An idle run's output streams hold no
// thread and no buffer (Go's poller waits on them).
//
// Other figures (go test -run '^$' -bench . ./pkg/wasmtime/; a shared
// 2-core machine): first start of the 2.9 MB Go test module, compile
// included, 1.05-1.2 s; the same on a node that compiled it before (a new
// provider: engine, cache check, mapping, run) ~13 ms; a whole short run of
// a loaded module (store, WASI, pipes, thread, instantiation, the Go
// runtime's start, exit) ~0.9 ms; instantiation alone ~20 µs.
//
// # Limitations
//
//   - WASI preview 1 only: no components, no preview 2, no sockets.
//   - Mounts are directories; a file cannot be mounted alone.
//   - Stdin is not connected.
//   - A guest blocked in a host call other than poll_oneoff (a read of a
//     FIFO inside a hostPath mount, or a write to stdout while the core's
//     writer blocks) is not interrupted until that call returns.
//   - Memory limits and statistics cover linear memory only; the run's
//     thread stack and wasmtime's per-store state are not counted.
//   - The epoch-deadline callback reaches wasmtime's store through the
//     first field of wasmtime-go's Store; install checks it against the
//     store's context and refuses to start a run if a future wasmtime-go
//     changes that layout.
package wasmtime
