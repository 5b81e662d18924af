package node

import (
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

const (
	kib = int64(1) << 10
	mib = int64(1) << 20
	gib = int64(1) << 30
)

// fakeTree writes files (path → content) under a new temporary root and
// returns it. Paths are absolute as on a real machine, e.g. /proc/meminfo.
func fakeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, content := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// meminfo renders /proc/meminfo with the given values in bytes; a
// negative value leaves the line out.
func meminfo(total, free, available, buffers, cached int64) string {
	var b strings.Builder
	line := func(name string, v int64) {
		if v >= 0 {
			b.WriteString(name + ":" + strings.Repeat(" ", 16-len(name)) + strconv.FormatInt(v/kib, 10) + " kB\n")
		}
	}
	line("MemTotal", total)
	line("MemFree", free)
	line("MemAvailable", available)
	line("Buffers", buffers)
	line("Cached", cached)
	b.WriteString("HugePages_Total:       0\n") // no unit: taken as is
	b.WriteString("garbage line\n")
	return b.String()
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) + "\n" }

// baseFiles is a machine with 16 GiB, 8 GiB available, in cgroup /a/b
// (cgroup v2) without any limit.
func baseFiles() map[string]string {
	return map[string]string{
		"/proc/meminfo":     meminfo(16*gib, 4*gib, 8*gib, 1*gib, 2*gib),
		"/proc/self/cgroup": "0::/a/b\n",
	}
}

func with(base map[string]string, extra map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range base {
		out[k] = v
	}
	for k, v := range extra {
		if v == "" {
			delete(out, k)
			continue
		}
		out[k] = v
	}
	return out
}

func statfsBytes(t *testing.T, dir string) (capacity, available int64, inodes, inodesFree int64) {
	t.Helper()
	var fs syscall.Statfs_t
	if err := syscall.Statfs(dir, &fs); err != nil {
		t.Fatal(err)
	}
	return int64(fs.Blocks) * fs.Bsize, int64(fs.Bavail) * fs.Bsize, int64(fs.Files), int64(fs.Ffree)
}

