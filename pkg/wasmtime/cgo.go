package wasmtime

/*
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

// Declarations from wasmtime's C API (build/include/wasmtime/*.h of
// wasmtime-go v39), whose static library wasmtime-go already links. They are
// repeated here because the headers live in the module cache, not in a path
// this package can name; the types are opaque but for wasmtime_memory_t,
// which is copied from extern.h and whose size is checked at run time.
typedef struct wasmtime_store wasmtime_store_t;
typedef struct wasmtime_context wasmtime_context_t;
typedef struct wasmtime_error wasmtime_error_t;
typedef struct krustlet_memory {
	struct {
		uint64_t store_id;
		uint32_t __private1;
	};
	uint32_t __private2;
} krustlet_memory_t;

extern wasmtime_context_t *wasmtime_store_context(wasmtime_store_t *store);
extern wasmtime_error_t *wasmtime_error_new(const char *message);
extern size_t wasmtime_memory_data_size(const wasmtime_context_t *store, const krustlet_memory_t *memory);
extern void wasmtime_store_epoch_deadline_callback(
	wasmtime_store_t *store,
	wasmtime_error_t *(*func)(wasmtime_context_t *context, void *data,
		uint64_t *epoch_deadline_delta, uint8_t *update_kind),
	void *data, void (*finalizer)(void *));

// krustlet_guest is the part of a run that the guest's thread and other
// threads share without Go: a stop flag read by the epoch callback, the last
// linear-memory size seen, and the thread's CPU clock.
typedef struct krustlet_guest {
	atomic_int stop;
	atomic_uint_least64_t mem_bytes;
	int has_mem;
	krustlet_memory_t mem;
	clockid_t cpu_clock;
	uint64_t cpu_start;
	atomic_int cpu_ready; // cpu_clock and cpu_start are set
} krustlet_guest_t;

static uint64_t krustlet_clock_ns(clockid_t c) {
	struct timespec ts;
	if (clock_gettime(c, &ts) != 0) return 0;
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

// Called on the guest's thread each time the engine's epoch passes the
// store's deadline, i.e. once per epoch tick while Wasm code runs: it ends
// the run when asked to, else samples the memory size and extends the
// deadline by one tick.
static wasmtime_error_t *krustlet_epoch_cb(wasmtime_context_t *ctx, void *data,
		uint64_t *delta, uint8_t *kind) {
	krustlet_guest_t *g = data;
	if (atomic_load(&g->stop)) return wasmtime_error_new("krustlet: run stopped by the node");
	if (g->has_mem) atomic_store(&g->mem_bytes, wasmtime_memory_data_size(ctx, &g->mem));
	*delta = 1;
	*kind = 0; // WASMTIME_UPDATE_DEADLINE_CONTINUE
	return NULL;
}

static krustlet_guest_t *krustlet_guest_new(void) {
	return calloc(1, sizeof(krustlet_guest_t));
}

static int krustlet_guest_install(krustlet_guest_t *g, wasmtime_store_t *store, wasmtime_context_t *want) {
	if (wasmtime_store_context(store) != want) return 0;
	wasmtime_store_epoch_deadline_callback(store, krustlet_epoch_cb, g, NULL);
	return 1;
}

static void krustlet_guest_set_memory(krustlet_guest_t *g, const krustlet_memory_t *mem, wasmtime_context_t *ctx) {
	g->mem = *mem;
	g->has_mem = 1;
	atomic_store(&g->mem_bytes, wasmtime_memory_data_size(ctx, &g->mem));
}

static void krustlet_guest_stop(krustlet_guest_t *g) { atomic_store(&g->stop, 1); }
static void krustlet_guest_set_mem_bytes(krustlet_guest_t *g, uint64_t n) { atomic_store(&g->mem_bytes, n); }
static uint64_t krustlet_guest_mem_bytes(krustlet_guest_t *g) { return atomic_load(&g->mem_bytes); }

// Must run on the guest's thread.
static void krustlet_guest_cpu_begin(krustlet_guest_t *g) {
	if (pthread_getcpuclockid(pthread_self(), &g->cpu_clock) != 0) g->cpu_clock = CLOCK_THREAD_CPUTIME_ID;
	g->cpu_start = krustlet_clock_ns(CLOCK_THREAD_CPUTIME_ID);
	atomic_store(&g->cpu_ready, 1);
}

// Any thread may call it while the guest's thread lives.
static uint64_t krustlet_guest_cpu(krustlet_guest_t *g) {
	if (!atomic_load(&g->cpu_ready)) return 0;
	uint64_t now = krustlet_clock_ns(g->cpu_clock);
	return now > g->cpu_start ? now - g->cpu_start : 0;
}
*/
import "C"

import (
	"errors"
	"unsafe"

	"github.com/bytecodealliance/wasmtime-go/v39"
)

// guest is the C side of one run: see krustlet_guest_t. It is allocated by
// newGuest and must be freed with free once the store is closed and no other
// goroutine can reach it.
type guest struct{ c *C.krustlet_guest_t }

func newGuest() guest { return guest{C.krustlet_guest_new()} }

func (g guest) free() { C.free(unsafe.Pointer(g.c)) }

// install registers the epoch-deadline callback on store. wasmtime-go does
// not expose wasmtime_store_epoch_deadline_callback, so the store's C
// pointer is read from the first field of wasmtime.Store; install checks it
// against the store's context before use and fails rather than guess.
func (g guest) install(store *wasmtime.Store) error {
	ptr := *(**C.wasmtime_store_t)(unsafe.Pointer(store))
	want := (*C.wasmtime_context_t)(unsafe.Pointer(store.Context()))
	if ptr == nil || C.krustlet_guest_install(g.c, ptr, want) == 0 {
		return errors.New("wasmtime-go's Store layout is not the one this package was written for")
	}
	return nil
}

// setMemory lets the epoch callback sample mem's size. Call it on the
// guest's thread.
func (g guest) setMemory(store *wasmtime.Store, mem *wasmtime.Memory) {
	if unsafe.Sizeof(*mem) != C.sizeof_krustlet_memory_t {
		g.setMemBytes(uint64(mem.DataSize(store)))
		return
	}
	C.krustlet_guest_set_memory(g.c, (*C.krustlet_memory_t)(unsafe.Pointer(mem)), (*C.wasmtime_context_t)(unsafe.Pointer(store.Context())))
}

func (g guest) stop()                { C.krustlet_guest_stop(g.c) }
func (g guest) setMemBytes(n uint64) { C.krustlet_guest_set_mem_bytes(g.c, C.uint64_t(n)) }
func (g guest) memBytes() uint64     { return uint64(C.krustlet_guest_mem_bytes(g.c)) }
func (g guest) cpuBegin()            { C.krustlet_guest_cpu_begin(g.c) }
func (g guest) cpuNanos() uint64     { return uint64(C.krustlet_guest_cpu(g.c)) }
