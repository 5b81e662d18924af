// Package krustlet builds the krustlet binary and runs krustlet nodes as
// processes joined to a local control plane, for end-to-end tests and the
// development cluster.
package krustlet

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/krustlet/krustlet-go/test/framework/controlplane"
)

// Build compiles ./cmd/krustlet from repoRoot into dir and returns its path.
func Build(ctx context.Context, repoRoot, dir string) (string, error) {
	bin := filepath.Join(dir, "krustlet")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/krustlet")
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building krustlet: %w\n%s", err, out)
	}
	return bin, nil
}

// Node is one krustlet process.
type Node struct {
	Name    string
	Bin     string
	DataDir string
	Port    int
	LogDir  string
	// Args are the flags the node runs with after joining (or its whole
	// command line when it was started with Start).
	Args []string
	Proc *controlplane.Process
}

// Options describe a node to join.
type Options struct {
	Name    string
	DataDir string
	LogDir  string
	// Port of the node API; a free one when 0.
	Port int
	// Detach lets the node outlive the calling process.
	Detach bool
	// Extra flags.
	Extra []string
	// Discovery replaces the discovery arguments of the join command line
	// (e.g. the endpoint and flags kubeadm token create --print-join-command
	// prints, or --discovery-file); nil means --server, --token and
	// --discovery-token-ca-cert-hash of cp.
	Discovery []string
}

// Join runs `krustlet join` against cp with its token, as an operator would.
func Join(bin string, cp *controlplane.ControlPlane, o Options) (*Node, error) {
	if o.Port == 0 {
		port, err := controlplane.FreePort()
		if err != nil {
			return nil, err
		}
		o.Port = port
	}
	n := &Node{Name: o.Name, Bin: bin, DataDir: o.DataDir, Port: o.Port, LogDir: o.LogDir}
	n.Args = append([]string{
		"--node-name=" + o.Name,
		"--hostname-override=" + o.Name,
		"--node-ip=127.0.0.1",
		"--address=127.0.0.1",
		"--port=" + strconv.Itoa(o.Port),
		"--healthz-port=0",
		"--data-dir=" + o.DataDir,
		"-v=2",
	}, o.Extra...)
	discovery := o.Discovery
	if discovery == nil {
		discovery = []string{
			strings.TrimPrefix(cp.APIServerURL, "https://"),
			"--token=" + cp.Token,
			"--discovery-token-ca-cert-hash=" + cp.PKI.CAHash(),
		}
	}
	args := append(append([]string{"join"}, discovery...), n.Args...)
	p, err := controlplane.StartProcess(o.Name, bin, args, o.LogDir, o.Detach)
	if err != nil {
		return nil, err
	}
	n.Proc = p
	return n, nil
}

// Restart stops the node and starts the agent again from its data dir,
// without joining: it reuses the credentials it has.
func (n *Node) Restart() error {
	if err := n.Stop(); err != nil {
		return err
	}
	args := append([]string{"--bootstrap-kubeconfig=" + filepath.Join(n.DataDir, "bootstrap-kubeconfig")}, n.Args...)
	p, err := controlplane.StartProcess(n.Name, n.Bin, args, n.LogDir, false)
	if err != nil {
		return err
	}
	n.Proc = p
	return nil
}

// Stop sends SIGTERM and waits for the agent to exit (SIGKILL after 30 s).
func (n *Node) Stop() error {
	return n.Proc.Stop(30 * time.Second)
}

// Cleanup stops the agent and unmounts what its pods left mounted under
// its data dir.
func (n *Node) Cleanup() error {
	return errors.Join(n.Stop(), UnmountAll(n.DataDir))
}

// Kill ends the agent with SIGKILL, as a crash would, and waits for it.
func (n *Node) Kill() error {
	if err := syscall.Kill(n.Proc.PID, syscall.SIGKILL); err != nil {
		return err
	}
	return n.Proc.Stop(10 * time.Second)
}

// LogPath is the node's log file.
func (n *Node) LogPath() string { return n.Proc.Log }

// UnmountAll unmounts every mount point under dir (the tmpfs volumes of a
// node's pods stay mounted when the agent stops, as with the kubelet), so
// that dir can be removed.
func UnmountAll(dir string) error {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	var points []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
			points = append(points, f[4])
		}
	}
	// Deepest first.
	sort.Sort(sort.Reverse(sort.StringSlice(points)))
	var errs []error
	for _, p := range points {
		if err := syscall.Unmount(p, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) {
			errs = append(errs, fmt.Errorf("unmounting %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}

// WaitForReady waits until the Node called name has a Ready condition of
// the given status, and returns the last version seen (nil if none was).
func WaitForReady(ctx context.Context, client kubernetes.Interface, name string, status v1.ConditionStatus, timeout time.Duration) (*v1.Node, error) {
	var node *v1.Node
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		n, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		node = n
		for _, c := range n.Status.Conditions {
			if c.Type == v1.NodeReady {
				return c.Status == status, nil
			}
		}
		return false, nil
	})
	if err != nil {
		return node, fmt.Errorf("node %s did not reach Ready=%s within %v: %w", name, status, timeout, err)
	}
	return node, nil
}
