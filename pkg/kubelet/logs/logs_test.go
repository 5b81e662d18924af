package logs

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// stepClock returns a Now that advances by a microsecond on each call, so
// every line and every rotated file has its own time.
func stepClock() func() time.Time {
	var mu sync.Mutex
	t := time.Date(2026, 11, 25, 10, 0, 0, 1, time.FixedZone("CET", 3600))
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		t = t.Add(time.Microsecond)
		return t
	}
}

type line struct {
	ts             time.Time
	stream, tag, s string
}

// readLines parses a CRI log file.
func readLines(t *testing.T, path string) []line {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []line
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), " ", 4)
		if len(parts) != 4 {
			t.Fatalf("malformed line %q", sc.Text())
		}
		ts, err := time.Parse(time.RFC3339Nano, parts[0])
		if err != nil {
			t.Fatalf("timestamp of %q: %v", sc.Text(), err)
		}
		if !strings.HasSuffix(parts[0], "Z") {
			t.Errorf("timestamp %q is not UTC", parts[0])
		}
		out = append(out, line{ts, parts[1], parts[2], parts[3]})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func newWriter(t *testing.T, o Options) (*Writer, string) {
	t.Helper()
	path := RunPath(ContainerDir(t.TempDir(), "default", "web", "uid-1", "app"), 0)
	if o.Now == nil {
		o.Now = stepClock()
	}
	w, err := NewWriter(path, o)
	if err != nil {
		t.Fatal(err)
	}
	return w, path
}

func TestLayout(t *testing.T) {
	dir := ContainerDir("/var/log/pods", "default", "web", "uid-1", "app")
	if dir != "/var/log/pods/default_web_uid-1/app" || RunPath(dir, 3) != "/var/log/pods/default_web_uid-1/app/3.log" {
		t.Errorf("dir = %s, run path = %s", dir, RunPath(dir, 3))
	}
	if got := PodDir("/r", "ns", "p", "u"); got != "/r/ns_p_u" {
		t.Errorf("PodDir = %s", got)
	}
}

func TestCRIFormat(t *testing.T) {
	w, path := newWriter(t, Options{})
	fmt.Fprint(w.Stdout(), "hello\nwor")
	fmt.Fprint(w.Stdout(), "ld\n\n")
	fmt.Fprint(w.Stderr(), "oops\n")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got := readLines(t, path)
	want := []line{{stream: Stdout, tag: "F", s: "hello"}, {stream: Stdout, tag: "F", s: "world"}, {stream: Stdout, tag: "F", s: ""}, {stream: Stderr, tag: "F", s: "oops"}}
	if len(got) != len(want) {
		t.Fatalf("lines = %+v", got)
	}
	for i := range want {
		if got[i].stream != want[i].stream || got[i].tag != want[i].tag || got[i].s != want[i].s {
			t.Errorf("line %d = %+v, want %+v", i, got[i], want[i])
		}
		if i > 0 && !got[i].ts.After(got[i-1].ts) {
			t.Errorf("line %d time %v not after %v", i, got[i].ts, got[i-1].ts)
		}
	}
	if got[0].ts.Nanosecond()%1000 != 1 {
		t.Errorf("time %v lost its nanoseconds", got[0].ts)
	}
	raw, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(raw), "2026-11-25T09:00:00.000001001Z stdout F hello\n") {
		t.Errorf("first line = %q", strings.SplitAfter(string(raw), "\n")[0])
	}
}

func TestLongLinesSplit(t *testing.T) {
	for _, tc := range []struct {
		name  string
		n     int
		tags  []string
		sizes []int
	}{
		{"exactly the limit", MaxLineBytes, []string{"F"}, []int{MaxLineBytes}},
		{"one byte over", MaxLineBytes + 1, []string{"P", "F"}, []int{MaxLineBytes, 1}},
		{"two and a half", 2*MaxLineBytes + MaxLineBytes/2, []string{"P", "P", "F"}, []int{MaxLineBytes, MaxLineBytes, MaxLineBytes / 2}},
		{"two exactly", 2 * MaxLineBytes, []string{"P", "F"}, []int{MaxLineBytes, MaxLineBytes}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, chunked := range []bool{false, true} {
				w, path := newWriter(t, Options{})
				text := strings.Repeat("x", tc.n-1) + "y"
				if chunked {
					// Written in small pieces, as a guest's fd_write does.
					for s := text; len(s) > 0; {
						n := min(1000, len(s))
						fmt.Fprint(w.Stdout(), s[:n])
						s = s[n:]
					}
					fmt.Fprint(w.Stdout(), "\n")
				} else {
					fmt.Fprint(w.Stdout(), text+"\n")
				}
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
				got := readLines(t, path)
				var tags []string
				var sizes []int
				var joined strings.Builder
				for _, l := range got {
					tags, sizes = append(tags, l.tag), append(sizes, len(l.s))
					joined.WriteString(l.s)
				}
				if !slices.Equal(tags, tc.tags) || !slices.Equal(sizes, tc.sizes) || joined.String() != text {
					t.Errorf("chunked=%v: tags %v sizes %v, want %v %v", chunked, tags, sizes, tc.tags, tc.sizes)
				}
			}
		})
	}
}

