package logs

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	testingclock "k8s.io/utils/clock/testing"
)

func ptr(n int64) *int64 { return &n }

func TestParseReadOptions(t *testing.T) {
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		query   string
		want    ReadOptions
		wantErr string
	}{
		{query: "", want: ReadOptions{}},
		{query: "follow=true&previous=1&timestamps=T", want: ReadOptions{Follow: true, Previous: true, Timestamps: true}},
		{query: "follow=false", want: ReadOptions{}},
		{query: "tailLines=0&limitBytes=1", want: ReadOptions{TailLines: ptr(0), LimitBytes: ptr(1)}},
		{query: "tailLines=10&limitBytes=4096", want: ReadOptions{TailLines: ptr(10), LimitBytes: ptr(4096)}},
		{query: "sinceSeconds=60", want: ReadOptions{Since: now.Add(-time.Minute)}},
		{query: "sinceTime=2026-11-25T09:30:00%2B01:00", want: ReadOptions{Since: time.Date(2026, 11, 25, 8, 30, 0, 0, time.UTC)}},

		{query: "follow=yes", wantErr: `invalid follow="yes": must be true or false`},
		{query: "previous=2", wantErr: `invalid previous="2": must be true or false`},
		{query: "timestamps=on", wantErr: `invalid timestamps="on": must be true or false`},
		{query: "tailLines=-1", wantErr: `invalid tailLines="-1": must be a non-negative integer (positive for limitBytes)`},
		{query: "tailLines=ten", wantErr: `invalid tailLines="ten": must be a non-negative integer (positive for limitBytes)`},
		{query: "tailLines=1.5", wantErr: `invalid tailLines="1.5": must be a non-negative integer (positive for limitBytes)`},
		{query: "tailLines=99999999999999999999", wantErr: `invalid tailLines="99999999999999999999": must be a non-negative integer (positive for limitBytes)`},
		{query: "limitBytes=0", wantErr: `invalid limitBytes="0": must be a non-negative integer (positive for limitBytes)`},
		{query: "limitBytes=-5", wantErr: `invalid limitBytes="-5": must be a non-negative integer (positive for limitBytes)`},
		{query: "limitBytes=1k", wantErr: `invalid limitBytes="1k": must be a non-negative integer (positive for limitBytes)`},
		{query: "sinceSeconds=0", wantErr: `invalid sinceSeconds="0": must be a positive integer`},
		{query: "sinceSeconds=-10", wantErr: `invalid sinceSeconds="-10": must be a positive integer`},
		{query: "sinceSeconds=1m", wantErr: `invalid sinceSeconds="1m": must be a positive integer`},
		{query: "sinceTime=yesterday", wantErr: `invalid sinceTime="yesterday": must be RFC 3339`},
		{query: "sinceTime=2026-11-25", wantErr: `invalid sinceTime="2026-11-25": must be RFC 3339`},
		{query: "sinceSeconds=10&sinceTime=2026-11-25T09:30:00Z", wantErr: "at most one of sinceSeconds or sinceTime may be specified"},
		// The first bad parameter is reported, booleans first.
		{query: "tailLines=x&follow=x", wantErr: `invalid follow="x": must be true or false`},
	} {
		t.Run(tc.query, func(t *testing.T) {
			q, err := url.ParseQuery(tc.query)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ParseReadOptions(q, now)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Errorf("error = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !sameOptions(got, tc.want) {
				t.Errorf("options = %s, want %s", showOptions(got), showOptions(tc.want))
			}
		})
	}
}

func sameOptions(a, b ReadOptions) bool {
	eq := func(x, y *int64) bool { return (x == nil) == (y == nil) && (x == nil || *x == *y) }
	return a.Follow == b.Follow && a.Previous == b.Previous && a.Timestamps == b.Timestamps &&
		eq(a.TailLines, b.TailLines) && eq(a.LimitBytes, b.LimitBytes) && a.Since.Equal(b.Since)
}

func showOptions(o ReadOptions) string {
	show := func(p *int64) string {
		if p == nil {
			return "nil"
		}
		return fmt.Sprint(*p)
	}
	return fmt.Sprintf("{Follow:%v Previous:%v Timestamps:%v TailLines:%s Since:%v LimitBytes:%s}",
		o.Follow, o.Previous, o.Timestamps, show(o.TailLines), o.Since, show(o.LimitBytes))
}

