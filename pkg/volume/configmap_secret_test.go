package volume

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"
)

func configMapVolume(name, cm string, items ...v1.KeyToPath) v1.Volume {
	return v1.Volume{Name: name, VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{
		LocalObjectReference: v1.LocalObjectReference{Name: cm}, Items: items,
	}}}
}

func secretVolume(name, s string, items ...v1.KeyToPath) v1.Volume {
	return v1.Volume{Name: name, VolumeSource: v1.VolumeSource{Secret: &v1.SecretVolumeSource{SecretName: s, Items: items}}}
}

func TestConfigMapVolumeAllKeys(t *testing.T) {
	cm := configMap("cfg", map[string]string{"app.conf": "port=80", "mode": "prod"})
	cm.BinaryData = map[string][]byte{"blob": {0, 1, 2}}
	f := newFixture(t, cm)
	vol := configMapVolume("config", "cfg")
	vol.ConfigMap.DefaultMode = ptr(int32(0o640))
	paths := f.setUp(t, newPod(vol))

	dir := paths["config"]
	if want := filepath.Join(f.podDir, "volumes", "config"); dir != want {
		t.Fatalf("path = %s, want %s", dir, want)
	}
	for name, want := range map[string]string{"app.conf": "port=80", "mode": "prod", "blob": "\x00\x01\x02"} {
		if got := readFile(t, filepath.Join(dir, name)); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
		if got := fileMode(t, filepath.Join(dir, name)); got != 0o640 {
			t.Errorf("mode of %s = %v, want 0640", name, got)
		}
	}
	if got := fileMode(t, dir); got != diskVolumeMode {
		t.Errorf("volume dir mode = %v, want %v", got, diskVolumeMode)
	}
}

func TestConfigMapVolumeItemsAndModes(t *testing.T) {
	f := newFixture(t, configMap("cfg", map[string]string{"a": "A", "b": "B", "c": "C"}))
	paths := f.setUp(t, newPod(configMapVolume("config", "cfg",
		v1.KeyToPath{Key: "a", Path: "conf/a.txt", Mode: ptr(int32(0o400))},
		v1.KeyToPath{Key: "b", Path: "b.txt"},
	)))
	dir := paths["config"]
	if got := readFile(t, filepath.Join(dir, "conf/a.txt")); got != "A" {
		t.Errorf("conf/a.txt = %q", got)
	}
	if got := fileMode(t, filepath.Join(dir, "conf/a.txt")); got != 0o400 {
		t.Errorf("mode of conf/a.txt = %v, want 0400", got)
	}
	if got := fileMode(t, filepath.Join(dir, "b.txt")); got != 0o644 {
		t.Errorf("mode of b.txt = %v, want the default 0644", got)
	}
	if exists(filepath.Join(dir, "c")) || exists(filepath.Join(dir, "a")) {
		t.Error("keys not listed in items were projected")
	}
}

func TestConfigMapVolumeMissing(t *testing.T) {
	cases := []struct {
		name      string
		objs      []runtime.Object
		optional  bool
		items     []v1.KeyToPath
		wantErr   string
		wantFiles []string
	}{
		{name: "required object missing", wantErr: `configmap "cfg" not found in namespace "ns"`},
		{name: "optional object missing is an empty volume", optional: true, wantFiles: []string{}},
		{
			name:    "required key missing",
			objs:    []runtime.Object{configMap("cfg", map[string]string{"a": "A"})},
			items:   []v1.KeyToPath{{Key: "a", Path: "a"}, {Key: "nope", Path: "nope"}},
			wantErr: "couldn't find key nope in configmap ns/cfg",
		},
		{
			name:      "optional key missing is skipped",
			objs:      []runtime.Object{configMap("cfg", map[string]string{"a": "A"})},
			optional:  true,
			items:     []v1.KeyToPath{{Key: "a", Path: "a"}, {Key: "nope", Path: "nope"}},
			wantFiles: []string{"a"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, tc.objs...)
			vol := configMapVolume("config", "cfg", tc.items...)
			vol.ConfigMap.Optional = ptr(tc.optional)
			paths, err := f.m.SetUp(f.ctx, newPod(vol), f.podDir)
			if tc.wantErr != "" {
				if !errors.Is(err, ErrSourceMissing) {
					t.Fatalf("err = %v, want one wrapping ErrSourceMissing", err)
				}
				if !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), `volume "config"`) {
					t.Errorf("err = %q, want it to name the volume and say %q", err, tc.wantErr)
				}
				if _, ok := paths["config"]; ok {
					t.Error("failed volume in the map")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			entries, _ := os.ReadDir(paths["config"])
			for _, e := range entries {
				if !strings.HasPrefix(e.Name(), "..") {
					got = append(got, e.Name())
				}
			}
			if strings.Join(got, ",") != strings.Join(tc.wantFiles, ",") {
				t.Errorf("files = %v, want %v", got, tc.wantFiles)
			}
			if !exists(filepath.Join(paths["config"], "..data")) {
				t.Error("no ..data in the volume")
			}
		})
	}
}

