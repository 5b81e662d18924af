package containerd

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// What Stop removes when the CRI could not: the mounts under Dir, the shims
// of this containerd with their containers, and the pods' cgroups.

// mountsUnder returns the mount points under dir, deepest first.
func mountsUnder(dir string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMountPath(fields[4])
		if strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b string) int { return len(b) - len(a) })
	return slices.Compact(out), nil
}

// unescapeMountPath undoes the octal escapes (\040 for a space) of
// /proc/self/mountinfo.
func unescapeMountPath(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// unmountAll unmounts every mount under dir, deepest first, lazily when a
// mount is busy; it returns the mount points it unmounted.
func unmountAll(dir string) ([]string, error) {
	var done []string
	var errs []error
	// A mount point may be stacked more than once: repeat until none is left.
	for range 5 {
		mps, err := mountsUnder(dir)
		if err != nil {
			return done, err
		}
		if len(mps) == 0 {
			return done, nil
		}
		errs = errs[:0]
		for _, mp := range mps {
			err := syscall.Unmount(mp, 0)
			if err != nil && !errors.Is(err, syscall.EINVAL) {
				err = syscall.Unmount(mp, syscall.MNT_DETACH)
			}
			if err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
				errs = append(errs, fmt.Errorf("unmounting %s: %w", mp, err))
				continue
			}
			done = append(done, mp)
		}
	}
	if mps, _ := mountsUnder(dir); len(mps) > 0 {
		errs = append(errs, fmt.Errorf("still mounted under %s: %s", dir, strings.Join(mps, ", ")))
	}
	return done, errors.Join(errs...)
}

// proc is a process found in /proc.
type proc struct {
	pid, ppid int
	argv      []string
}

func processes() []proc {
	entries, _ := os.ReadDir("/proc")
	var out []proc
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// pid (comm) state ppid …; comm may hold spaces and parentheses.
		rest := string(stat[strings.LastIndexByte(string(stat), ')')+1:])
		f := strings.Fields(rest)
		if len(f) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		out = append(out, proc{pid: pid, ppid: ppid, argv: strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")})
	}
	return out
}

// shimsOf returns the PIDs of the runtime shims started by the containerd
// listening on socket: they name its socket with -address.
func shimsOf(socket string, ps []proc) []int {
	var out []int
	for _, p := range ps {
		if !strings.HasPrefix(filepath.Base(p.argv[0]), "containerd-shim") {
			continue
		}
		for i, a := range p.argv {
			if a == "-address" && i+1 < len(p.argv) && p.argv[i+1] == socket {
				out = append(out, p.pid)
			}
		}
	}
	return out
}

// killShims kills, by PID, the shims of the containerd listening on socket
// and their children (the containers' first processes: a container's other
// processes die with the first one of its PID namespace), and waits for
// them to go. It returns the PIDs it killed.
func killShims(socket string) ([]int, error) {
	ps := processes()
	shims := shimsOf(socket, ps)
	var victims []int
	for _, shim := range shims {
		for _, p := range ps {
			if p.ppid == shim {
				victims = append(victims, p.pid)
			}
		}
	}
	victims = append(victims, shims...)
	for _, pid := range victims {
		syscall.Kill(pid, syscall.SIGKILL) //nolint:errcheck // it may have gone meanwhile
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, pid := range victims {
		for processExists(pid) {
			if time.Now().After(deadline) {
				return victims, fmt.Errorf("process %d of containerd %s did not exit after SIGKILL", pid, socket)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return victims, nil
}

// processExists reports whether pid runs and is not a zombie (the shims'
// children are reaped by init once the shim has gone).
func processExists(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	rest := string(stat[strings.LastIndexByte(string(stat), ')')+1:])
	f := strings.Fields(rest)
	return len(f) == 0 || f[0] != "Z"
}

// cgroupRoots returns the mounted cgroup hierarchies: /sys/fs/cgroup on a
// unified (v2) host, each hierarchy under it on a v1 or hybrid one.
func cgroupRoots() []string {
	const base = "/sys/fs/cgroup"
	if _, err := os.Stat(filepath.Join(base, "cgroup.controllers")); err == nil {
		return []string{base}
	}
	entries, _ := os.ReadDir(base)
	var out []string
	seen := map[string]bool{}
	for _, e := range entries {
		p, err := filepath.EvalSymlinks(filepath.Join(base, e.Name()))
		if err != nil || seen[p] {
			continue
		}
		if fi, err := os.Stat(p); err == nil && fi.IsDir() {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}

// RemoveCgroup removes the cgroup parent of a pod (a path such as
// /kubepods/besteffort/pod<uid>) in every hierarchy: the cgroups under it,
// deepest first, then it, then its ancestors as long as they are empty. A
// cgroup that still has processes or children stays (rmdir refuses), so
// the cgroups of other pods are never touched.
//
// runc creates a pod's cgroup parent and never removes it; the kubelet does,
// after the pod's sandbox is removed. Stop does it for the sandboxes it
// removes itself; a test that removes a sandbox calls RemoveCgroup after.
func RemoveCgroup(parent string) error {
	parent = filepath.Clean("/" + parent)
	if parent == "/" {
		return nil
	}
	var errs []error
	for _, root := range cgroupRoots() {
		top := filepath.Join(root, parent)
		if _, err := os.Stat(top); err != nil {
			continue
		}
		var dirs []string
		filepath.WalkDir(top, func(p string, d os.DirEntry, err error) error { //nolint:errcheck // best effort
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		slices.SortFunc(dirs, func(a, b string) int { return len(b) - len(a) })
		for _, d := range dirs {
			if err := syscall.Rmdir(d); err != nil && !errors.Is(err, syscall.ENOENT) {
				errs = append(errs, fmt.Errorf("removing cgroup %s: %w", d, err))
			}
		}
		for d := filepath.Dir(top); d != root && strings.HasPrefix(d, root+"/"); d = filepath.Dir(d) {
			if syscall.Rmdir(d) != nil {
				break
			}
		}
	}
	return errors.Join(errs...)
}