// writeFile writes a log file and returns its path.
func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := RunPath(t.TempDir(), 0)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// readAll reads a log without following it.
func readAll(t *testing.T, path string, o ReadOptions) string {
	t.Helper()
	var b bytes.Buffer
	if err := Read(context.Background(), &b, nil, path, func() bool { return true }, o); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// sampleLog has a line split in partial entries, an empty line, both
// streams and a malformed line, one entry a second from 10:00:01.
const sampleLog = `2026-11-25T10:00:01Z stdout F one
2026-11-25T10:00:02.5Z stderr F two
2026-11-25T10:00:03.000000001Z stdout P thr
2026-11-25T10:00:04Z stdout P e
2026-11-25T10:00:05Z stdout F e
not a log line
2026-11-25T10:00:06Z stdout F 
2026-11-25T10:00:07Z stdout F four
`

func TestRead(t *testing.T) {
	path := writeFile(t, sampleLog)
	at := func(s string) time.Time {
		ts, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return ts
	}
	for _, tc := range []struct {
		name string
		o    ReadOptions
		want string
	}{
		{"everything", ReadOptions{}, "one\ntwo\nthree\n\nfour\n"},
		{"tail 0", ReadOptions{TailLines: ptr(0)}, ""},
		{"tail 1", ReadOptions{TailLines: ptr(1)}, "four\n"},
		{"tail 3 keeps a line's partial entries", ReadOptions{TailLines: ptr(3)}, "three\n\nfour\n"},
		{"tail more than there is", ReadOptions{TailLines: ptr(100)}, "one\ntwo\nthree\n\nfour\n"},
		{"since", ReadOptions{Since: at("2026-11-25T10:00:02.5Z")}, "two\nthree\n\nfour\n"},
		{"since in another zone", ReadOptions{Since: at("2026-11-25T11:00:06+01:00")}, "\nfour\n"},
		{"since cuts a line's partial entries", ReadOptions{Since: at("2026-11-25T10:00:04Z")}, "ee\n\nfour\n"},
		{"since after the end", ReadOptions{Since: at("2026-11-25T11:00:00Z")}, ""},
		{"limitBytes", ReadOptions{LimitBytes: ptr(6)}, "one\ntw"},
		{"limitBytes at a line end", ReadOptions{LimitBytes: ptr(8)}, "one\ntwo\n"},
		{"limitBytes more than there is", ReadOptions{LimitBytes: ptr(1000)}, "one\ntwo\nthree\n\nfour\n"},
		{"tail and limitBytes", ReadOptions{TailLines: ptr(3), LimitBytes: ptr(4)}, "thre"},
		{"timestamps once a line", ReadOptions{Timestamps: true, TailLines: ptr(3)},
			"2026-11-25T10:00:03.000000001Z three\n2026-11-25T10:00:06Z \n2026-11-25T10:00:07Z four\n"},
		{"timestamps count against limitBytes", ReadOptions{Timestamps: true, LimitBytes: ptr(24)}, "2026-11-25T10:00:01Z one"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := readAll(t, path, tc.o); got != tc.want {
				t.Errorf("read %q, want %q", got, tc.want)
			}
		})
	}
}

func TestReadMissingFile(t *testing.T) {
	err := Read(context.Background(), &bytes.Buffer{}, nil, filepath.Join(t.TempDir(), "0.log"), nil, ReadOptions{})
	if !os.IsNotExist(err) {
		t.Errorf("Read of a missing file = %v", err)
	}
}

