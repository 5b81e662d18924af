package controlplane

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Process is one child process of the control plane.
type Process struct {
	Name string `json:"name"`
	PID  int    `json:"pid"`
	// Path is the executable, used to make sure a PID still belongs to the
	// process that was started before signalling it.
	Path string   `json:"path"`
	Args []string `json:"args"`
	Log  string   `json:"log"`

	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// StartProcess starts bin with args, sending its output to logDir/name.log.
// A detached process gets a session of its own and outlives this process;
// otherwise it is killed if this process dies and reaped when it exits.
func StartProcess(name, bin string, args []string, logDir string, detach bool) (*Process, error) {
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return nil, err
	}
	logPath := filepath.Join(logDir, name+".log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening %s log: %w", name, err)
	}
	defer logFile.Close()
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if detach {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	} else {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &Process{Name: name, PID: cmd.Process.Pid, Path: bin, Args: args, Log: logPath, cmd: cmd, done: make(chan struct{})}
	// Waited for while this process lives (a detached one is reparented
	// when it exits, and is stopped later by PID).
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Exited reports whether a process started (and waited for) by this process
// has ended, with its error.
func (p *Process) Exited() (bool, error) {
	if p.cmd == nil {
		return !p.Alive(), nil
	}
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// Alive reports whether PID still runs the executable that was started.
func (p *Process) Alive() bool {
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p.PID))
	if err != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.PID))
	if err == nil {
		// A zombie has exited; only its parent's wait is missing.
		if f := strings.Fields(string(stat)); len(f) > 2 && f[2] == "Z" {
			return false
		}
	}
	argv0, _, _ := strings.Cut(string(cmdline), "\x00")
	return argv0 == p.Path
}

// Stop sends SIGTERM, waits up to grace for the process to end, then sends
// SIGKILL. It only signals the PID if it still runs the same executable.
func (p *Process) Stop(grace time.Duration) error {
	if !p.Alive() {
		return nil
	}
	if err := syscall.Kill(p.PID, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("stopping %s (pid %d): %w", p.Name, p.PID, err)
	}
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		if done, _ := p.Exited(); done {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	if p.Alive() {
		_ = syscall.Kill(p.PID, syscall.SIGKILL)
	}
	if p.cmd != nil {
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			return fmt.Errorf("%s (pid %d) did not exit after SIGKILL", p.Name, p.PID)
		}
	}
	return nil
}

// freePorts returns n distinct free TCP ports on 127.0.0.1.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("finding a free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// Tail returns the last lines of a log file, for error messages.
func Tail(path string, lines int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	all := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

// FreePort returns a free TCP port on 127.0.0.1.
func FreePort() (int, error) {
	ports, err := freePorts(1)
	if err != nil {
		return 0, err
	}
	return ports[0], nil
}

// Done is closed when a process started (and waited for) by this process
// has ended; Exited then returns its error. It is nil for a process this
// one did not start.
func (p *Process) Done() <-chan struct{} { return p.done }
