package volume

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestValidateSubPath(t *testing.T) {
	for p, ok := range map[string]bool{
		"a":             true,
		"a/b/c":         true,
		"..data":        true, // a name, not a backstep
		"a..b":          true,
		"/abs":          false,
		"..":            false,
		"../x":          false,
		"a/../../x":     false,
		"a/..":          false,
		"/":             false,
		"./a/./b/../..": false,
	} {
		if err := ValidateSubPath(p); (err == nil) != ok {
			t.Errorf("ValidateSubPath(%q) = %v, want ok=%v", p, err, ok)
		}
	}
}

func TestSubPathLiveVolume(t *testing.T) {
	f := newFixture(t)
	pod := newPod(emptyDirVolume("scratch", "", ""))
	paths := f.setUp(t, pod)

	got, err := f.m.SubPath(pod, "app", 0, "scratch", "logs/app")
	if err != nil {
		t.Fatal(err)
	}
	real, _ := filepath.EvalSymlinks(filepath.Join(paths["scratch"], "logs/app"))
	if got != real {
		t.Errorf("SubPath = %s, want %s inside the volume", got, real)
	}
	if info, err := os.Stat(got); err != nil || !info.IsDir() || info.Mode().Perm() != diskVolumeMode {
		t.Errorf("subPath directory: %v %v", info, err)
	}
	// Live: a write through the subPath shows in the volume.
	if err := os.WriteFile(filepath.Join(got, "x"), []byte("1"), 0o644); err != nil {
		t.Fatal(err)
	}
	if readFile(t, filepath.Join(paths["scratch"], "logs/app/x")) != "1" {
		t.Error("subPath is not the volume's directory")
	}
	// An existing file is fine.
	if _, err := f.m.SubPath(pod, "app", 1, "scratch", "logs/app/x"); err != nil {
		t.Errorf("file subPath: %v", err)
	}
}

func TestSubPathRefusals(t *testing.T) {
	f := newFixture(t)
	pod := newPod(emptyDirVolume("scratch", "", ""))
	paths := f.setUp(t, pod)
	outside := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(paths["scratch"], "escape")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/passwd", filepath.Join(paths["scratch"], "passwd")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(paths["scratch"], "in"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("in", filepath.Join(paths["scratch"], "alias")); err != nil {
		t.Fatal(err)
	}
	for sub, want := range map[string]string{
		"../../etc":      "must not contain '..'",
		"/etc":           "must not be an absolute path",
		"a/../../..":     "must not contain '..'",
		"escape":         "outside its volume",
		"escape/created": "outside its volume",
		"passwd":         "outside its volume",
	} {
		t.Run(sub, func(t *testing.T) {
			_, err := f.m.SubPath(pod, "app", 0, "scratch", sub)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("err = %v, want %q", err, want)
			}
		})
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("something was created outside the volume: %v", entries)
	}
	// A symlink that stays inside is followed.
	got, err := f.m.SubPath(pod, "app", 0, "scratch", "alias/deeper")
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := filepath.EvalSymlinks(filepath.Join(paths["scratch"], "in", "deeper")); got != want {
		t.Errorf("SubPath = %s, want %s", got, want)
	}
	if _, err := f.m.SubPath(pod, "app", 0, "nope", "x"); err == nil {
		t.Error("unknown volume accepted")
	}
	other := newPod(emptyDirVolume("scratch", "", ""))
	other.UID = "never-set-up"
	if _, err := f.m.SubPath(other, "app", 0, "scratch", "x"); err == nil {
		t.Error("pod never set up accepted")
	}
}

func TestSubPathOfConfigMapIsCopiedOnce(t *testing.T) {
	f := newFixture(t, configMap("cfg", map[string]string{"app.conf": "v1", "other": "o"}))
	pod := newPod(configMapVolume("config", "cfg",
		v1.KeyToPath{Key: "app.conf", Path: "app.conf", Mode: ptr(int32(0o600))},
		v1.KeyToPath{Key: "other", Path: "dir/other"},
	))
	f.setUp(t, pod)

	file, err := f.m.SubPath(pod, "app", 2, "config", "app.conf")
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(f.podDir, "volume-subpaths", "config", "app", "2"); file != want {
		t.Errorf("SubPath = %s, want %s", file, want)
	}
	if info, err := os.Lstat(file); err != nil || !info.Mode().IsRegular() || info.Mode().Perm() != 0o600 {
		t.Errorf("copy: %v %v, want a regular file of mode 0600", info, err)
	}
	dir, err := f.m.SubPath(pod, "app", 3, "config", "dir")
	if err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(dir, "other")); got != "o" {
		t.Errorf("dir/other = %q", got)
	}
	missing, err := f.m.SubPath(pod, "app", 4, "config", "absent")
	if err != nil {
		t.Fatal(err)
	}
	if info, err := os.Stat(missing); err != nil || !info.IsDir() {
		t.Errorf("missing subPath: %v %v, want an empty directory", info, err)
	}
	if err := checkSymlinks(filepath.Join(f.podDir, "volume-subpaths")); err != nil {
		t.Error(err)
	}

	// The ConfigMap changes: the volume follows, the subPath copy does not,
	// also when the container restarts and asks again.
	if _, err := f.client.CoreV1().ConfigMaps("ns").Update(f.ctx, configMap("cfg", map[string]string{"app.conf": "v2", "other": "o"}), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	f.clock.Step(2 * DefaultCacheTTL)
	paths := f.setUp(t, pod)
	if got := readFile(t, filepath.Join(paths["config"], "app.conf")); got != "v2" {
		t.Fatalf("volume app.conf = %q", got)
	}
	again, err := f.m.SubPath(pod, "app", 2, "config", "app.conf")
	if err != nil || again != file {
		t.Fatalf("SubPath again = %s, %v", again, err)
	}
	if got := readFile(t, file); got != "v1" {
		t.Errorf("subPath copy = %q, want the content of the first mount", got)
	}
}