func TestMissingSourceAppearsLater(t *testing.T) {
	f := newFixture(t)
	pod := newPod(configMapVolume("config", "cfg"))
	if _, err := f.m.SetUp(f.ctx, pod, f.podDir); !errors.Is(err, ErrSourceMissing) {
		t.Fatalf("err = %v", err)
	}
	// Not found is not cached: the next SetUp sees the object at once.
	if _, err := f.client.CoreV1().ConfigMaps("ns").Create(f.ctx, configMap("cfg", map[string]string{"k": "v"}), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	paths := f.setUp(t, pod)
	if got := readFile(t, filepath.Join(paths["config"], "k")); got != "v" {
		t.Errorf("k = %q", got)
	}
}

func TestAPIErrorIsNotMissing(t *testing.T) {
	f := newFixture(t)
	f.client.PrependReactor("get", "secrets", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, errors.New("connection refused")
	})
	_, err := f.m.SetUp(f.ctx, newPod(secretVolume("s", "creds")), f.podDir)
	if err == nil || errors.Is(err, ErrSourceMissing) || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("err = %v, want the API error and not ErrSourceMissing", err)
	}
}

func TestSecretVolume(t *testing.T) {
	f := newFixture(t, secret("creds", map[string]string{"user": "admin", "password": "s3cr3t"}))
	vol := secretVolume("creds", "creds", v1.KeyToPath{Key: "password", Path: "pw", Mode: ptr(int32(0o400))})
	vol.Secret.DefaultMode = ptr(int32(0o440))
	paths := f.setUp(t, newPod(vol))
	dir := paths["creds"]
	if got := readFile(t, filepath.Join(dir, "pw")); got != "s3cr3t" {
		t.Errorf("pw = %q", got)
	}
	if got := fileMode(t, filepath.Join(dir, "pw")); got != 0o400 {
		t.Errorf("mode of pw = %v", got)
	}
	// Without tmpfs the volume is a 0700 directory: never world-readable.
	if got := fileMode(t, dir); got != 0o700 {
		t.Errorf("secret volume dir mode = %v, want 0700", got)
	}
	if exists(filepath.Join(dir, "user")) {
		t.Error("unlisted key projected")
	}

	// Optional missing secret: empty volume.
	f2 := newFixture(t)
	v2 := secretVolume("creds", "absent")
	v2.Secret.Optional = ptr(true)
	paths = f2.setUp(t, newPod(v2))
	if !exists(filepath.Join(paths["creds"], "..data")) {
		t.Error("optional missing secret did not give an empty volume")
	}
	// Required missing secret.
	f3 := newFixture(t)
	_, err := f3.m.SetUp(f3.ctx, newPod(secretVolume("creds", "absent")), f3.podDir)
	var me *MissingError
	if !errors.As(err, &me) || me.Kind != "secret" || me.Name != "absent" || !errors.Is(err, ErrSourceMissing) {
		t.Errorf("err = %v, want a MissingError for secret absent", err)
	}
}