func TestPartialLineFlushedOnClose(t *testing.T) {
	w, path := newWriter(t, Options{})
	fmt.Fprint(w.Stdout(), "done\nno newline at the end")
	fmt.Fprint(w.Stderr(), "error without newline")
	if got := readLines(t, path); len(got) != 1 {
		t.Fatalf("before Close: %+v, want only the full line", got)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got := readLines(t, path)
	if len(got) != 3 || got[1] != (line{got[1].ts, Stdout, "F", "no newline at the end"}) || got[2] != (line{got[2].ts, Stderr, "F", "error without newline"}) {
		t.Errorf("lines = %+v", got)
	}
	// Writing after Close is harmless.
	if n, err := fmt.Fprint(w.Stdout(), "late\n"); n != 5 || err != nil {
		t.Errorf("write after close = %d, %v", n, err)
	}
	if err := w.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

func TestRotation(t *testing.T) {
	const maxSize = 300
	w, path := newWriter(t, Options{MaxSize: maxSize, MaxFiles: 3})
	var written []string
	for i := range 40 {
		s := fmt.Sprintf("line %02d %s", i, strings.Repeat("-", 20))
		written = append(written, s)
		fmt.Fprintln(w.Stdout(), s)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	files := Rotated(path)
	if len(files) != 3 || files[2] != path {
		t.Fatalf("files = %v, want 2 rotated and the current", files)
	}
	var kept []string
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if f != path && st.Size() < maxSize {
			t.Errorf("%s rotated at %d bytes, before %d", filepath.Base(f), st.Size(), maxSize)
		}
		if st.Size() > maxSize+64 {
			t.Errorf("%s grew to %d bytes", filepath.Base(f), st.Size())
		}
		for _, l := range readLines(t, f) {
			kept = append(kept, l.s)
		}
	}
	// The newest lines are kept, in order, without gaps.
	if len(kept) == 0 || !slices.Equal(kept, written[len(written)-len(kept):]) {
		t.Errorf("kept lines = %v", kept)
	}
	// Rotated files are named after the run file and sort in time order.
	for _, f := range files[:2] {
		if !strings.HasPrefix(filepath.Base(f), "0.log.2026") {
			t.Errorf("rotated file %s", f)
		}
	}
}

func TestRotationKeepsAtLeastTwoFiles(t *testing.T) {
	w, path := newWriter(t, Options{MaxSize: 50, MaxFiles: 0})
	for i := range 10 {
		fmt.Fprintf(w.Stdout(), "line %d with some text\n", i)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if files := Rotated(path); len(files) != 2 {
		t.Errorf("files = %v, want one rotated and the current", files)
	}
}

func TestRotatedDoesNotMixRuns(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"1.log", "1.log.20261125-100000.000000001", "10.log", "10.log.20261125-100000.000000001"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got := Rotated(RunPath(dir, 1))
	want := []string{filepath.Join(dir, "1.log.20261125-100000.000000001"), filepath.Join(dir, "1.log")}
	if !slices.Equal(got, want) {
		t.Errorf("Rotated = %v, want %v", got, want)
	}
	if got := Rotated(RunPath(dir, 7)); len(got) != 0 {
		t.Errorf("Rotated of a run with no file = %v", got)
	}
}

func TestPruneRuns(t *testing.T) {
	dir := t.TempDir()
	names := []string{"0.log", "0.log.20261125-100000.000000001", "1.log", "2.log", "2.log.20261125-100000.000000001", "3.log", "notes.txt"}
	for _, name := range names {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Run 3 starts: runs before 2 go, the previous run stays.
	if err := PruneRuns(dir, 2); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	want := []string{"2.log", "2.log.20261125-100000.000000001", "3.log", "notes.txt"}
	if !slices.Equal(got, want) {
		t.Errorf("left %v, want %v", got, want)
	}
	if err := PruneRuns(filepath.Join(dir, "missing"), 5); err != nil {
		t.Errorf("PruneRuns of a missing dir = %v", err)
	}
}

func TestConcurrentStreamsDoNotInterleave(t *testing.T) {
	w, path := newWriter(t, Options{Now: time.Now})
	const n = 200
	var wg sync.WaitGroup
	for _, s := range []struct {
		stream string
		w      interface{ Write([]byte) (int, error) }
	}{{Stdout, w.Stdout()}, {Stderr, w.Stderr()}} {
		wg.Go(func() {
			for i := range n {
				// Each line arrives in three writes.
				fmt.Fprintf(s.w, "%s-%03d-", s.stream, i)
				fmt.Fprint(s.w, strings.Repeat(s.stream[3:], 50))
				fmt.Fprint(s.w, "-end\n")
			}
		})
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	next := map[string]int{}
	for _, l := range readLines(t, path) {
		want := fmt.Sprintf("%s-%03d-%s-end", l.stream, next[l.stream], strings.Repeat(l.stream[3:], 50))
		if l.s != want || l.tag != "F" {
			t.Fatalf("%s line %d = %q (%s), want %q", l.stream, next[l.stream], l.s, l.tag, want)
		}
		next[l.stream]++
	}
	if next[Stdout] != n || next[Stderr] != n {
		t.Errorf("lines: %v, want %d each", next, n)
	}
}

func TestNewWriterTruncatesAndFailsCleanly(t *testing.T) {
	w, path := newWriter(t, Options{})
	fmt.Fprintln(w.Stdout(), "first run")
	w.Close()
	w2, err := NewWriter(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	w2.Close()
	if got := readLines(t, path); len(got) != 0 {
		t.Errorf("a new writer keeps %v", got)
	}
	// The directory cannot be made under a file.
	if _, err := NewWriter(filepath.Join(path, "x", "0.log"), Options{}); err == nil {
		t.Error("NewWriter under a file succeeded")
	}
}

func touch(t *testing.T, dir string, names ...string) {
	t.Helper()
	for _, name := range names {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRuns(t *testing.T) {
	dir := t.TempDir()
	touch(t, dir, "10.log", "2.log", "0.log", "3.log.20261125-100000.000000001", "4.log.20261125-100000",
		"notes.txt", "app.log", "-1.log", "99999999999.log", "1.log.gz")
	if got, want := Runs(dir), []int32{0, 2, 10}; !slices.Equal(got, want) {
		t.Errorf("Runs = %v, want %v", got, want)
	}
	if got := Runs(filepath.Join(dir, "missing")); len(got) != 0 {
		t.Errorf("Runs of a missing dir = %v", got)
	}
}

func TestRunFile(t *testing.T) {
	for _, tc := range []struct {
		name     string
		files    []string
		previous bool
		wantRun  int32
		wantErr  error
	}{
		{name: "no log", wantErr: ErrNoLog},
		{name: "no log, previous", previous: true, wantErr: ErrNoPreviousRun},
		{name: "only rotated files", files: []string{"0.log.20261125-100000"}, wantErr: ErrNoLog},
		{name: "first run", files: []string{"0.log"}, wantRun: 0},
		{name: "first run, previous", files: []string{"0.log"}, previous: true, wantErr: ErrNoPreviousRun},
		{name: "latest", files: []string{"9.log", "10.log", "8.log.20261125-100000"}, wantRun: 10},
		{name: "previous", files: []string{"9.log", "10.log", "8.log.20261125-100000"}, previous: true, wantRun: 9},
		{name: "previous across a gap", files: []string{"2.log", "5.log"}, previous: true, wantRun: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			touch(t, dir, tc.files...)
			path, run, err := RunFile(dir, tc.previous)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Errorf("error = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil || run != tc.wantRun || path != RunPath(dir, tc.wantRun) {
				t.Errorf("RunFile = %s, %d, %v; want run %d", path, run, err, tc.wantRun)
			}
		})
	}
	// A container dir that does not exist yet has no log.
	if _, _, err := RunFile(filepath.Join(t.TempDir(), "app"), false); !errors.Is(err, ErrNoLog) {
		t.Errorf("missing dir: %v", err)
	}
}
