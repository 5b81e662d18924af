package wasmtime

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/bytecodealliance/wasmtime-go/v39"
	"k8s.io/klog/v2"
)

// stdio carries a run's standard output and error to the core's writers.
//
// wasmtime-go can point WASI stdout and stderr only at a file path (which it
// opens for writing with truncation), so each stream is a pipe whose write
// end wasmtime opens by a path:
//
//   - by default an anonymous pipe, named /proc/self/fd/N: no file system
//     work at all;
//   - where /proc is not usable, a FIFO made in a scratch directory under
//     DataDir/runs, removed as soon as both ends are open, so nothing is left
//     behind if the node dies. Making a FIFO costs a file-system metadata
//     write: 0.4-0.8 ms each on the ext4 disk of the machine this was
//     measured on, against ~0.02 ms for a pipe, which is why FIFOs are only
//     the fallback.
//
// Either way the provider opens the read end first (non-blocking, so the
// open does not wait for a writer, and registered with Go's poller, so an
// idle stream holds no thread and no buffer). A goroutine per stream copies
// until EOF, which comes when the store is closed and wasmtime closes the
// write ends. Stdin is empty: wasmtime's default for a WASI context.
type stdio struct {
	readers []*os.File
	wg      sync.WaitGroup
	oom     oomScanner
}

// setupStdio makes the pipes and points wc at them. scratch is the
// directory for FIFOs, "" to use /proc/self/fd. On error nothing is left
// open.
func setupStdio(scratch, id string, wc *wasmtime.WasiConfig) (_ *stdio, err error) {
	s := &stdio{}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	streams := []struct {
		name string
		set  func(string) error
	}{{"stdout", wc.SetStdoutFile}, {"stderr", wc.SetStderrFile}}
	if scratch == "" {
		for _, stream := range streams {
			if err := s.addPipe(stream.name, stream.set); err != nil {
				return nil, err
			}
		}
		return s, nil
	}
	dir, err := os.MkdirTemp(scratch, scratchName(id)+"-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	for _, stream := range streams {
		path := filepath.Join(dir, stream.name)
		if err := syscall.Mkfifo(path, 0o600); err != nil {
			return nil, &os.PathError{Op: "mkfifo", Path: path, Err: err}
		}
		r, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
		if err != nil {
			return nil, err
		}
		s.readers = append(s.readers, r)
		if err := stream.set(path); err != nil {
			return nil, &os.PathError{Op: "wasi " + stream.name, Path: path, Err: err}
		}
	}
	return s, nil
}

// addPipe makes a pipe and has set open its write end by its /proc path;
// the provider's own write end is closed before returning.
func (s *stdio) addPipe(name string, set func(string) error) error {
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer w.Close()
	s.readers = append(s.readers, r)
	rc, err := w.SyscallConn()
	if err != nil {
		return err
	}
	var setErr error
	if err := rc.Control(func(fd uintptr) { setErr = set(procFD(fd)) }); err != nil {
		return err
	}
	if setErr != nil {
		return fmt.Errorf("wasi %s: opening the pipe's write end: %w", name, setErr)
	}
	return nil
}

func procFD(fd uintptr) string { return "/proc/self/fd/" + strconv.FormatUint(uint64(fd), 10) }

// procPipesWork tells whether a pipe can be opened by its /proc/self/fd
// path, as wasmtime will.
func procPipesWork() bool {
	r, w, err := os.Pipe()
	if err != nil {
		return false
	}
	defer r.Close()
	defer w.Close()
	rc, err := w.SyscallConn()
	if err != nil {
		return false
	}
	var w2 *os.File
	rc.Control(func(fd uintptr) {
		w2, err = os.OpenFile(procFD(fd), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	})
	if err != nil {
		return false
	}
	defer w2.Close()
	if _, err := w2.Write([]byte{1}); err != nil {
		return false
	}
	b := make([]byte, 1)
	n, err := r.Read(b)
	return err == nil && n == 1
}

// start copies stdout and stderr until wasmtime closes the write ends. Call
// it only once the write ends are open: before that, a read finds no writer
// and means EOF.
func (s *stdio) start(logger klog.Logger, stdout, stderr io.Writer) {
	dst := []io.Writer{stdout, stderr}
	for i, r := range s.readers {
		w := dst[i]
		if w == nil {
			w = io.Discard
		}
		var scan func([]byte)
		if i == 1 {
			scan = s.oom.scan
		}
		s.wg.Go(func() {
			defer r.Close()
			if err := drain(r, w, scan); err != nil {
				logger.Error(err, "Reading container output", "stream", streamNames[i])
			}
		})
	}
}

// wait returns once both streams reached EOF.
func (s *stdio) wait() { s.wg.Wait() }

// close closes the read ends when copying never started.
func (s *stdio) close() {
	for _, r := range s.readers {
		r.Close()
	}
}

var streamNames = []string{"stdout", "stderr"}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// drain copies r to w until EOF. It takes a buffer only when r is readable.
// A failing w does not stop it: the guest must never block on a full FIFO,
// so what w refuses is dropped and the first error is returned at the end.
func drain(r *os.File, w io.Writer, scan func([]byte)) error {
	rc, err := r.SyscallConn()
	if err != nil {
		return err
	}
	var werr error
	for {
		var (
			buf  *[]byte
			n    int
			rerr error
		)
		err := rc.Read(func(fd uintptr) bool {
			buf = bufPool.Get().(*[]byte)
			for {
				n, rerr = syscall.Read(int(fd), *buf)
				if rerr != syscall.EINTR {
					break
				}
			}
			if rerr == syscall.EAGAIN {
				bufPool.Put(buf)
				buf = nil
				return false // wait until readable
			}
			return true
		})
		if err == nil {
			err = rerr
		}
		if n > 0 {
			if scan != nil {
				scan((*buf)[:n])
			}
			if werr == nil {
				_, werr = w.Write((*buf)[:n])
			}
		}
		if buf != nil {
			bufPool.Put(buf)
		}
		switch {
		case err != nil && !errors.Is(err, os.ErrClosed):
			return err
		case err != nil || n <= 0:
			return werr
		}
	}
}

// oomScanner watches a guest's stderr for the words its language runtime
// prints when an allocation fails: Go ("fatal error: out of memory"), Rust
// ("memory allocation of N bytes failed"), C ("Cannot allocate memory").
// Only a mention in the last oomWindow bytes counts, so that an old log line
// does not turn a later, unrelated failure into OOMKilled.
type oomScanner struct {
	mu     sync.Mutex
	carry  []byte // tail of the previous chunk, for markers across chunks
	total  int64
	lastAt int64 // offset just past the last marker, 0 if none
}

const oomWindow = 16 << 10

var oomMarkers = []string{"out of memory", "memory allocation of", "cannot allocate memory"}

func (o *oomScanner) scan(b []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	window := bytes.ToLower(append(o.carry, b...))
	start := o.total - int64(len(o.carry))
	for _, m := range oomMarkers {
		if i := bytes.LastIndex(window, []byte(m)); i >= 0 {
			o.lastAt = max(o.lastAt, start+int64(i+len(m)))
		}
	}
	o.total += int64(len(b))
	keep := min(len(window), 32)
	o.carry = append(o.carry[:0], window[len(window)-keep:]...)
}

func (o *oomScanner) saw() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.lastAt > 0 && o.total-o.lastAt <= oomWindow
}

// scratchName turns a run ID into a short, safe file name part.
func scratchName(id string) string {
	s := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			return r
		}
		return '_'
	}, id)
	if len(s) > 64 {
		s = s[:64]
	}
	return s
}
