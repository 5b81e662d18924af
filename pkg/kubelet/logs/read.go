package logs

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"time"

	"github.com/fsnotify/fsnotify"
	"k8s.io/utils/clock"
)

// ReadOptions say what Read writes of a log; they are the query parameters
// of the kubelet's /containerLogs, as in v1.PodLogOptions.
type ReadOptions struct {
	// Follow keeps writing what the run appends until it ends.
	Follow bool
	// Previous asks for the run before the latest (RunFile picks its
	// file). That run has ended, so Read does not wait for more of it.
	Previous bool
	// Timestamps starts each line with the time it was logged.
	Timestamps bool
	// TailLines, when set, starts that many lines before the end.
	TailLines *int64
	// Since, when set, skips what was logged before it.
	Since time.Time
	// LimitBytes, when set, stops after that many bytes.
	LimitBytes *int64
}

// ParseReadOptions parses the query of a /containerLogs request:
// follow, previous, timestamps, tailLines, limitBytes, and one of
// sinceSeconds (counted back from now) or sinceTime. Any error it returns
// is the request's fault.
func ParseReadOptions(q url.Values, now time.Time) (ReadOptions, error) {
	var o ReadOptions
	var err error
	for _, p := range []struct {
		name string
		dst  *bool
	}{{"follow", &o.Follow}, {"previous", &o.Previous}, {"timestamps", &o.Timestamps}} {
		if v := q.Get(p.name); v != "" {
			if *p.dst, err = strconv.ParseBool(v); err != nil {
				return o, fmt.Errorf("invalid %s=%q: must be true or false", p.name, v)
			}
		}
	}
	for _, p := range []struct {
		name string
		dst  **int64
	}{{"tailLines", &o.TailLines}, {"limitBytes", &o.LimitBytes}} {
		if v := q.Get(p.name); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 || (p.name == "limitBytes" && n == 0) {
				return o, fmt.Errorf("invalid %s=%q: must be a non-negative integer (positive for limitBytes)", p.name, v)
			}
			*p.dst = &n
		}
	}
	seconds, sinceTime := q.Get("sinceSeconds"), q.Get("sinceTime")
	if seconds != "" && sinceTime != "" {
		return o, errors.New("at most one of sinceSeconds or sinceTime may be specified")
	}
	if seconds != "" {
		n, err := strconv.ParseInt(seconds, 10, 64)
		if err != nil || n <= 0 {
			return o, fmt.Errorf("invalid sinceSeconds=%q: must be a positive integer", seconds)
		}
		o.Since = now.Add(-time.Duration(n) * time.Second)
	}
	if sinceTime != "" {
		t, err := time.Parse(time.RFC3339, sinceTime)
		if err != nil {
			return o, fmt.Errorf("invalid sinceTime=%q: must be RFC 3339", sinceTime)
		}
		o.Since = t
	}
	return o, nil
}

// Read writes the log file at path to w as o asks, calling flush after
// each batch (nil: never). With o.Follow it then writes what the run
// appends, following the file across rotation, until running reports that
// the run has ended (checked every second) or ctx ends; neither is an
// error. It reads what any CRI runtime writes, not only a Writer.
func Read(ctx context.Context, w io.Writer, flush func(), path string, running func() bool, o ReadOptions) error {
	return read(ctx, clock.RealClock{}, w, flush, path, running, o)
}

// entry is one parsed CRI log line.
type entry struct {
	ts      time.Time
	content []byte
	full    bool
}

