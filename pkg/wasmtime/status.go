package wasmtime

import (
	"errors"
	"fmt"
	"strings"

	"github.com/bytecodealliance/wasmtime-go/v39"

	"github.com/krustlet/krustlet-go/pkg/provider"
)

// Exit codes and reasons of runs that did not exit by themselves; see doc.go.
const (
	// ExitCodeKilled is reported for a run the node ended (after its grace
	// period) or that ran out of memory, as the kubelet reports a container
	// killed by SIGKILL (128+9).
	ExitCodeKilled = 137
	// ExitCodeTrap is reported for a run that trapped: it crashed.
	ExitCodeTrap = 1

	ReasonError     = "Error"
	ReasonOOMKilled = "OOMKilled"

	// oomSlack: a failed run whose memory is within this of its limit was
	// stopped by the limit, whatever it printed.
	oomSlack = 1 << 20
	// maxMessage bounds a termination message, as the kubelet does (4 KiB).
	maxMessage = 4096
	// maxFrames bounds the Wasm backtrace kept in a trap's message.
	maxFrames = 16
)

// stoppedMessage is the text of the trap or error that ends a forced run.
const stoppedMessage = "krustlet: run stopped by the node"

// exitStatus maps how _start returned to the status the core reports. Call
// it once the run's output is drained.
func (r *run) exitStatus(callErr error, memBytes uint64) provider.ExitStatus {
	st := provider.ExitStatus{StartedAt: r.startedAt}
	code, exited := int32(0), callErr == nil
	var werr *wasmtime.Error
	if errors.As(callErr, &werr) {
		code, exited = werr.ExitStatus()
	}
	limit := r.cfg.Resources.MemoryLimitBytes
	switch {
	case exited && code == 0:
		// Completed: a Go guest's normal exit is proc_exit(0), an error
		// for wasmtime-go.
	case !exited && r.isForced():
		st.ExitCode, st.Reason = ExitCodeKilled, ReasonError
		st.Message = "stopped by the node"
		if g := r.forcedAfter(); g > 0 {
			st.Message += " after the grace period of " + g.String()
		}
	case limit > 0 && (memBytes+oomSlack >= uint64(limit) || r.stdio.oom.saw()):
		st.ExitCode, st.Reason = ExitCodeKilled, ReasonOOMKilled
		st.Message = fmt.Sprintf("the module ran out of memory: its limit is %s, it had %s of linear memory", mib(uint64(limit)), mib(memBytes))
		if exited {
			st.Message += fmt.Sprintf(" (it exited with code %d)", code)
		} else if callErr != nil {
			st.Message += ": " + firstLine(trapMessage(callErr))
		}
	case exited:
		st.ExitCode = code // the core derives Error from a non-zero code
	default:
		st.ExitCode, st.Reason = ExitCodeTrap, ReasonError
		st.Message = trapMessage(callErr)
	}
	return st
}

// trapMessage turns a wasmtime error into a termination message: the cause
// first, then the Wasm backtrace, without the Rust backtrace that
// RUST_BACKTRACE=1 adds.
//
//	error while executing at wasm backtrace:
//	    0: 0x1b3f55 - <unknown>!main.run
//	    ...
//
//	Caused by:
//	    0: memory fault at wasm address 0xf023acd5 in linear memory of size 0x310000
//	    1: wasm trap: out of bounds memory access
//
// becomes
//
//	wasm trap: out of bounds memory access (memory fault at wasm address 0xf023acd5 in linear memory of size 0x310000)
//	wasm backtrace:
//	    0: 0x1b3f55 - <unknown>!main.run
//	    ...
func trapMessage(err error) string {
	s := cleanMessage(err.Error())
	head, causes, found := strings.Cut(s, "\nCaused by:\n")
	if !found {
		return truncate(s)
	}
	var cs []string
	for line := range strings.Lines(causes) {
		line = strings.TrimSpace(line)
		if i := strings.Index(line, ": "); i > 0 && isDigits(line[:i]) {
			line = line[i+2:]
		}
		if line != "" {
			cs = append(cs, line)
		}
	}
	var b strings.Builder
	if len(cs) > 0 {
		b.WriteString(cs[len(cs)-1])
		if len(cs) > 1 {
			b.WriteString(" (" + strings.Join(cs[:len(cs)-1], "; ") + ")")
		}
	}
	if _, frames, ok := strings.Cut(head, "wasm backtrace:\n"); ok {
		b.WriteString("\nwasm backtrace:")
		n := 0
		for line := range strings.Lines(strings.TrimRight(frames, "\n")) {
			if n++; n > maxFrames {
				b.WriteString("\n    ...")
				break
			}
			b.WriteString("\n" + strings.TrimRight(line, "\n"))
		}
	}
	return truncate(b.String())
}

// cleanMessage removes the Rust backtrace from a wasmtime error text.
func cleanMessage(s string) string {
	if i := strings.Index(s, "\nStack backtrace:"); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSpace(s)
}

func truncate(s string) string {
	if len(s) <= maxMessage {
		return s
	}
	return s[:maxMessage-3] + "..."
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

func isDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

func mib(n uint64) string {
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}