func TestMachineCapacity(t *testing.T) {
	cpus := int64(runtime.NumCPU()) * 1000
	tests := []struct {
		name     string
		files    map[string]string
		wantCPU  int64
		wantMem  int64
		wantErr  string
		dataSub  string // DataDir below the temp dir, may not exist
		checkEph bool
	}{
		{
			name:     "no cgroup limit: physical memory and all CPUs",
			files:    baseFiles(),
			wantCPU:  cpus,
			wantMem:  16 * gib,
			checkEph: true,
		},
		{
			name: "max means no limit",
			files: with(baseFiles(), map[string]string{
				"/sys/fs/cgroup/a/b/memory.max": "max\n",
				"/sys/fs/cgroup/a/b/cpu.max":    "max 100000\n",
				"/sys/fs/cgroup/a/memory.max":   "max\n",
				"/sys/fs/cgroup/a/cpu.max":      "max 100000\n",
			}),
			wantCPU: cpus,
			wantMem: 16 * gib,
		},
		{
			name: "the tightest limit is on an ancestor",
			files: with(baseFiles(), map[string]string{
				"/sys/fs/cgroup/a/b/memory.max": itoa(4 * gib),
				"/sys/fs/cgroup/a/b/cpu.max":    "150000 100000\n",
				"/sys/fs/cgroup/a/memory.max":   itoa(2 * gib),
				"/sys/fs/cgroup/a/cpu.max":      "50000 100000\n",
			}),
			wantCPU: 500,
			wantMem: 2 * gib,
		},
		{
			name: "the tightest limit is on the process's own cgroup",
			files: with(baseFiles(), map[string]string{
				"/sys/fs/cgroup/a/b/memory.max": itoa(1 * gib),
				"/sys/fs/cgroup/a/b/cpu.max":    "25000 100000\n",
				"/sys/fs/cgroup/a/memory.max":   itoa(2 * gib),
				"/sys/fs/cgroup/a/cpu.max":      "max 100000\n",
			}),
			wantCPU: 250,
			wantMem: 1 * gib,
		},
		{
			name: "a limit on the root cgroup counts",
			files: with(baseFiles(), map[string]string{
				"/proc/self/cgroup":          "0::/\n",
				"/sys/fs/cgroup/memory.max":  itoa(3 * gib),
				"/sys/fs/cgroup/cpu.max":     "100000 100000\n",
				"/sys/fs/cgroup/a/b/cpu.max": "1000 100000\n", // not this process's cgroup
			}),
			wantCPU: min(1000, cpus),
			wantMem: 3 * gib,
		},
		{
			name: "CPU quota is in millicores, rounded down",
			files: with(baseFiles(), map[string]string{
				"/sys/fs/cgroup/a/b/cpu.max": "12345 100000\n",
			}),
			wantCPU: 123,
			wantMem: 16 * gib,
		},
		{
			name: "CPU quota with another period",
			files: with(baseFiles(), map[string]string{
				"/sys/fs/cgroup/a/b/cpu.max": "75000 50000\n",
			}),
			wantCPU: min(1500, cpus),
			wantMem: 16 * gib,
		},
		{
			name: "limits above the machine are ignored",
			files: with(baseFiles(), map[string]string{
				"/sys/fs/cgroup/a/b/memory.max": itoa(64 * gib),
				"/sys/fs/cgroup/a/b/cpu.max":    strconv.FormatInt((cpus/1000+4)*100000, 10) + " 100000\n",
			}),
			wantCPU: cpus,
			wantMem: 16 * gib,
		},
		{
			name: "malformed cgroup files are ignored",
			files: with(baseFiles(), map[string]string{
				"/sys/fs/cgroup/a/b/memory.max": "lots\n",
				"/sys/fs/cgroup/a/b/cpu.max":    "1 2 3\n",
				"/sys/fs/cgroup/a/cpu.max":      "x 100000\n",
				"/sys/fs/cgroup/cpu.max":        "50000 0\n",
			}),
			wantCPU: cpus,
			wantMem: 16 * gib,
		},
		{
			name: "cgroup v1 is not read",
			files: with(baseFiles(), map[string]string{
				"/proc/self/cgroup":             "12:memory:/a/b\n11:cpu,cpuacct:/a/b\n",
				"/sys/fs/cgroup/a/b/memory.max": itoa(1 * gib),
				"/sys/fs/cgroup/a/b/cpu.max":    "10000 100000\n",
			}),
			wantCPU: cpus,
			wantMem: 16 * gib,
		},
		{
			name: "no /proc/self/cgroup",
			files: with(baseFiles(), map[string]string{
				"/proc/self/cgroup":             "",
				"/sys/fs/cgroup/a/b/memory.max": itoa(1 * gib),
			}),
			wantCPU: cpus,
			wantMem: 16 * gib,
		},
		{
			name:     "data dir not made yet: its nearest parent is measured",
			files:    baseFiles(),
			dataSub:  "not/yet/made",
			wantCPU:  cpus,
			wantMem:  16 * gib,
			checkEph: true,
		},
		{
			name:    "no /proc/meminfo",
			files:   with(baseFiles(), map[string]string{"/proc/meminfo": ""}),
			wantErr: "reading memory info",
		},
		{
			name:    "no MemTotal",
			files:   with(baseFiles(), map[string]string{"/proc/meminfo": "MemFree: 100 kB\n"}),
			wantErr: "no MemTotal",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := t.TempDir()
			m := Machine{Root: fakeTree(t, tc.files), DataDir: filepath.Join(data, tc.dataSub)}
			c, err := m.Capacity()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Capacity() error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Capacity() error: %v", err)
			}
			if c.MilliCPU != tc.wantCPU {
				t.Errorf("MilliCPU = %d, want %d", c.MilliCPU, tc.wantCPU)
			}
			if c.MemoryBytes != tc.wantMem {
				t.Errorf("MemoryBytes = %d, want %d", c.MemoryBytes, tc.wantMem)
			}
			if tc.checkEph {
				want, _, _, _ := statfsBytes(t, data)
				if c.EphemeralStorageBytes != want || want <= 0 {
					t.Errorf("EphemeralStorageBytes = %d, want %d", c.EphemeralStorageBytes, want)
				}
			}
		})
	}
}