// parseLine parses "<RFC3339Nano> <stream> <F|P> <content>".
func parseLine(line []byte) (entry, bool) {
	ts, rest, ok := bytes.Cut(line, []byte(" "))
	if !ok {
		return entry{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, string(ts))
	if err != nil {
		return entry{}, false
	}
	_, rest, ok = bytes.Cut(rest, []byte(" ")) // stream
	if !ok {
		return entry{}, false
	}
	tag, content, ok := bytes.Cut(rest, []byte(" "))
	if !ok {
		tag, content = rest, nil
	}
	return entry{ts: t, content: content, full: string(tag) != "P"}, true
}

// output writes entries as the kubelet does: with an optional timestamp
// prefix, a newline after full lines, and a byte limit.
type output struct {
	w          io.Writer
	timestamps bool
	since      time.Time
	remaining  int64 // -1: no limit
	atLineHead bool
}

var errLimitReached = errors.New("limitBytes reached")

func (out *output) write(e entry) error {
	if !out.since.IsZero() && e.ts.Before(out.since) {
		return nil
	}
	var b bytes.Buffer
	if out.timestamps && out.atLineHead {
		b.WriteString(e.ts.Format(time.RFC3339Nano))
		b.WriteByte(' ')
	}
	b.Write(e.content)
	if e.full {
		b.WriteByte('\n')
	}
	out.atLineHead = e.full
	p := b.Bytes()
	if out.remaining >= 0 && int64(len(p)) > out.remaining {
		p = p[:out.remaining]
	}
	if _, err := out.w.Write(p); err != nil {
		return err
	}
	if out.remaining >= 0 {
		out.remaining -= int64(len(p))
		if out.remaining == 0 {
			return errLimitReached
		}
	}
	return nil
}

// checkEvery is how often a follow asks whether the run still runs.
const checkEvery = time.Second

// read is Read with the clock that times the checks of running and the
// wait for a rotated file to reappear.
func read(ctx context.Context, clk clock.WithTicker, w io.Writer, flush func(), path string, running func() bool, o ReadOptions) error {
	if flush == nil {
		flush = func() {}
	}
	if o.Previous {
		running = func() bool { return false }
	}
	out := &output{w: w, timestamps: o.Timestamps, since: o.Since, remaining: -1, atLineHead: true}
	if o.LimitBytes != nil {
		out.remaining = *o.LimitBytes
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer func() { f.Close() }()

	var watcher *fsnotify.Watcher
	var check clock.Ticker
	if o.Follow {
		// Watch before reading, so that no write between the read and the
		// watch goes unnoticed.
		if watcher, err = fsnotify.NewWatcher(); err != nil {
			return err
		}
		defer watcher.Close()
		if err := watcher.Add(path); err != nil {
			return err
		}
		check = clk.NewTicker(checkEvery)
		defer check.Stop()
	}

	reader := bufio.NewReader(f)
	var entries []entry
	var partial []byte
	readAvailable := func(emit func(entry) error) error {
		for {
			line, err := reader.ReadBytes('\n')
			if len(line) > 0 && line[len(line)-1] == '\n' {
				whole := append(partial, line[:len(line)-1]...)
				partial = nil
				if e, ok := parseLine(whole); ok {
					if err := emit(e); err != nil {
						return err
					}
				}
			} else if len(line) > 0 {
				partial = append(partial, line...) // a line still being written
			}
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
		}
	}
	if err := readAvailable(func(e entry) error { entries = append(entries, e); return nil }); err != nil {
		return err
	}
	if o.TailLines != nil {
		entries = tail(entries, int(*o.TailLines))
	}
	for _, e := range entries {
		if err := out.write(e); err != nil {
			return ignoreLimit(err)
		}
	}
	flush()
	if !o.Follow {
		return nil
	}

	for {
		select {
		case <-ctx.Done():
			return nil
		case ev := <-watcher.Events:
			if ev.Has(fsnotify.Rename) || ev.Has(fsnotify.Remove) {
				// Rotated: drain what is left, then follow the new file.
				if err := readAvailable(out.write); err != nil {
					return ignoreLimit(err)
				}
				nf, err := reopen(ctx, clk, path)
				if err != nil {
					return nil
				}
				f.Close()
				f, reader, partial = nf, bufio.NewReader(nf), nil
				_ = watcher.Add(path)
			}
		case err := <-watcher.Errors:
			return err
		case <-check.C():
			if !running() {
				// The run ended: what it wrote is all there is.
				if err := readAvailable(out.write); err != nil {
					return ignoreLimit(err)
				}
				flush()
				return nil
			}
		}
		if err := readAvailable(out.write); err != nil {
			return ignoreLimit(err)
		}
		flush()
	}
}

// reopen opens path again after a rotation, waiting briefly for the new
// file to appear.
func reopen(ctx context.Context, clk clock.Clock, path string) (*os.File, error) {
	for range 50 {
		f, err := os.Open(path)
		if err == nil {
			return f, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-clk.After(20 * time.Millisecond):
		}
	}
	return nil, fmt.Errorf("log file %s did not reappear after rotation", path)
}

// tail keeps the entries of the last n lines. A line may span several
// partial entries; it ends at a full one, or at the last entry, for a line
// still being written or one a runtime ended without its newline (a stream
// that closes mid-line ends in a partial entry in containerd's logs).
func tail(entries []entry, n int) []entry {
	if n == 0 {
		return nil
	}
	lines := 0
	for i := len(entries) - 1; i >= 0; i-- {
		if entries[i].full || i == len(entries)-1 {
			lines++
			if lines > n {
				return entries[i+1:]
			}
		}
	}
	return entries
}

func ignoreLimit(err error) error {
	if errors.Is(err, errLimitReached) {
		return nil
	}
	return err
}