func TestItemPathsRefused(t *testing.T) {
	for _, p := range []string{"../../escape", "/etc/evil", "a/../../b", "..hidden"} {
		t.Run(p, func(t *testing.T) {
			f := newFixture(t, configMap("cfg", map[string]string{"a": "A"}))
			_, err := f.m.SetUp(f.ctx, newPod(configMapVolume("config", "cfg", v1.KeyToPath{Key: "a", Path: p})), f.podDir)
			if err == nil || !strings.Contains(err.Error(), "invalid path") {
				t.Fatalf("err = %v, want an invalid path error", err)
			}
			if exists(filepath.Join(filepath.Dir(f.podDir), "escape")) || exists("/etc/evil") {
				t.Error("a file was written outside the pod directory")
			}
		})
	}
}

func TestLiveUpdate(t *testing.T) {
	f := newFixture(t, configMap("cfg", map[string]string{"a": "one", "gone": "x"}), secret("s", map[string]string{"k": "v1"}))
	pod := newPod(configMapVolume("config", "cfg"), secretVolume("sec", "s"))
	paths := f.setUp(t, pod)
	dir := paths["config"]
	before, _ := os.Readlink(filepath.Join(dir, "..data"))

	if _, err := f.client.CoreV1().ConfigMaps("ns").Update(f.ctx, configMap("cfg", map[string]string{"a": "two", "new": "y"}), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.client.CoreV1().Secrets("ns").Update(f.ctx, secret("s", map[string]string{"k": "v2"}), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Within the cache TTL the periodic SetUp may still see the old object.
	f.clock.Step(DefaultCacheTTL / 2)
	f.setUp(t, pod)
	if got := readFile(t, filepath.Join(dir, "a")); got != "one" {
		t.Errorf("a = %q before the TTL passed, want the cached one", got)
	}
	// After it, the content changes in place, atomically.
	f.clock.Step(DefaultCacheTTL)
	f.setUp(t, pod)
	if got := readFile(t, filepath.Join(dir, "a")); got != "two" {
		t.Errorf("a = %q, want two", got)
	}
	if got := readFile(t, filepath.Join(dir, "new")); got != "y" {
		t.Errorf("new = %q, want y", got)
	}
	if exists(filepath.Join(dir, "gone")) {
		t.Error("removed key still visible")
	}
	after, _ := os.Readlink(filepath.Join(dir, "..data"))
	if after == before || exists(filepath.Join(dir, before)) {
		t.Errorf("..data %q -> %q; old directory kept: %v", before, after, exists(filepath.Join(dir, before)))
	}
	if got := readFile(t, filepath.Join(paths["sec"], "k")); got != "v2" {
		t.Errorf("secret k = %q, want v2", got)
	}
}

func TestFirstSetUpReadsFresh(t *testing.T) {
	f := newFixture(t, configMap("cfg", map[string]string{"a": "one"}))
	// Another pod warms the cache.
	other := newPod(configMapVolume("config", "cfg"))
	other.UID = "uid-other"
	if _, err := f.m.SetUp(f.ctx, other, filepath.Join(filepath.Dir(f.podDir), "other")); err != nil {
		t.Fatal(err)
	}
	if _, err := f.client.CoreV1().ConfigMaps("ns").Update(f.ctx, configMap("cfg", map[string]string{"a": "two"}), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	paths := f.setUp(t, newPod(configMapVolume("config", "cfg")))
	if got := readFile(t, filepath.Join(paths["config"], "a")); got != "two" {
		t.Errorf("a = %q: a new pod must not start on a cached object", got)
	}
}

func TestObjectCacheSweep(t *testing.T) {
	f := newFixture(t, configMap("cfg", map[string]string{"a": "one"}))
	if _, err := f.m.Objects().ConfigMap(f.ctx, "ns", "cfg"); err != nil {
		t.Fatal(err)
	}
	f.clock.Step(20 * DefaultCacheTTL)
	f.clock.Step(time.Minute)
	if _, err := f.m.Objects().ConfigMap(f.ctx, "ns", "other"); !errors.Is(err, ErrSourceMissing) {
		t.Fatal(err)
	}
	f.m.objects.mu.Lock()
	n := len(f.m.objects.entries)
	f.m.objects.mu.Unlock()
	if n != 0 {
		t.Errorf("%d entries left after the sweep", n)
	}
}