func TestMachineUsageMemory(t *testing.T) {
	tests := []struct {
		name          string
		files         map[string]string
		wantAvailable int64
		wantCapacity  int64
	}{
		{
			name:          "no cgroup limit: MemAvailable",
			files:         baseFiles(),
			wantAvailable: 8 * gib,
			wantCapacity:  16 * gib,
		},
		{
			name: "old kernel without MemAvailable: free + buffers + cached",
			files: with(baseFiles(), map[string]string{
				"/proc/meminfo": meminfo(16*gib, 1*gib, -1, 256*mib, 512*mib),
			}),
			wantAvailable: 1*gib + 256*mib + 512*mib,
			wantCapacity:  16 * gib,
		},
		{
			name: "under a limit: limit minus working set (usage minus inactive file pages)",
			files: with(baseFiles(), map[string]string{
				"/sys/fs/cgroup/a/b/memory.max":     itoa(4 * gib),
				"/sys/fs/cgroup/a/b/memory.current": itoa(3 * gib),
				"/sys/fs/cgroup/a/b/memory.stat":    "anon 1024\nfile 2048\nactive_file 5\ninactive_file " + itoa(1*gib) + "slab 7\n",
			}),
			wantAvailable: 2 * gib,
			wantCapacity:  4 * gib,
		},
		{
			name: "the limit is on an ancestor; the process's cgroup has none",
			files: with(baseFiles(), map[string]string{
				"/sys/fs/cgroup/a/b/memory.max":     "max\n",
				"/sys/fs/cgroup/a/b/memory.current": itoa(100 * mib),
				"/sys/fs/cgroup/a/memory.max":       itoa(4 * gib),
				"/sys/fs/cgroup/a/memory.current":   itoa(1 * gib),
			}),
			wantAvailable: 3 * gib,
			wantCapacity:  4 * gib,
		},
		{
			// The limit and the usage must be of the same cgroup: here the
			// ancestor's siblings use most of its 2 GiB.
			name: "nested limits: the tightest cgroup's limit and usage",
			files: with(baseFiles(), map[string]string{
				"/sys/fs/cgroup/a/b/memory.max":     itoa(4 * gib),
				"/sys/fs/cgroup/a/b/memory.current": itoa(1 * gib),
				"/sys/fs/cgroup/a/memory.max":       itoa(2 * gib),
				"/sys/fs/cgroup/a/memory.current":   itoa(2*gib - 300*mib),
			}),
			wantAvailable: 300 * mib,
			wantCapacity:  2 * gib,
		},
		{
			name: "no memory.stat: the whole usage is the working set",
			files: with(baseFiles(), map[string]string{
				"/sys/fs/cgroup/a/b/memory.max":     itoa(4 * gib),
				"/sys/fs/cgroup/a/b/memory.current": itoa(3 * gib),
			}),
			wantAvailable: 1 * gib,
			wantCapacity:  4 * gib,
		},
		{
			name: "inactive_file larger than the usage is not subtracted",
			files: with(baseFiles(), map[string]string{
				"/sys/fs/cgroup/a/b/memory.max":     itoa(4 * gib),
				"/sys/fs/cgroup/a/b/memory.current": itoa(1 * gib),
				"/sys/fs/cgroup/a/b/memory.stat":    "inactive_file " + itoa(2*gib),
			}),
			wantAvailable: 3 * gib,
			wantCapacity:  4 * gib,
		},
		{
			name: "usage above the limit: nothing available",
			files: with(baseFiles(), map[string]string{
				"/sys/fs/cgroup/a/b/memory.max":     itoa(4 * gib),
				"/sys/fs/cgroup/a/b/memory.current": itoa(5 * gib),
			}),
			wantAvailable: 0,
			wantCapacity:  4 * gib,
		},
		{
			name: "no memory.current: the machine's figures",
			files: with(baseFiles(), map[string]string{
				"/sys/fs/cgroup/a/b/memory.max": itoa(4 * gib),
			}),
			wantAvailable: 8 * gib,
			wantCapacity:  16 * gib,
		},
		{
			name: "malformed memory.current: the machine's figures",
			files: with(baseFiles(), map[string]string{
				"/sys/fs/cgroup/a/b/memory.max":     itoa(4 * gib),
				"/sys/fs/cgroup/a/b/memory.current": "lots\n",
			}),
			wantAvailable: 8 * gib,
			wantCapacity:  16 * gib,
		},
		{
			name: "a limit above the machine is ignored",
			files: with(baseFiles(), map[string]string{
				"/sys/fs/cgroup/a/b/memory.max":     itoa(64 * gib),
				"/sys/fs/cgroup/a/b/memory.current": itoa(1 * gib),
			}),
			wantAvailable: 8 * gib,
			wantCapacity:  16 * gib,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := Machine{Root: fakeTree(t, tc.files), DataDir: t.TempDir()}
			u, err := m.Usage()
			if err != nil {
				t.Fatalf("Usage() error: %v", err)
			}
			if u.MemoryAvailableBytes != tc.wantAvailable {
				t.Errorf("MemoryAvailableBytes = %d, want %d", u.MemoryAvailableBytes, tc.wantAvailable)
			}
			if u.MemoryCapacityBytes != tc.wantCapacity {
				t.Errorf("MemoryCapacityBytes = %d, want %d", u.MemoryCapacityBytes, tc.wantCapacity)
			}
		})
	}
}

