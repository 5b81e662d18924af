package volume

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
)

func emptyDirVolume(name string, medium v1.StorageMedium, limit string) v1.Volume {
	src := &v1.EmptyDirVolumeSource{Medium: medium}
	if limit != "" {
		q := mustQuantity(limit)
		src.SizeLimit = &q
	}
	return v1.Volume{Name: name, VolumeSource: v1.VolumeSource{EmptyDir: src}}
}

func TestEmptyDir(t *testing.T) {
	f := newFixture(t)
	pod := newPod(emptyDirVolume("scratch", "", "1Mi"), emptyDirVolume("mem", v1.StorageMediumMemory, ""))
	paths := f.setUp(t, pod)
	if got := fileMode(t, paths["scratch"]); got != diskVolumeMode {
		t.Errorf("disk emptyDir mode = %v", got)
	}
	if got := fileMode(t, paths["mem"]); got != memoryVolumeMode {
		t.Errorf("memory emptyDir (no tmpfs) mode = %v, want 0700", got)
	}
	// Content survives another SetUp.
	if err := os.WriteFile(filepath.Join(paths["scratch"], "data"), []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	f.setUp(t, pod)
	if got := readFile(t, filepath.Join(paths["scratch"], "data")); got != "keep" {
		t.Errorf("data = %q after SetUp again", got)
	}

	over, err := f.m.SizeLimitViolations(pod, f.podDir)
	if err != nil || len(over) != 0 {
		t.Fatalf("violations = %v, %v", over, err)
	}
	big := make([]byte, 2<<20)
	for i := range big {
		big[i] = byte(i)
	}
	if err := os.WriteFile(filepath.Join(paths["scratch"], "big"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	// A hard link is counted once.
	if err := os.Link(filepath.Join(paths["scratch"], "big"), filepath.Join(paths["scratch"], "big2")); err != nil {
		t.Fatal(err)
	}
	usage, err := f.m.EmptyDirUsage(pod, f.podDir)
	if err != nil {
		t.Fatal(err)
	}
	if u := usage["scratch"]; u < 2<<20 || u > 3<<20 {
		t.Errorf("usage = %d, want about 2 MiB", u)
	}
	over, err = f.m.SizeLimitViolations(pod, f.podDir)
	if err != nil || len(over) != 1 || over[0].Volume != "scratch" {
		t.Fatalf("violations = %+v, %v", over, err)
	}
	if msg := over[0].Message(); msg != `Usage of EmptyDir volume "scratch" exceeds the limit "1Mi". ` {
		t.Errorf("message = %q", msg)
	}
}

func TestEmptyDirUnsupportedMedium(t *testing.T) {
	f := newFixture(t)
	_, err := f.m.SetUp(f.ctx, newPod(emptyDirVolume("huge", v1.StorageMediumHugePages, "")), f.podDir)
	if !errors.Is(err, ErrUnsupported) {
		t.Errorf("err = %v", err)
	}
}

func TestUnsupportedVolume(t *testing.T) {
	f := newFixture(t, configMap("cfg", map[string]string{"a": "A"}))
	pod := newPod(
		v1.Volume{Name: "data", VolumeSource: v1.VolumeSource{PersistentVolumeClaim: &v1.PersistentVolumeClaimVolumeSource{ClaimName: "c"}}},
		configMapVolume("config", "cfg"),
	)
	paths, err := f.m.SetUp(f.ctx, pod, f.podDir)
	if !errors.Is(err, ErrUnsupported) || errors.Is(err, ErrSourceMissing) || !strings.Contains(err.Error(), `volume "data": volume type not supported: persistentVolumeClaim`) {
		t.Errorf("err = %v", err)
	}
	if _, ok := paths["config"]; !ok {
		t.Error("the supported volume was not set up")
	}
}

func TestHostPathTypes(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "dir")
	file := filepath.Join(root, "file")
	sock := filepath.Join(root, "sock")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	cases := []struct {
		name    string
		path    string
		typ     v1.HostPathType
		wantErr string
		created string // "dir" or "file"
	}{
		{name: "unset, missing", path: filepath.Join(root, "nothing"), typ: v1.HostPathUnset},
		{name: "Directory", path: dir, typ: v1.HostPathDirectory},
		{name: "Directory on a file", path: file, typ: v1.HostPathDirectory, wantErr: "is not a directory, it's a file"},
		{name: "Directory missing", path: filepath.Join(root, "missing"), typ: v1.HostPathDirectory, wantErr: "unable to determine its type"},
		{name: "DirectoryOrCreate creates", path: filepath.Join(root, "new/sub"), typ: v1.HostPathDirectoryOrCreate, created: "dir"},
		{name: "DirectoryOrCreate on a file", path: file, typ: v1.HostPathDirectoryOrCreate, wantErr: "is not a directory"},
		{name: "File", path: file, typ: v1.HostPathFile},
		{name: "File on a directory", path: dir, typ: v1.HostPathFile, wantErr: "is not a file, it's a directory"},
		{name: "FileOrCreate creates", path: filepath.Join(dir, "new.txt"), typ: v1.HostPathFileOrCreate, created: "file"},
		{name: "FileOrCreate needs the parent", path: filepath.Join(root, "nope/new.txt"), typ: v1.HostPathFileOrCreate, wantErr: "creating file"},
		{name: "Socket", path: sock, typ: v1.HostPathSocket},
		{name: "Socket on a file", path: file, typ: v1.HostPathSocket, wantErr: "is not a socket file"},
		{name: "CharDevice", path: "/dev/null", typ: v1.HostPathCharDev},
		{name: "CharDevice on a file", path: file, typ: v1.HostPathCharDev, wantErr: "is not a character device"},
		{name: "BlockDevice on a char device", path: "/dev/null", typ: v1.HostPathBlockDev, wantErr: "is not a block device, it's a character device"},
		{name: "invalid type", path: dir, typ: "Bogus", wantErr: "invalid volume type"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			typ := tc.typ
			pod := newPod(v1.Volume{Name: "host", VolumeSource: v1.VolumeSource{HostPath: &v1.HostPathVolumeSource{Path: tc.path, Type: &typ}}})
			paths, err := f.m.SetUp(f.ctx, pod, f.podDir)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if paths["host"] != tc.path {
				t.Errorf("path = %s, want the host path %s", paths["host"], tc.path)
			}
			switch tc.created {
			case "dir":
				if info, err := os.Stat(tc.path); err != nil || !info.IsDir() {
					t.Errorf("directory not created: %v", err)
				}
			case "file":
				if info, err := os.Stat(tc.path); err != nil || !info.Mode().IsRegular() {
					t.Errorf("file not created: %v", err)
				}
			}
		})
	}
}

func TestBlockDevice(t *testing.T) {
	var dev string
	for _, d := range []string{"/dev/loop0", "/dev/sda", "/dev/vda", "/dev/nvme0n1"} {
		if info, err := os.Stat(d); err == nil && info.Mode()&os.ModeDevice != 0 && info.Mode()&os.ModeCharDevice == 0 {
			dev = d
			break
		}
	}
	if dev == "" {
		t.Skip("no block device on this machine")
	}
	if err := checkHostPathType(dev, v1.HostPathBlockDev); err != nil {
		t.Error(err)
	}
}

func TestTearDown(t *testing.T) {
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "precious"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, configMap("cfg", map[string]string{"a": "A"}))
	pod := newPod(
		configMapVolume("config", "cfg"),
		emptyDirVolume("scratch", "", ""),
		v1.Volume{Name: "host", VolumeSource: v1.VolumeSource{HostPath: &v1.HostPathVolumeSource{Path: host}}},
	)
	paths := f.setUp(t, pod)
	// A module left a symlink to the host path in its emptyDir.
	if err := os.Symlink(host, filepath.Join(paths["scratch"], "link")); err != nil {
		t.Fatal(err)
	}
	if _, err := f.m.SubPath(pod, "app", 0, "config", "a"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(f.podDir, "keep"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := f.m.TearDown(f.ctx, pod.UID, f.podDir); err != nil {
		t.Fatal(err)
	}
	for _, gone := range []string{"volumes", "volume-subpaths"} {
		if exists(filepath.Join(f.podDir, gone)) {
			t.Errorf("%s left after TearDown", gone)
		}
	}
	if !exists(filepath.Join(f.podDir, "keep")) {
		t.Error("TearDown removed files of the pod directory it did not make")
	}
	if !exists(filepath.Join(host, "precious")) {
		t.Error("TearDown followed a symlink into a hostPath")
	}
	// Idempotent.
	if err := f.m.TearDown(f.ctx, pod.UID, f.podDir); err != nil {
		t.Error(err)
	}
}

func TestRelativePodDirRefused(t *testing.T) {
	f := newFixture(t)
	if _, err := f.m.SetUp(f.ctx, newPod(), "relative/dir"); err == nil {
		t.Error("relative podDir accepted")
	}
}
