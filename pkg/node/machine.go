package node

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
)

// Machine reads the resources of this machine, as far as this process may
// use them.
type Machine struct {
	// Root is prepended to /proc and /sys paths; empty in production,
	// a fake tree in tests.
	Root string
	// DataDir is where the node keeps its state; its filesystem is the
	// node's ephemeral storage.
	DataDir string
}

// Capacity is what the machine has.
type Capacity struct {
	// MilliCPU is the CPU count in millicores, lowered to a cgroup CPU
	// quota if one applies.
	MilliCPU int64
	// MemoryBytes is the physical memory, lowered to a cgroup memory limit
	// if one applies.
	MemoryBytes int64
	// EphemeralStorageBytes is the size of the filesystem holding DataDir.
	EphemeralStorageBytes int64
}

// Usage is one reading of what is still available.
type Usage struct {
	MemoryAvailableBytes int64
	MemoryCapacityBytes  int64
	FsAvailableBytes     int64
	FsCapacityBytes      int64
	FsInodesFree         int64
	FsInodes             int64
	PIDsAvailable        int64
	PIDsMax              int64
}

// Capacity reads the machine's capacity.
func (m Machine) Capacity() (Capacity, error) {
	c := Capacity{MilliCPU: int64(runtime.NumCPU()) * 1000}
	if quota, ok := m.cgroupCPUQuotaMilli(); ok && quota < c.MilliCPU {
		c.MilliCPU = quota
	}
	mem, err := m.meminfo()
	if err != nil {
		return c, err
	}
	c.MemoryBytes = mem["MemTotal"]
	if limit, _, ok := m.cgroupMemoryLimit(); ok && limit < c.MemoryBytes {
		c.MemoryBytes = limit
	}
	fs, err := m.statfs()
	if err != nil {
		return c, err
	}
	c.EphemeralStorageBytes = int64(fs.Blocks) * fs.Bsize
	return c, nil
}

// Usage reads what is available now. Memory available is, as for the
// kubelet, capacity minus the working set: MemAvailable without a cgroup
// limit; limit − (usage − inactive file pages) under one, both of the
// cgroup whose limit is the tightest.
func (m Machine) Usage() (Usage, error) {
	var u Usage
	mem, err := m.meminfo()
	if err != nil {
		return u, err
	}
	u.MemoryCapacityBytes = mem["MemTotal"]
	u.MemoryAvailableBytes = mem["MemAvailable"]
	if limit, dir, ok := m.cgroupMemoryLimit(); ok && limit < u.MemoryCapacityBytes {
		if used, ok := m.cgroupWorkingSet(dir); ok {
			u.MemoryCapacityBytes = limit
			u.MemoryAvailableBytes = max(limit-used, 0)
		}
	}
	fs, err := m.statfs()
	if err != nil {
		return u, err
	}
	u.FsCapacityBytes = int64(fs.Blocks) * fs.Bsize
	u.FsAvailableBytes = int64(fs.Bavail) * fs.Bsize
	u.FsInodes = int64(fs.Files)
	u.FsInodesFree = int64(fs.Ffree)
	u.PIDsMax, u.PIDsAvailable = m.pids()
	return u, nil
}

func (m Machine) path(p string) string { return filepath.Join(m.Root, p) }

// Path returns p (an absolute /proc or /sys path) under the machine's root.
func (m Machine) Path(p string) string { return m.path(p) }

func (m Machine) meminfo() (map[string]int64, error) {
	f, err := os.Open(m.path("/proc/meminfo"))
	if err != nil {
		return nil, fmt.Errorf("reading memory info: %w", err)
	}
	defer f.Close()
	out := map[string]int64{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		name, rest, ok := strings.Cut(s.Text(), ":")
		if !ok {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			continue
		}
		if len(fields) > 1 && fields[1] == "kB" {
			v *= 1024
		}
		out[name] = v
	}
	if out["MemTotal"] == 0 {
		return nil, fmt.Errorf("reading memory info: no MemTotal in %s", m.path("/proc/meminfo"))
	}
	if _, ok := out["MemAvailable"]; !ok {
		out["MemAvailable"] = out["MemFree"] + out["Buffers"] + out["Cached"]
	}
	return out, s.Err()
}

