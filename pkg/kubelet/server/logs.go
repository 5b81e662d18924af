package server

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/fsnotify/fsnotify"
)

// logOptions are the query parameters of /containerLogs, as in
// v1.PodLogOptions.
type logOptions struct {
	follow, previous, timestamps bool
	tailLines                    *int64
	since                        time.Time
	limitBytes                   *int64
}

// parseLogOptions parses and checks the query; a bad one is a 400.
func parseLogOptions(r *http.Request, now time.Time) (logOptions, error) {
	q := r.URL.Query()
	var o logOptions
	var err error
	for name, dst := range map[string]*bool{"follow": &o.follow, "previous": &o.previous, "timestamps": &o.timestamps} {
		if v := q.Get(name); v != "" {
			if *dst, err = strconv.ParseBool(v); err != nil {
				return o, fmt.Errorf("invalid %s=%q: must be true or false", name, v)
			}
		}
	}
	for name, dst := range map[string]**int64{"tailLines": &o.tailLines, "limitBytes": &o.limitBytes} {
		if v := q.Get(name); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 || (name == "limitBytes" && n == 0) {
				return o, fmt.Errorf("invalid %s=%q: must be a non-negative integer (positive for limitBytes)", name, v)
			}
			*dst = &n
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
		o.since = now.Add(-time.Duration(n) * time.Second)
	}
	if sinceTime != "" {
		t, err := time.Parse(time.RFC3339, sinceTime)
		if err != nil {
			return o, fmt.Errorf("invalid sinceTime=%q: must be RFC 3339", sinceTime)
		}
		o.since = t
	}
	return o, nil
}

// logEntry is one parsed CRI log line.
type logEntry struct {
	ts      time.Time
	content []byte
	full    bool
}

// parseCRILine parses "<RFC3339Nano> <stream> <F|P> <content>".
func parseCRILine(line []byte) (logEntry, bool) {
	ts, rest, ok := bytes.Cut(line, []byte(" "))
	if !ok {
		return logEntry{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, string(ts))
	if err != nil {
		return logEntry{}, false
	}
	_, rest, ok = bytes.Cut(rest, []byte(" ")) // stream
	if !ok {
		return logEntry{}, false
	}
	tag, content, ok := bytes.Cut(rest, []byte(" "))
	if !ok {
		tag, content = rest, nil
	}
	return logEntry{ts: t, content: content, full: string(tag) != "P"}, true
}

// logWriter writes entries as the kubelet does: with an optional timestamp
// prefix, a newline after full lines, and a byte limit.
type logWriter struct {
	w          io.Writer
	flush      func()
	timestamps bool
	since      time.Time
	remaining  int64 // -1: no limit
	atLineHead bool
}

var errLimitReached = errors.New("limitBytes reached")

func (lw *logWriter) write(e logEntry) error {
	if !lw.since.IsZero() && e.ts.Before(lw.since) {
		return nil
	}
	var b bytes.Buffer
	if lw.timestamps && lw.atLineHead {
		b.WriteString(e.ts.Format(time.RFC3339Nano))
		b.WriteByte(' ')
	}
	b.Write(e.content)
	if e.full {
		b.WriteByte('\n')
	}
	lw.atLineHead = e.full
	out := b.Bytes()
	if lw.remaining >= 0 && int64(len(out)) > lw.remaining {
		out = out[:lw.remaining]
	}
	if _, err := lw.w.Write(out); err != nil {
		return err
	}
	if lw.remaining >= 0 {
		lw.remaining -= int64(len(out))
		if lw.remaining == 0 {
			return errLimitReached
		}
	}
	return nil
}

// serveLog writes the log at path to w, then, with follow, keeps writing
// what the run appends until it ends or the client goes.
func serveLog(ctx context.Context, w io.Writer, flush func(), path string, running func() bool, o logOptions) error {
	lw := &logWriter{w: w, flush: flush, timestamps: o.timestamps, since: o.since, remaining: -1, atLineHead: true}
	if o.limitBytes != nil {
		lw.remaining = *o.limitBytes
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer func() { f.Close() }()

	var watcher *fsnotify.Watcher
	if o.follow {
		// Watch before reading, so that no write between the read and the
		// watch goes unnoticed.
		if watcher, err = fsnotify.NewWatcher(); err != nil {
			return err
		}
		defer watcher.Close()
		if err := watcher.Add(path); err != nil {
			return err
		}
	}

	reader := bufio.NewReader(f)
	var entries []logEntry
	var partial []byte
	readAvailable := func(emit func(logEntry) error) error {
		for {
			line, err := reader.ReadBytes('\n')
			if len(line) > 0 && line[len(line)-1] == '\n' {
				full := append(partial, line[:len(line)-1]...)
				partial = nil
				if e, ok := parseCRILine(full); ok {
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
	if err := readAvailable(func(e logEntry) error { entries = append(entries, e); return nil }); err != nil {
		return err
	}
	if o.tailLines != nil {
		entries = tail(entries, int(*o.tailLines))
	}
	for _, e := range entries {
		if err := lw.write(e); err != nil {
			return ignoreLimit(err)
		}
	}
	flush()
	if !o.follow {
		return nil
	}

	emit := func(e logEntry) error { return lw.write(e) }
	check := time.NewTicker(time.Second)
	defer check.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev := <-watcher.Events:
			if ev.Has(fsnotify.Rename) || ev.Has(fsnotify.Remove) {
				// Rotated: drain what is left, then follow the new file.
				if err := readAvailable(emit); err != nil {
					return ignoreLimit(err)
				}
				nf, err := reopen(ctx, path)
				if err != nil {
					return nil
				}
				f.Close()
				f, reader, partial = nf, bufio.NewReader(nf), nil
				_ = watcher.Add(path)
			}
		case err := <-watcher.Errors:
			return err
		case <-check.C:
			if !running() {
				// The run ended: what it wrote is all there is.
				if err := readAvailable(emit); err != nil {
					return ignoreLimit(err)
				}
				flush()
				return nil
			}
		}
		if err := readAvailable(emit); err != nil {
			return ignoreLimit(err)
		}
		flush()
	}
}

// reopen opens path again after a rotation, waiting briefly for the new
// file to appear.
func reopen(ctx context.Context, path string) (*os.File, error) {
	for range 50 {
		f, err := os.Open(path)
		if err == nil {
			return f, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil, fmt.Errorf("log file %s did not reappear after rotation", path)
}

// tail keeps the entries of the last n lines (a line may span several
// partial entries).
func tail(entries []logEntry, n int) []logEntry {
	if n == 0 {
		return nil
	}
	lines := 0
	for i := len(entries) - 1; i >= 0; i-- {
		if entries[i].full {
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
