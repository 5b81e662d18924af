package logs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// MaxLineBytes is the longest line written whole; longer ones are split.
const MaxLineBytes = 16 * 1024

// Stream names.
const (
	Stdout = "stdout"
	Stderr = "stderr"
)

// PodDir is the directory of a pod's logs under root.
func PodDir(root, namespace, name, uid string) string {
	return filepath.Join(root, namespace+"_"+name+"_"+uid)
}

// ContainerDir is the directory of one container's logs.
func ContainerDir(root, namespace, name, uid, container string) string {
	return filepath.Join(PodDir(root, namespace, name, uid), container)
}

// RunPath is the log file of run restartCount of a container.
func RunPath(containerDir string, restartCount int32) string {
	return filepath.Join(containerDir, strconv.Itoa(int(restartCount))+".log")
}

// Runs lists the run numbers that have a log file in containerDir,
// ascending; none when the directory does not exist.
func Runs(containerDir string) []int32 {
	entries, _ := os.ReadDir(containerDir)
	var runs []int32
	for _, e := range entries {
		base, ok := strings.CutSuffix(e.Name(), ".log")
		if !ok {
			continue
		}
		if n, err := strconv.ParseInt(base, 10, 32); err == nil && n >= 0 {
			runs = append(runs, int32(n))
		}
	}
	slices.Sort(runs)
	return runs
}

// Errors of RunFile. Both are the request's fault: the log asked for does
// not exist (yet).
var (
	// ErrNoLog means the container has no log file: it has not started.
	ErrNoLog = errors.New("no log yet")
	// ErrNoPreviousRun means the previous run was asked for and the
	// container has at most one run with a log.
	ErrNoPreviousRun = errors.New("no previous run")
)

// RunFile returns the log file of the latest run in containerDir and its
// run number, or with previous those of the run before it. Its errors wrap
// ErrNoLog or ErrNoPreviousRun.
func RunFile(containerDir string, previous bool) (string, int32, error) {
	runs := Runs(containerDir)
	i := len(runs) - 1
	if previous {
		i--
	}
	if i < 0 {
		if previous {
			return "", 0, fmt.Errorf("%w in %s", ErrNoPreviousRun, containerDir)
		}
		return "", 0, fmt.Errorf("%w in %s", ErrNoLog, containerDir)
	}
	return RunPath(containerDir, runs[i]), runs[i], nil
}

// Rotated lists the rotated files of the run log at path, oldest first,
// followed by path itself when it exists.
func Rotated(path string) []string {
	matches, _ := filepath.Glob(path + ".*")
	slices.Sort(matches) // timestamps sort in time order
	if _, err := os.Stat(path); err == nil {
		matches = append(matches, path)
	}
	return matches
}

// PruneRuns removes the log files of runs older than keepFrom.
func PruneRuns(containerDir string, keepFrom int32) error {
	entries, err := os.ReadDir(containerDir)
	if err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		return err
	}
	for _, e := range entries {
		run, _, _ := strings.Cut(e.Name(), ".")
		if n, err := strconv.Atoi(run); err == nil && int32(n) < keepFrom {
			if err := os.Remove(filepath.Join(containerDir, e.Name())); err != nil && !os.IsNotExist(err) {
				return err
			}
		}
	}
	return nil
}

// Writer writes one run's log file. Its Stdout and Stderr writers are safe
// for concurrent use; Close flushes partial lines.
type Writer struct {
	path     string
	maxSize  int64
	maxFiles int
	now      func() time.Time

	mu   sync.Mutex
	f    *os.File
	size int64
	err  error

	stdout, stderr *streamWriter
}

// Options configure a Writer.
type Options struct {
	// MaxSize rotates the file when it passes this many bytes; 0 never.
	MaxSize int64
	// MaxFiles is how many files (current and rotated) are kept; at least 2.
	MaxFiles int
	// Now returns the time stamped on each line.
	Now func() time.Time
}

