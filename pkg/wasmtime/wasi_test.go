package wasmtime

import (
	"testing"
)

// pollWAT checks poll_oneoff from the guest's side, against the guest's own
// WASI clocks; it exits with the number of the first check that fails.
const pollWAT = `(module
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll_oneoff (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock_time_get (param i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  ;; subscriptions at 1024 (48 bytes each), events at 2048 (32 bytes each),
  ;; nevents at 3000, clock readings at 3008.
  (func $now (param $clock i32) (result i64)
    (drop (call $clock_time_get (local.get $clock) (i64.const 1) (i32.const 3008)))
    (i64.load (i32.const 3008)))
  (func $clock_sub (param $at i32) (param $userdata i64) (param $id i32) (param $timeout i64) (param $flags i32)
    (memory.fill (local.get $at) (i32.const 0) (i32.const 48))
    (i64.store (local.get $at) (local.get $userdata))
    (i32.store8 offset=8 (local.get $at) (i32.const 0))
    (i32.store offset=16 (local.get $at) (local.get $id))
    (i64.store offset=24 (local.get $at) (local.get $timeout))
    (i32.store16 offset=40 (local.get $at) (local.get $flags)))
  (func $fd_sub (param $at i32) (param $userdata i64) (param $tag i32) (param $fd i32)
    (memory.fill (local.get $at) (i32.const 0) (i32.const 48))
    (i64.store (local.get $at) (local.get $userdata))
    (i32.store8 offset=8 (local.get $at) (local.get $tag))
    (i32.store offset=16 (local.get $at) (local.get $fd)))
  (func $poll (param $n i32) (result i32)
    (call $poll_oneoff (i32.const 1024) (i32.const 2048) (local.get $n) (i32.const 3000)))
  (func $check (param $ok i32) (param $code i32)
    (if (i32.eqz (local.get $ok)) (then (call $proc_exit (local.get $code)))))
  (func $one_event (param $userdata i64) (param $type i32) (param $errno i32) (param $code i32)
    (call $check (i32.eq (i32.load (i32.const 3000)) (i32.const 1)) (local.get $code))
    (call $check (i64.eq (i64.load (i32.const 2048)) (local.get $userdata)) (local.get $code))
    (call $check (i32.eq (i32.load16_u (i32.const 2056)) (local.get $errno)) (local.get $code))
    (call $check (i32.eq (i32.load8_u (i32.const 2058)) (local.get $type)) (local.get $code)))
  (func (export "_start")
    (local $t0 i64)
    ;; 1: absolute monotonic deadline 50 ms ahead
    (local.set $t0 (call $now (i32.const 1)))
    (call $clock_sub (i32.const 1024) (i64.const 1) (i32.const 1) (i64.add (local.get $t0) (i64.const 50000000)) (i32.const 1))
    (call $check (i32.eqz (call $poll (i32.const 1))) (i32.const 1))
    (call $check (i64.ge_u (i64.sub (call $now (i32.const 1)) (local.get $t0)) (i64.const 50000000)) (i32.const 1))
    (call $one_event (i64.const 1) (i32.const 0) (i32.const 0) (i32.const 1))
    ;; 2: absolute realtime deadline 30 ms ahead
    (local.set $t0 (call $now (i32.const 0)))
    (call $clock_sub (i32.const 1024) (i64.const 2) (i32.const 0) (i64.add (local.get $t0) (i64.const 30000000)) (i32.const 1))
    (call $check (i32.eqz (call $poll (i32.const 1))) (i32.const 2))
    (call $check (i64.ge_u (i64.sub (call $now (i32.const 0)) (local.get $t0)) (i64.const 30000000)) (i32.const 2))
    ;; 3: relative 20 ms, and a 1 h one that must not fire
    (local.set $t0 (call $now (i32.const 1)))
    (call $clock_sub (i32.const 1024) (i64.const 3) (i32.const 1) (i64.const 3600000000000) (i32.const 0))
    (call $clock_sub (i32.const 1072) (i64.const 4) (i32.const 1) (i64.const 20000000) (i32.const 0))
    (call $check (i32.eqz (call $poll (i32.const 2))) (i32.const 3))
    (call $check (i64.ge_u (i64.sub (call $now (i32.const 1)) (local.get $t0)) (i64.const 20000000)) (i32.const 3))
    (call $one_event (i64.const 4) (i32.const 0) (i32.const 0) (i32.const 3))
    ;; 4: an fd_write subscription is ready at once, before a 1 h clock
    (call $clock_sub (i32.const 1024) (i64.const 5) (i32.const 1) (i64.const 3600000000000) (i32.const 0))
    (call $fd_sub (i32.const 1072) (i64.const 6) (i32.const 2) (i32.const 1))
    (call $check (i32.eqz (call $poll (i32.const 2))) (i32.const 4))
    (call $one_event (i64.const 6) (i32.const 2) (i32.const 0) (i32.const 4))
    ;; 5: no subscriptions is EINVAL
    (call $check (i32.eq (call $poll (i32.const 0)) (i32.const 28)) (i32.const 5))
    ;; 6: subscriptions outside memory are EFAULT
    (call $check (i32.eq (call $poll_oneoff (i32.const 65500) (i32.const 2048) (i32.const 1) (i32.const 3000)) (i32.const 21)) (i32.const 6))
    ;; 7: a CPU-time clock gets an EINVAL event
    (call $clock_sub (i32.const 1024) (i64.const 7) (i32.const 2) (i64.const 1000) (i32.const 0))
    (call $check (i32.eqz (call $poll (i32.const 1))) (i32.const 7))
    (call $one_event (i64.const 7) (i32.const 0) (i32.const 28) (i32.const 7))
    ;; 8: a past absolute deadline fires at once
    (call $clock_sub (i32.const 1024) (i64.const 8) (i32.const 1) (i64.const 0) (i32.const 1))
    (call $check (i32.eqz (call $poll (i32.const 1))) (i32.const 8))
    (call $one_event (i64.const 8) (i32.const 0) (i32.const 0) (i32.const 8))))`

func TestPollOneoff(t *testing.T) {
	p := shared(t)
	cfg, stdout, stderr := config(pull(t, p, watModule(t, pollWAT)))
	r := runToEnd(t, p, cfg, stdout, stderr)
	if r.status.ExitCode != 0 {
		t.Errorf("check %d failed (status %+v)", r.status.ExitCode, r.status)
	}
}

func TestStopEndsPollWithoutClock(t *testing.T) {
	// A guest waiting on nothing but a far clock is still stopped.
	p := shared(t)
	ctx := testContext(t)
	cfg, _, _ := config(pull(t, p, watModule(t, `(module
	  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll_oneoff (param i32 i32 i32 i32) (result i32)))
	  (memory (export "memory") 1)
	  (func (export "_start")
	    (i64.store (i32.const 24) (i64.const -1)) ;; relative timeout: forever
	    (drop (call $poll_oneoff (i32.const 0) (i32.const 100) (i32.const 1) (i32.const 200)))))`)))
	c, err := p.StartContainer(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Stop(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if st, _ := c.Wait(ctx); st.ExitCode != ExitCodeKilled {
		t.Errorf("status %+v", st)
	}
}
