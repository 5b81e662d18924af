package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat;
// 100 on every Linux architecture Go supports.
const clockTicks = 100

// procStatus returns VmRSS (bytes) and Threads of a process, from
// /proc/PID/status.
func procStatus(pid int) (rss int64, threads int, err error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for line := range strings.Lines(string(data)) {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "VmRSS:":
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			rss = kb << 10
		case "Threads:":
			threads, _ = strconv.Atoi(f[1])
		}
	}
	return rss, threads, nil
}

// openFiles returns how many file descriptors a process has open and its
// soft limit on them (RLIMIT_NOFILE, from /proc/PID/limits).
func openFiles(pid int) (open, limit int, err error) {
	entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return 0, 0, err
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		return 0, 0, err
	}
	for line := range strings.Lines(string(data)) {
		if rest, ok := strings.CutPrefix(line, "Max open files"); ok {
			if f := strings.Fields(rest); len(f) > 0 {
				limit, _ = strconv.Atoi(f[0])
			}
		}
	}
	return len(entries), limit, nil
}

// cpuTime returns the CPU time (user and system) a process used so far,
// from /proc/PID/stat.
func cpuTime(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; fields after it start
	// past the last ')'.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / clockTicks, nil
}

// cpuMeter measures the cores a set of processes used between start and
// stop.
type cpuMeter struct {
	pids  []int
	t0    time.Time
	start []time.Duration
}

func startCPU(pids ...int) *cpuMeter {
	m := &cpuMeter{pids: pids, t0: time.Now()}
	for _, pid := range pids {
		c, _ := cpuTime(pid)
		m.start = append(m.start, c)
	}
	return m
}

// cores returns the average number of cores each process used since
// startCPU.
func (m *cpuMeter) cores() []float64 {
	wall := time.Since(m.t0)
	out := make([]float64, len(m.pids))
	for i, pid := range m.pids {
		c, err := cpuTime(pid)
		if err == nil && wall > 0 {
			out[i] = (c - m.start[i]).Seconds() / wall.Seconds()
		}
	}
	return out
}

// controlPlanePIDs reads the PIDs of the control plane's processes by name
// from Dir/state.json, where controlplane.Start records them.
func (e *Env) controlPlanePIDs() (map[string]int, error) {
	data, err := os.ReadFile(filepath.Join(e.cp.Dir, "state.json"))
	if err != nil {
		return nil, err
	}
	var st struct {
		Processes []struct {
			Name string `json:"name"`
			PID  int    `json:"pid"`
		} `json:"processes"`
	}
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, p := range st.Processes {
		out[p.Name] = p.PID
	}
	if out["kube-apiserver"] == 0 || out["etcd"] == 0 {
		return nil, fmt.Errorf("no kube-apiserver or etcd in %s", filepath.Join(e.cp.Dir, "state.json"))
	}
	return out, nil
}

// Machine describes where the bench ran.
type Machine struct {
	CPUs         int    `json:"nproc"`
	CPUModel     string `json:"cpuModel"`
	MemoryMiB    int64  `json:"memoryMiB"`
	Kernel       string `json:"kernel"`
	GoVersion    string `json:"goVersion"`
	LoadAvgStart string `json:"loadAvgStart"`
	LoadAvgEnd   string `json:"loadAvgEnd"`
}

func describeMachine(ctx context.Context) Machine {
	m := Machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), LoadAvgStart: loadAvg()}
	if out, err := exec.CommandContext(ctx, "nproc").Output(); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(out))); err == nil {
			m.CPUs = n
		}
	}
	if out, err := exec.CommandContext(ctx, "go", "env", "GOVERSION").Output(); err == nil {
		m.GoVersion = strings.TrimSpace(string(out))
	}
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(data))
	}
	m.MemoryMiB = meminfo("MemTotal") >> 20
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(data)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}

// meminfo returns a /proc/meminfo field in bytes.
func meminfo(field string) int64 {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(data)) {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == field+":" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// loadAvg is the first three fields of /proc/loadavg: the machine is
// shared, and the report says how busy it was.
func loadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}