func (m Machine) statfs() (*syscall.Statfs_t, error) {
	dir := m.DataDir
	// The data dir may not exist yet on a first start: measure the nearest
	// existing parent, which is on the same filesystem once it is made.
	for {
		if _, err := os.Stat(dir); err == nil || dir == filepath.Dir(dir) {
			break
		}
		dir = filepath.Dir(dir)
	}
	var fs syscall.Statfs_t
	if err := syscall.Statfs(dir, &fs); err != nil {
		return nil, fmt.Errorf("reading filesystem of %s: %w", dir, err)
	}
	return &fs, nil
}

// cgroupDirs returns this process's cgroup v2 directory and its ancestors,
// innermost first; nil on cgroup v1 or when unknown.
func (m Machine) cgroupDirs() []string {
	data, err := os.ReadFile(m.path("/proc/self/cgroup"))
	if err != nil {
		return nil
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rel, ok := strings.CutPrefix(line, "0::"); ok {
			var dirs []string
			for p := filepath.Clean("/" + rel); ; p = filepath.Dir(p) {
				dirs = append(dirs, m.path(filepath.Join("/sys/fs/cgroup", p)))
				if p == "/" {
					return dirs
				}
			}
		}
	}
	return nil
}

// cgroupMemoryLimit is the tightest memory.max of this process's cgroups,
// and the cgroup directory that sets it.
func (m Machine) cgroupMemoryLimit() (int64, string, bool) {
	limit, dir, found := int64(math.MaxInt64), "", false
	for _, d := range m.cgroupDirs() {
		v, err := readTrimmed(filepath.Join(d, "memory.max"))
		if err != nil || v == "max" {
			continue
		}
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n < limit {
			limit, dir, found = n, d, true
		}
	}
	return limit, dir, found
}

// cgroupWorkingSet is memory.current minus inactive file pages of the
// cgroup in dir: the one whose limit cgroupMemoryLimit reports, so that
// limit and usage are of the same cgroup.
func (m Machine) cgroupWorkingSet(d string) (int64, bool) {
	cur, err := readTrimmed(filepath.Join(d, "memory.current"))
	if err != nil {
		return 0, false
	}
	used, err := strconv.ParseInt(cur, 10, 64)
	if err != nil {
		return 0, false
	}
	if stat, err := os.ReadFile(filepath.Join(d, "memory.stat")); err == nil {
		for _, line := range bytes.Split(stat, []byte("\n")) {
			if v, ok := bytes.CutPrefix(line, []byte("inactive_file ")); ok {
				if n, err := strconv.ParseInt(string(v), 10, 64); err == nil && n < used {
					used -= n
				}
			}
		}
	}
	return used, true
}

// cgroupCPUQuotaMilli is the tightest cpu.max quota in millicores.
func (m Machine) cgroupCPUQuotaMilli() (int64, bool) {
	best, found := int64(math.MaxInt64), false
	for _, d := range m.cgroupDirs() {
		v, err := readTrimmed(filepath.Join(d, "cpu.max"))
		if err != nil {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[0] == "max" {
			continue
		}
		quota, err1 := strconv.ParseInt(f[0], 10, 64)
		period, err2 := strconv.ParseInt(f[1], 10, 64)
		if err1 != nil || err2 != nil || period <= 0 {
			continue
		}
		if milli := quota * 1000 / period; milli < best {
			best, found = milli, true
		}
	}
	return best, found
}

// pids returns the PID limit and how many are still free: the lower of
// kernel.pid_max and kernel.threads-max, minus the tasks that exist.
func (m Machine) pids() (maxPIDs, available int64) {
	for _, p := range []string{"/proc/sys/kernel/pid_max", "/proc/sys/kernel/threads-max"} {
		if v, err := readTrimmed(m.path(p)); err == nil {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil && (maxPIDs == 0 || n < maxPIDs) {
				maxPIDs = n
			}
		}
	}
	// /proc/loadavg: "0.00 0.01 0.05 1/123 4567": 123 tasks exist.
	if v, err := readTrimmed(m.path("/proc/loadavg")); err == nil {
		if f := strings.Fields(v); len(f) >= 4 {
			if _, total, ok := strings.Cut(f[3], "/"); ok {
				if n, err := strconv.ParseInt(total, 10, 64); err == nil {
					return maxPIDs, max(maxPIDs-n, 0)
				}
			}
		}
	}
	return maxPIDs, maxPIDs
}

func readTrimmed(path string) (string, error) {
	data, err := os.ReadFile(path)
	return strings.TrimSpace(string(data)), err
}
