//go:build linux

package volume

import (
	"os"
	"path/filepath"
	"testing"

	v1 "k8s.io/api/core/v1"
)

// tmpfsFixture returns a fixture whose Manager may mount tmpfs, or skips
// when this process cannot mount.
func tmpfsFixture(t *testing.T) *fixture {
	t.Helper()
	if !canMount() {
		t.Skip("not root: tmpfs cannot be mounted")
	}
	probe := t.TempDir()
	if err := mountTmpfs(probe, 0o700, 1<<20); err != nil {
		t.Skipf("mount(2) does not work here: %v", err)
	}
	if err := unmount(probe); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, secret("creds", map[string]string{"k": "v"}))
	f.m.tmpfs = TmpfsAuto
	return f
}

func TestTmpfsVolumes(t *testing.T) {
	f := tmpfsFixture(t)
	pod := newPod(secretVolume("creds", "creds"), emptyDirVolume("mem", v1.StorageMediumMemory, "2Mi"), emptyDirVolume("disk", "", ""))
	t.Cleanup(func() { _ = f.m.TearDown(f.ctx, pod.UID, f.podDir) })
	paths := f.setUp(t, pod)
	for name, want := range map[string]bool{"creds": true, "mem": true, "disk": false} {
		mounted, err := isMountPoint(paths[name])
		if err != nil || mounted != want {
			t.Errorf("%s: mounted = %v, %v; want %v", name, mounted, err, want)
		}
	}
	if got := fileMode(t, paths["creds"]); got != 0o700 {
		t.Errorf("secret tmpfs mode = %v", got)
	}
	if got := readFile(t, filepath.Join(paths["creds"], "k")); got != "v" {
		t.Errorf("k = %q", got)
	}
	// The tmpfs size is the sizeLimit: writing more fails.
	if err := os.WriteFile(filepath.Join(paths["mem"], "big"), make([]byte, 3<<20), 0o600); err == nil {
		t.Error("wrote 3 MiB into a 2Mi memory emptyDir")
	}
	// SetUp again does not mount twice.
	f.setUp(t, pod)
	// A subPath copy of the secret stays in memory.
	cp, err := f.m.SubPath(pod, "app", 0, "creds", "k")
	if err != nil {
		t.Fatal(err)
	}
	if mounted, err := isMountPoint(filepath.Dir(filepath.Dir(cp))); err != nil || !mounted {
		t.Errorf("subPath copies of the secret not on a tmpfs: %v %v", mounted, err)
	}
	if got := readFile(t, cp); got != "v" {
		t.Errorf("copy = %q", got)
	}
	if err := f.m.TearDown(f.ctx, pod.UID, f.podDir); err != nil {
		t.Fatal(err)
	}
	if exists(paths["creds"]) || exists(paths["mem"]) || exists(cp) {
		t.Error("volumes left after TearDown")
	}
}

func TestTmpfsNotOverExistingContent(t *testing.T) {
	f := tmpfsFixture(t)
	pod := newPod(emptyDirVolume("mem", v1.StorageMediumMemory, ""))
	dir := filepath.Join(f.podDir, "volumes", "mem")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "data"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.m.TearDown(f.ctx, pod.UID, f.podDir) })
	f.setUp(t, pod)
	if mounted, _ := isMountPoint(dir); mounted {
		t.Error("tmpfs mounted over existing content")
	}
	if got := readFile(t, filepath.Join(dir, "data")); got != "x" {
		t.Errorf("data = %q", got)
	}
}
