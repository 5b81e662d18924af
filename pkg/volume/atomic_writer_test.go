package volume

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/klog/v2/ktesting"
)

func TestValidatePath(t *testing.T) {
	// The kubelet's cases.
	cases := []struct {
		name  string
		path  string
		valid bool
	}{
		{name: "valid 1", path: "i/am/well/behaved.txt", valid: true},
		{name: "valid 2", path: "keepyourheaddownandfollowtherules.txt", valid: true},
		{name: "max path length", path: strings.Repeat("a", maxPathLength+1)},
		{name: "max file length", path: strings.Repeat("a", maxFileNameLength+1)},
		{name: "absolute failure", path: "/dev/null"},
		{name: "reserved path", path: "..sneaky.txt"},
		{name: "contains doubledot 1", path: "hello/there/../../../../../../etc/passwd"},
		{name: "contains doubledot 2", path: "hello/../etc/somethingbad"},
		{name: "empty", path: ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := validatePath(tc.path)
			if tc.valid && err != nil {
				t.Errorf("unexpected failure: %v", err)
			}
			if !tc.valid && err == nil {
				t.Errorf("unexpected success")
			}
		})
	}
}

func newWriter(t *testing.T) (*atomicWriter, *time.Time) {
	t.Helper()
	now := epoch
	logger, _ := ktesting.NewTestContext(t)
	return &atomicWriter{targetDir: t.TempDir(), now: func() time.Time { return now }, logger: logger}, &now
}

func TestAtomicWriterLayoutAndUpdate(t *testing.T) {
	old := syscall.Umask(0o077) // modes must not depend on the umask
	defer syscall.Umask(old)
	w, now := newWriter(t)
	dir := w.targetDir

	changed, err := w.write(map[string]fileProjection{
		"a":         {Data: []byte("one"), Mode: 0o644},
		"sub/b.txt": {Data: []byte("two"), Mode: 0o400},
	})
	if err != nil || !changed {
		t.Fatalf("first write: changed=%v err=%v", changed, err)
	}
	first, err := os.Readlink(filepath.Join(dir, "..data"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(first, "..2026_01_02_15_04_05.") || filepath.IsAbs(first) {
		t.Errorf("..data -> %q, want a relative timestamped directory", first)
	}
	for name, target := range map[string]string{"a": "..data/a", "sub": "..data/sub"} {
		if got, err := os.Readlink(filepath.Join(dir, name)); err != nil || got != target {
			t.Errorf("%s -> %q (%v), want %q", name, got, err, target)
		}
	}
	if got := readFile(t, filepath.Join(dir, "sub/b.txt")); got != "two" {
		t.Errorf("sub/b.txt = %q", got)
	}
	if got := fileMode(t, filepath.Join(dir, "a")); got != 0o644 {
		t.Errorf("mode of a = %v, want 0644", got)
	}
	if got := fileMode(t, filepath.Join(dir, "sub/b.txt")); got != 0o400 {
		t.Errorf("mode of sub/b.txt = %v, want 0400", got)
	}
	if err := checkSymlinks(dir); err != nil {
		t.Errorf("checkSymlinks: %v", err)
	}

	// The same payload changes nothing.
	changed, err = w.write(map[string]fileProjection{
		"a":         {Data: []byte("one"), Mode: 0o644},
		"sub/b.txt": {Data: []byte("two"), Mode: 0o400},
	})
	if err != nil || changed {
		t.Fatalf("same write: changed=%v err=%v", changed, err)
	}
	if got, _ := os.Readlink(filepath.Join(dir, "..data")); got != first {
		t.Errorf("..data changed to %q on an identical write", got)
	}

	// An update swaps ..data, drops removed paths and the old directory.
	*now = now.Add(time.Minute)
	changed, err = w.write(map[string]fileProjection{
		"a": {Data: []byte("three"), Mode: 0o644},
		"c": {Data: []byte("four"), Mode: 0o600},
	})
	if err != nil || !changed {
		t.Fatalf("update: changed=%v err=%v", changed, err)
	}
	second, _ := os.Readlink(filepath.Join(dir, "..data"))
	if second == first || !strings.HasPrefix(second, "..2026_01_02_15_05_05.") {
		t.Errorf("..data -> %q after update (was %q)", second, first)
	}
	if exists(filepath.Join(dir, first)) {
		t.Errorf("old data directory %s still exists", first)
	}
	if exists(filepath.Join(dir, "sub")) {
		t.Errorf("removed path sub still visible")
	}
	if exists(filepath.Join(dir, "..data_tmp")) {
		t.Errorf("..data_tmp left behind")
	}
	if got := readFile(t, filepath.Join(dir, "a")); got != "three" {
		t.Errorf("a = %q, want three", got)
	}
	if got := readFile(t, filepath.Join(dir, "c")); got != "four" {
		t.Errorf("c = %q, want four", got)
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if len(names) != 4 { // a, c, ..data, ..2026…
		t.Errorf("entries after update: %v", names)
	}
}

func TestAtomicWriterModeChangeRewrites(t *testing.T) {
	w, _ := newWriter(t)
	if _, err := w.write(map[string]fileProjection{"a": {Data: []byte("x"), Mode: 0o644}}); err != nil {
		t.Fatal(err)
	}
	changed, err := w.write(map[string]fileProjection{"a": {Data: []byte("x"), Mode: 0o600}})
	if err != nil || !changed {
		t.Fatalf("changed=%v err=%v", changed, err)
	}
	if got := fileMode(t, filepath.Join(w.targetDir, "a")); got != 0o600 {
		t.Errorf("mode = %v", got)
	}
}

func TestAtomicWriterRefusesBadPaths(t *testing.T) {
	for _, p := range []string{"../escape", "/etc/passwd", "a/../../b", "..data"} {
		t.Run(p, func(t *testing.T) {
			w, _ := newWriter(t)
			if _, err := w.write(map[string]fileProjection{p: {Data: []byte("x"), Mode: 0o644}}); err == nil {
				t.Errorf("write of %q succeeded", p)
			}
			if entries, _ := os.ReadDir(w.targetDir); len(entries) != 0 {
				t.Errorf("something was written: %v", entries)
			}
		})
	}
}

func TestCheckSymlinks(t *testing.T) {
	dir := t.TempDir()
	if err := os.Symlink("/etc", filepath.Join(dir, "abs")); err != nil {
		t.Fatal(err)
	}
	if err := checkSymlinks(dir); err == nil {
		t.Error("absolute symlink accepted")
	}
	dir = t.TempDir()
	if err := os.Symlink("../../../../../../../etc", filepath.Join(dir, "up")); err != nil {
		t.Fatal(err)
	}
	if err := checkSymlinks(dir); err == nil {
		t.Error("symlink out of the volume accepted")
	}
}
