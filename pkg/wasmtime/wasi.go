package wasmtime

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"github.com/bytecodealliance/wasmtime-go/v39"
)

// WASI preview 1 values used by poll_oneoff (wasi_snapshot_preview1.witx).
const (
	errnoSuccess = 0
	errnoFault   = 21
	errnoInval   = 28
	errnoNotsup  = 58

	eventtypeClock   = 0
	eventtypeFdRead  = 1
	eventtypeFdWrite = 2

	clockRealtime  = 0
	clockMonotonic = 1

	subclockAbstime = 1

	subscriptionSize = 48
	eventSize        = 32
)

// definePollOneoff shadows WASI's poll_oneoff in l with pollOneoff.
//
// poll_oneoff is the one WASI call a guest blocks in on purpose: every sleep
// of Go, Rust or C guests is a clock subscription. wasmtime's own version
// cannot be interrupted (epoch interruption only reaches Wasm code), so a
// sleeping guest could not be stopped. This version waits in Go on a timer
// and on the run's stop channel, and traps the guest when the node forces
// it to end.
func definePollOneoff(l *wasmtime.Linker) error {
	l.AllowShadowing(true)
	defer l.AllowShadowing(false)
	if err := l.FuncWrap("wasi_snapshot_preview1", "poll_oneoff", pollOneoff); err != nil {
		return fmt.Errorf("defining poll_oneoff: %w", err)
	}
	return nil
}

// pollOneoff is poll_oneoff(in, out, nsubscriptions, nevents_ptr) -> errno.
func pollOneoff(c *wasmtime.Caller, in, out, nsubs, nevents int32) (errno int32, trap *wasmtime.Trap) {
	defer func() {
		// A panic here would unwind through wasmtime and crash the node.
		if e := recover(); e != nil {
			errno, trap = 0, wasmtime.NewTrap(fmt.Sprintf("krustlet: poll_oneoff failed: %v", e))
		}
	}()
	r, ok := c.Data().(*run)
	if !ok {
		return errnoNotsup, nil
	}
	ext := c.GetExport("memory")
	if ext == nil || ext.Memory() == nil {
		return 0, wasmtime.NewTrap("krustlet: poll_oneoff: the module exports no memory")
	}
	mem := ext.Memory()
	r.g.setMemBytes(uint64(mem.DataSize(c)))
	return r.poll(func() []byte { return mem.UnsafeData(c) }, uint32(in), uint32(out), uint32(nsubs), uint32(nevents))
}

// clockSub is one clock subscription, its deadline in host time.
type clockSub struct {
	userdata uint64
	deadline time.Time
}

type pollEvent struct {
	userdata uint64
	errno    uint16
	typ      uint8
}

// poll implements poll_oneoff over the guest memory that memory returns
// (called again after a wait: nothing else may run in the store meanwhile,
// but the slice is not kept across the wait on principle).
//
// Clock subscriptions, relative or absolute, on the realtime or monotonic
// clock, wait on a host timer; an absolute monotonic time is read against
// the WASI context's own clock, which starts when the run's WASI context is
// made (r.wasiBase, taken just after, so the wait is never short). Other
// clocks (process and thread CPU time) are answered with EINVAL events.
// fd_read and fd_write subscriptions are reported ready at once: a run's
// descriptors are its stdio FIFOs, /dev/null-like stdin and preopened files,
// none of which block for long; a guest that then reads or writes finds out.
func (r *run) poll(memory func() []byte, in, out, nsubs, neventsPtr uint32) (int32, *wasmtime.Trap) {
	if nsubs == 0 {
		return errnoInval, nil
	}
	data := memory()
	inEnd := uint64(in) + uint64(nsubs)*subscriptionSize
	outEnd := uint64(out) + uint64(nsubs)*eventSize
	if inEnd > uint64(len(data)) || outEnd > uint64(len(data)) || uint64(neventsPtr)+4 > uint64(len(data)) {
		return errnoFault, nil
	}

	now := time.Now()
	var (
		ready  []pollEvent
		clocks []clockSub
	)
	le := binary.LittleEndian
	for i := range nsubs {
		s := data[uint64(in)+uint64(i)*subscriptionSize:][:subscriptionSize]
		userdata, tag := le.Uint64(s[0:]), s[8]
		switch tag {
		case eventtypeClock:
			id, timeout, flags := le.Uint32(s[16:]), le.Uint64(s[24:]), le.Uint16(s[40:])
			d, ok := r.clockWait(now, id, timeout, flags&subclockAbstime != 0)
			if !ok {
				ready = append(ready, pollEvent{userdata, errnoInval, eventtypeClock})
				continue
			}
			clocks = append(clocks, clockSub{userdata, now.Add(d)})
		case eventtypeFdRead, eventtypeFdWrite:
			ready = append(ready, pollEvent{userdata, errnoSuccess, tag})
		default:
			return errnoInval, nil
		}
	}

	if len(ready) == 0 && len(clocks) > 0 {
		first := clocks[0].deadline
		for _, c := range clocks[1:] {
			if c.deadline.Before(first) {
				first = c.deadline
			}
		}
		if d := time.Until(first); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-r.stopCh:
				t.Stop()
				return 0, wasmtime.NewTrap(stoppedMessage)
			}
		}
	}
	if r.isForced() {
		return 0, wasmtime.NewTrap(stoppedMessage)
	}
	now = time.Now()
	for _, c := range clocks {
		if !c.deadline.After(now) {
			ready = append(ready, pollEvent{c.userdata, errnoSuccess, eventtypeClock})
		}
	}

	data = memory()
	for i, e := range ready {
		ev := data[uint64(out)+uint64(i)*eventSize:][:eventSize]
		clear(ev)
		le.PutUint64(ev[0:], e.userdata)
		le.PutUint16(ev[8:], e.errno)
		ev[10] = e.typ
	}
	le.PutUint32(data[neventsPtr:], uint32(len(ready)))
	return errnoSuccess, nil
}

// clockWait is how long from now a clock subscription waits; ok is false
// for a clock this implementation does not offer.
func (r *run) clockWait(now time.Time, id uint32, timeout uint64, abs bool) (d time.Duration, ok bool) {
	const forever = 100 * 365 * 24 * time.Hour
	if id != clockRealtime && id != clockMonotonic {
		return 0, false
	}
	if timeout > math.MaxInt64 {
		return forever, true
	}
	t := time.Duration(timeout)
	switch {
	case !abs:
		d = t
	case id == clockMonotonic:
		d = t - now.Sub(r.wasiBase)
	default:
		d = t - time.Duration(now.UnixNano())
	}
	return min(d, forever), true
}
