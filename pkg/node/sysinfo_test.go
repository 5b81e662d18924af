package node

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/krustlet/krustlet-go/pkg/config"
)

func TestReadSystemInfo(t *testing.T) {
	full := map[string]string{
		"/etc/machine-id":                 "0123456789abcdef0123456789abcdef\n",
		"/sys/class/dmi/id/product_uuid":  "4C4C4544-0042-3510-8052-B4C04F384E32\n",
		"/proc/sys/kernel/random/boot_id": "9a1b2c3d-0000-4000-8000-000000000001\n",
		"/proc/sys/kernel/osrelease":      "6.12.0-test\n",
		"/etc/os-release":                 "NAME=\"Debian GNU/Linux\"\nPRETTY_NAME=\"Debian GNU/Linux 13 (trixie)\"\nID=debian\n",
	}
	tests := []struct {
		name  string
		files map[string]string
		want  SystemInfo
		// kernelFromUname: KernelVersion comes from uname(2), not the tree.
		kernelFromUname bool
	}{
		{
			name:  "everything readable",
			files: full,
			want: SystemInfo{
				MachineID:      "0123456789abcdef0123456789abcdef",
				SystemUUID:     "4c4c4544-0042-3510-8052-b4c04f384e32",
				BootID:         "9a1b2c3d-0000-4000-8000-000000000001",
				KernelVersion:  "6.12.0-test",
				OSImage:        "Debian GNU/Linux 13 (trixie)",
				KubeletVersion: "v1.37.2",
			},
		},
		{
			name: "unquoted PRETTY_NAME",
			files: with(full, map[string]string{
				"/etc/os-release": "PRETTY_NAME=Alpine\n",
			}),
			want: SystemInfo{
				MachineID:      "0123456789abcdef0123456789abcdef",
				SystemUUID:     "4c4c4544-0042-3510-8052-b4c04f384e32",
				BootID:         "9a1b2c3d-0000-4000-8000-000000000001",
				KernelVersion:  "6.12.0-test",
				OSImage:        "Alpine",
				KubeletVersion: "v1.37.2",
			},
		},
		{
			name:            "nothing readable: empty values, Linux, the running kernel",
			files:           map[string]string{},
			want:            SystemInfo{OSImage: "Linux", KubeletVersion: "v1.37.2"},
			kernelFromUname: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Machine{Root: fakeTree(t, tc.files)}.ReadSystemInfo("v1.37.2")
			if tc.kernelFromUname {
				if got.KernelVersion == "" || strings.ContainsRune(got.KernelVersion, 0) {
					t.Errorf("kernel version %q, want the running kernel's release", got.KernelVersion)
				}
				if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil && strings.TrimSpace(string(b)) != got.KernelVersion {
					t.Errorf("kernel version %q, want %q", got.KernelVersion, strings.TrimSpace(string(b)))
				}
				got.KernelVersion = ""
			}
			if got != tc.want {
				t.Errorf("ReadSystemInfo()\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// fakeNow is a settable clock for PressureReader.Now.
type fakeNow struct {
	mu sync.Mutex
	t  time.Time
}

func (f *fakeNow) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

func (f *fakeNow) add(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.t = f.t.Add(d)
}

func TestPressureReaderCaches(t *testing.T) {
	root := fakeTree(t, baseFiles())
	setAvailable := func(available int64) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(root, "/proc/meminfo"), []byte(meminfo(16*gib, 0, available, 0, 0)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	now := &fakeNow{t: t0}
	r := &PressureReader{
		Machine:    Machine{Root: root, DataDir: t.TempDir()},
		Thresholds: []config.EvictionThreshold{{Signal: config.SignalMemoryAvailable, Quantity: qty(t, "1Gi")}},
		Now:        now.Now,
	}
	steps := []struct {
		name      string
		advance   time.Duration
		available int64 // written before the read; 0 leaves the file
		remove    bool  // remove /proc/meminfo before the read
		want      bool
		wantErr   bool
	}{
		{name: "first read", available: 512 * mib, want: true},
		{name: "within a second: the cached reading", advance: 999 * time.Millisecond, available: 8 * gib, want: true},
		{name: "a second after the reading: read again", advance: time.Millisecond, want: false},
		{name: "cached again", advance: 500 * time.Millisecond, available: 100 * mib, want: false},
		{name: "read again", advance: 500 * time.Millisecond, want: true},
		{name: "an error is read", advance: time.Second, remove: true, wantErr: true},
		{name: "and cached", advance: 10 * time.Millisecond, available: 8 * gib, wantErr: true},
		{name: "and cleared with the next reading", advance: time.Second, want: false},
	}
	for _, s := range steps {
		now.add(s.advance)
		if s.available > 0 {
			setAvailable(s.available)
		}
		if s.remove {
			if err := os.Remove(filepath.Join(root, "/proc/meminfo")); err != nil {
				t.Fatal(err)
			}
		}
		p, err := r.Read()
		if (err != nil) != s.wantErr {
			t.Fatalf("%s: Read() error = %v, want error %v", s.name, err, s.wantErr)
		}
		if !s.wantErr && p.Memory != s.want {
			t.Errorf("%s: memory pressure %v, want %v", s.name, p.Memory, s.want)
		}
	}
}

func TestPressureReaderConcurrentReads(t *testing.T) {
	r := &PressureReader{
		Machine: Machine{Root: fakeTree(t, baseFiles()), DataDir: t.TempDir()},
		Now:     (&fakeNow{t: t0}).Now,
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if _, err := r.Read(); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
}