func TestMachineUsagePIDs(t *testing.T) {
	tests := []struct {
		name          string
		files         map[string]string
		wantMax       int64
		wantAvailable int64
	}{
		{
			name: "lower of pid_max and threads-max, minus the tasks",
			files: map[string]string{
				"/proc/sys/kernel/pid_max":     "4194304\n",
				"/proc/sys/kernel/threads-max": "126000\n",
				"/proc/loadavg":                "0.10 0.20 0.30 2/1000 12345\n",
			},
			wantMax:       126000,
			wantAvailable: 125000,
		},
		{
			name: "pid_max is the lower",
			files: map[string]string{
				"/proc/sys/kernel/pid_max":     "32768\n",
				"/proc/sys/kernel/threads-max": "126000\n",
				"/proc/loadavg":                "0.10 0.20 0.30 1/768 12345\n",
			},
			wantMax:       32768,
			wantAvailable: 32000,
		},
		{
			name: "only pid_max",
			files: map[string]string{
				"/proc/sys/kernel/pid_max": "32768\n",
				"/proc/loadavg":            "0.10 0.20 0.30 1/768 12345\n",
			},
			wantMax:       32768,
			wantAvailable: 32000,
		},
		{
			name: "more tasks than the limit: none available",
			files: map[string]string{
				"/proc/sys/kernel/pid_max": "100\n",
				"/proc/loadavg":            "0.10 0.20 0.30 1/768 12345\n",
			},
			wantMax:       100,
			wantAvailable: 0,
		},
		{
			name: "no /proc/loadavg: all available",
			files: map[string]string{
				"/proc/sys/kernel/pid_max": "32768\n",
			},
			wantMax:       32768,
			wantAvailable: 32768,
		},
		{
			name: "malformed /proc/loadavg: all available",
			files: map[string]string{
				"/proc/sys/kernel/pid_max": "32768\n",
				"/proc/loadavg":            "0.10 0.20 0.30 768\n",
			},
			wantMax:       32768,
			wantAvailable: 32768,
		},
		{
			name:  "nothing readable",
			files: map[string]string{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := Machine{Root: fakeTree(t, with(baseFiles(), tc.files)), DataDir: t.TempDir()}
			u, err := m.Usage()
			if err != nil {
				t.Fatalf("Usage() error: %v", err)
			}
			if u.PIDsMax != tc.wantMax || u.PIDsAvailable != tc.wantAvailable {
				t.Errorf("PIDs max %d available %d, want %d and %d", u.PIDsMax, u.PIDsAvailable, tc.wantMax, tc.wantAvailable)
			}
		})
	}
}

func TestMachineUsageFilesystem(t *testing.T) {
	data := t.TempDir()
	m := Machine{Root: fakeTree(t, baseFiles()), DataDir: filepath.Join(data, "kubelet")}
	u, err := m.Usage()
	if err != nil {
		t.Fatalf("Usage() error: %v", err)
	}
	capacity, available, inodes, _ := statfsBytes(t, data)
	if u.FsCapacityBytes != capacity || capacity <= 0 {
		t.Errorf("FsCapacityBytes = %d, want %d", u.FsCapacityBytes, capacity)
	}
	// Other tests write to the same filesystem meanwhile: compare loosely.
	if u.FsAvailableBytes <= 0 || u.FsAvailableBytes > u.FsCapacityBytes || abs(u.FsAvailableBytes-available) > 256*mib {
		t.Errorf("FsAvailableBytes = %d, want about %d and at most the capacity %d", u.FsAvailableBytes, available, u.FsCapacityBytes)
	}
	if u.FsInodes != inodes || u.FsInodesFree > u.FsInodes {
		t.Errorf("inodes %d free %d, want %d in all", u.FsInodes, u.FsInodesFree, inodes)
	}
}

func TestMachineUsageErrors(t *testing.T) {
	tests := []struct {
		name    string
		files   map[string]string
		wantErr string
	}{
		{name: "no /proc/meminfo", files: map[string]string{"/proc/meminfo": ""}, wantErr: "reading memory info"},
		{name: "no MemTotal", files: map[string]string{"/proc/meminfo": "MemAvailable: 1 kB\n"}, wantErr: "no MemTotal"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := Machine{Root: fakeTree(t, with(baseFiles(), tc.files)), DataDir: t.TempDir()}
			if _, err := m.Usage(); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Usage() error = %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}