// TestReadContainerdFormat reads a file as containerd's CRI plugin writes
// it (internal/cri/io/logger.go): time.Now() in the local zone formatted
// with time.RFC3339Nano, so trailing zeros of the fraction are dropped and
// the offset is the zone's; a line over the limit split into P entries; an
// empty line as "<time> <stream> F " with nothing after the space; and
// output that ends without a newline when the stream closes as a last P
// entry that no F follows.
func TestReadContainerdFormat(t *testing.T) {
	const file = "2026-11-25T11:00:00.1+01:00 stdout F hello\n" +
		"2026-11-25T11:00:00.12+01:00 stderr F oops\n" +
		"2026-11-25T11:00:01+01:00 stdout P a long line spl\n" +
		"2026-11-25T11:00:01.000000001+01:00 stdout F it in two\n" +
		"2026-11-25T11:00:02.123456789+01:00 stdout F \n" +
		"2026-11-25T11:00:03.5+01:00 stdout F bye\n" +
		"2026-11-25T11:00:04+01:00 stdout P no newline at exit\n"
	path := writeFile(t, file)
	for _, tc := range []struct {
		name string
		o    ReadOptions
		want string
	}{
		{"everything", ReadOptions{}, "hello\noops\na long line split in two\n\nbye\nno newline at exit"},
		{"tail", ReadOptions{TailLines: ptr(4)}, "a long line split in two\n\nbye\nno newline at exit"},
		{"tail of the unterminated last line", ReadOptions{TailLines: ptr(1)}, "no newline at exit"},
		{"since", ReadOptions{Since: time.Date(2026, 11, 25, 10, 0, 0, 110_000_000, time.UTC)}, "oops\na long line split in two\n\nbye\nno newline at exit"},
		{"timestamps as written", ReadOptions{Timestamps: true, TailLines: ptr(3)},
			"2026-11-25T11:00:02.123456789+01:00 \n2026-11-25T11:00:03.5+01:00 bye\n2026-11-25T11:00:04+01:00 no newline at exit"},
		{"limitBytes", ReadOptions{LimitBytes: ptr(12)}, "hello\noops\na"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := readAll(t, path, tc.o); got != tc.want {
				t.Errorf("read %q, want %q", got, tc.want)
			}
		})
	}
}

// sink collects what a following Read writes and signals each flush.
type sink struct {
	mu      sync.Mutex
	b       bytes.Buffer
	flushed chan struct{}
}

func newSink() *sink { return &sink{flushed: make(chan struct{}, 1)} }

func (s *sink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *sink) flush() {
	select {
	case s.flushed <- struct{}{}:
	default:
	}
}

func (s *sink) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor waits until the sink holds want, flush by flush.
func (s *sink) waitFor(t *testing.T, want string) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for s.String() != want {
		select {
		case <-s.flushed:
		case <-timeout:
			t.Fatalf("read %q, want %q", s.String(), want)
		}
	}
}

// follow starts a following read of path and returns its sink and result.
func follow(t *testing.T, ctx context.Context, path string, running func() bool, o ReadOptions, clk *testingclock.FakeClock) (*sink, <-chan error) {
	t.Helper()
	s := newSink()
	done := make(chan error, 1)
	o.Follow = true
	go func() {
		if clk != nil {
			done <- read(ctx, clk, s, s.flush, path, running, o)
		} else {
			done <- Read(ctx, s, s.flush, path, running, o)
		}
	}()
	return s, done
}

func waitDone(t *testing.T, done <-chan error) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Read = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Read did not return")
	}
}