// NewWriter creates (or truncates) the log file at path.
func NewWriter(path string, o Options) (*Writer, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("creating log dir: %w", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o640)
	if err != nil {
		return nil, fmt.Errorf("creating log file: %w", err)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxFiles < 2 {
		o.MaxFiles = 2
	}
	w := &Writer{path: path, maxSize: o.MaxSize, maxFiles: o.MaxFiles, now: o.Now, f: f}
	w.stdout = &streamWriter{w: w, stream: Stdout}
	w.stderr = &streamWriter{w: w, stream: Stderr}
	return w, nil
}

// Stdout is the writer for the container's standard output.
func (w *Writer) Stdout() io.Writer { return w.stdout }

// Stderr is the writer for the container's standard error.
func (w *Writer) Stderr() io.Writer { return w.stderr }

// Close flushes both streams' partial lines and closes the file.
func (w *Writer) Close() error {
	w.stdout.flush()
	w.stderr.flush()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return w.err
	}
	err := w.f.Close()
	w.f = nil
	if w.err != nil {
		return w.err
	}
	return err
}

// line writes one log line. full marks the end of a line of output.
func (w *Writer) line(stream string, text []byte, full bool) {
	tag := "P"
	if full {
		tag = "F"
	}
	var b bytes.Buffer
	b.Grow(len(text) + 48)
	b.WriteString(w.now().UTC().Format(time.RFC3339Nano))
	b.WriteByte(' ')
	b.WriteString(stream)
	b.WriteByte(' ')
	b.WriteString(tag)
	b.WriteByte(' ')
	b.Write(text)
	b.WriteByte('\n')

	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return
	}
	n, err := w.f.Write(b.Bytes())
	w.size += int64(n)
	if err != nil && w.err == nil {
		w.err = err
	}
	if w.maxSize > 0 && w.size >= w.maxSize {
		w.rotateLocked()
	}
}

// rotateLocked renames the current file aside and starts a new one,
// removing the oldest rotated files beyond maxFiles.
func (w *Writer) rotateLocked() {
	if err := w.f.Close(); err != nil && w.err == nil {
		w.err = err
	}
	rotated := w.path + "." + w.now().UTC().Format("20060102-150405.000000000")
	if err := os.Rename(w.path, rotated); err != nil && w.err == nil {
		w.err = err
	}
	old := Rotated(w.path)
	for len(old) > w.maxFiles-1 {
		_ = os.Remove(old[0])
		old = old[1:]
	}
	f, err := os.OpenFile(w.path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o640)
	if err != nil {
		w.f = nil
		if w.err == nil {
			w.err = err
		}
		return
	}
	w.f, w.size = f, 0
}

// streamWriter splits one stream into lines.
type streamWriter struct {
	w      *Writer
	stream string

	mu  sync.Mutex
	buf []byte
}

// Write implements io.Writer. It never fails: a log that cannot be written
// must not fail the container; the error is kept for Close.
func (s *streamWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			s.buf = append(s.buf, p...)
			break
		}
		s.buf = append(s.buf, p[:i]...)
		s.emit(true)
		p = p[i+1:]
	}
	for len(s.buf) > MaxLineBytes {
		rest := slices.Clone(s.buf[MaxLineBytes:])
		s.buf = s.buf[:MaxLineBytes]
		s.emit(false)
		s.buf = rest
	}
	return n, nil
}

func (s *streamWriter) emit(full bool) {
	for full && len(s.buf) > MaxLineBytes {
		rest := slices.Clone(s.buf[MaxLineBytes:])
		s.buf = s.buf[:MaxLineBytes]
		s.w.line(s.stream, s.buf, false)
		s.buf = rest
	}
	s.w.line(s.stream, s.buf, full)
	s.buf = s.buf[:0]
}

// flush writes a last line that had no newline as a full line.
func (s *streamWriter) flush() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.buf) > 0 {
		s.emit(true)
	}
}