func appendTo(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

func TestReadFollowEndsWhenTheRunEnds(t *testing.T) {
	path := writeFile(t, "2026-11-25T10:00:01Z stdout F one\n2026-11-25T10:00:02Z stdout F two\n")
	clk := testingclock.NewFakeClock(time.Now())
	var running atomic.Bool
	running.Store(true)
	s, done := follow(t, context.Background(), path, running.Load, ReadOptions{TailLines: ptr(1)}, clk)
	s.waitFor(t, "two\n")

	// Lines are written as they come; half a line waits for its end.
	appendTo(t, path, "2026-11-25T10:00:03Z stdout F three\n2026-11-25T10:00:04Z stdout F fo")
	s.waitFor(t, "two\nthree\n")
	appendTo(t, path, "ur\n")
	s.waitFor(t, "two\nthree\nfour\n")

	// A check while the run runs goes on following.
	clk.Step(checkEvery)
	appendTo(t, path, "2026-11-25T10:00:05Z stdout F five\n")
	s.waitFor(t, "two\nthree\nfour\nfive\n")

	// The run writes its last line and ends: the next check drains the
	// file and ends the read.
	appendTo(t, path, "2026-11-25T10:00:06Z stdout F six\n")
	running.Store(false)
	clk.Step(checkEvery)
	waitDone(t, done)
	if got := s.String(); got != "two\nthree\nfour\nfive\nsix\n" {
		t.Errorf("read %q", got)
	}
}

func TestReadFollowPreviousEndsAtTheFirstCheck(t *testing.T) {
	path := writeFile(t, "2026-11-25T10:00:01Z stdout F one\n")
	clk := testingclock.NewFakeClock(time.Now())
	s, done := follow(t, context.Background(), path, func() bool { return true }, ReadOptions{Previous: true}, clk)
	s.waitFor(t, "one\n")
	clk.Step(checkEvery)
	waitDone(t, done)
}

func TestReadFollowEndsWithTheContext(t *testing.T) {
	path := writeFile(t, "2026-11-25T10:00:01Z stdout F one\n")
	ctx, cancel := context.WithCancel(context.Background())
	s, done := follow(t, ctx, path, func() bool { return true }, ReadOptions{}, testingclock.NewFakeClock(time.Now()))
	s.waitFor(t, "one\n")
	cancel()
	waitDone(t, done)
}

func TestReadFollowLimitBytes(t *testing.T) {
	path := writeFile(t, "2026-11-25T10:00:01Z stdout F one\n")
	s, done := follow(t, context.Background(), path, func() bool { return true }, ReadOptions{LimitBytes: ptr(7)}, testingclock.NewFakeClock(time.Now()))
	s.waitFor(t, "one\n")
	appendTo(t, path, "2026-11-25T10:00:02Z stdout F two and more\n")
	waitDone(t, done)
	if got := s.String(); got != "one\ntwo" {
		t.Errorf("read %q", got)
	}
}

// TestReadFollowsWriterRotation follows a run whose Writer rotates its
// file several times.
func TestReadFollowsWriterRotation(t *testing.T) {
	w, path := newWriter(t, Options{MaxSize: 200, MaxFiles: 2})
	defer w.Close()
	fmt.Fprintln(w.Stdout(), "line 00")
	ctx, cancel := context.WithCancel(context.Background())
	s, done := follow(t, ctx, path, func() bool { return true }, ReadOptions{}, nil)
	want := "line 00\n"
	s.waitFor(t, want)
	for i := 1; i < 30; i++ {
		line := fmt.Sprintf("line %02d %s", i, strings.Repeat("-", 30))
		fmt.Fprintln(w.Stdout(), line)
		want += line + "\n"
		s.waitFor(t, want)
	}
	if n := len(Rotated(path)); n != 2 {
		t.Errorf("%d files, want a rotated one and the current", n)
	}
	cancel()
	waitDone(t, done)
}

// TestReadFollowsKubeletRotation follows a file that a CRI runtime writes
// and the kubelet's log manager rotates: renamed to <N>.log.<timestamp>,
// then a new <N>.log that the runtime reopens.
func TestReadFollowsKubeletRotation(t *testing.T) {
	path := writeFile(t, "2026-11-25T11:00:00.1+01:00 stdout F one\n")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, done := follow(t, ctx, path, func() bool { return true }, ReadOptions{}, nil)
	s.waitFor(t, "one\n")
	appendTo(t, path, "2026-11-25T11:00:00.2+01:00 stdout F two\n")
	if err := os.Rename(path, path+".20261125-100000"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("2026-11-25T11:00:00.3+01:00 stdout F three\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s.waitFor(t, "one\ntwo\nthree\n")
	appendTo(t, path, "2026-11-25T11:00:00.4+01:00 stdout F four\n")
	s.waitFor(t, "one\ntwo\nthree\nfour\n")
	cancel()
	waitDone(t, done)
}

// TestReadTailOfALineBeingWritten tails a run whose last line is still
// being written in partial entries: that line is the last one.
func TestReadTailOfALineBeingWritten(t *testing.T) {
	path := writeFile(t, sampleLog+"2026-11-25T10:00:08Z stdout P fi\n2026-11-25T10:00:09Z stdout P v\n")
	for _, tc := range []struct {
		n    int64
		want string
	}{{0, ""}, {1, "fiv"}, {2, "four\nfiv"}, {3, "\nfour\nfiv"}} {
		if got := readAll(t, path, ReadOptions{TailLines: ptr(tc.n)}); got != tc.want {
			t.Errorf("tail %d: read %q, want %q", tc.n, got, tc.want)
		}
	}
}
