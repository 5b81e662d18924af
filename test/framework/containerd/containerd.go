package containerd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/krustlet/krustlet-go/test/framework/controlplane"
	"github.com/krustlet/krustlet-go/test/framework/images"
)

// ErrUnavailable is wrapped by the errors of Check and Start when this
// machine cannot run containerd: not root, or containerd, its runc shim,
// runc, the CNI plugins or ip missing. Start's other errors (containerd is
// there but does not come up) are failures, never reasons to skip.
var ErrUnavailable = errors.New("containerd cannot run on this machine")

// RequireEnv is the environment variable that, when set to anything but
// empty, makes MustStart fail instead of skip on ErrUnavailable; .ci/run
// sets it, since it installs the packages.
const RequireEnv = "KRUSTLET_REQUIRE_CRI"

// DefaultHandler is the CRI runtime handler that runs runc, the default one.
const DefaultHandler = "runc"

// Binaries are what Start runs.
type Binaries struct {
	Containerd, Shim, Runc string
	// CNIDir holds the bridge, host-local and loopback plugins.
	CNIDir string
}

// binDirs are searched after PATH: a root shell without a login may lack
// the sbin directories, where Debian puts runc.
var binDirs = []string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"}

func lookPath(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, d := range binDirs {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found", name)
}

// FindBinaries finds containerd, containerd-shim-runc-v2, runc and the CNI
// plugins (in /usr/lib/cni, Debian's place, or /opt/cni/bin).
func FindBinaries() (Binaries, error) {
	var b Binaries
	var missing []string
	for _, f := range []struct {
		name string
		dst  *string
	}{{"containerd", &b.Containerd}, {"containerd-shim-runc-v2", &b.Shim}, {"runc", &b.Runc}} {
		p, err := lookPath(f.name)
		if err != nil {
			missing = append(missing, f.name)
		}
		*f.dst = p
	}
	for _, d := range []string{"/usr/lib/cni", "/opt/cni/bin"} {
		if hasPlugins(d) {
			b.CNIDir = d
			break
		}
	}
	if b.CNIDir == "" {
		missing = append(missing, "CNI plugins bridge, host-local and loopback (in /usr/lib/cni or /opt/cni/bin)")
	}
	if _, err := lookPath("ip"); err != nil {
		missing = append(missing, "ip (iproute2)")
	}
	if len(missing) > 0 {
		return b, fmt.Errorf("%w: missing %s; `make deps` installs Debian's containerd, runc and containernetworking-plugins", ErrUnavailable, strings.Join(missing, ", "))
	}
	return b, nil
}

func hasPlugins(dir string) bool {
	for _, p := range []string{"bridge", "host-local", "loopback"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			return false
		}
	}
	return true
}

// Check reports why this machine cannot run containerd (wrapping
// ErrUnavailable), or nil.
func Check() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: running containers needs root (euid %d)", ErrUnavailable, os.Geteuid())
	}
	_, err := FindBinaries()
	return err
}

// Options describe a containerd to start.
type Options struct {
	// Dir holds the configuration, root, state, socket, CNI configuration,
	// IPAM leases and log. Required.
	Dir string
	// RegistryHost is host:port of the registry on loopback, configured
	// as plain HTTP. Required.
	RegistryHost string
	// PauseImage is the sandbox image. Default: the pause image of
	// test/framework/images, pushed to RegistryHost.
	PauseImage string
	// Handlers are the CRI runtime handlers, each running runc. Default:
	// DefaultHandler only. The first is the default handler.
	Handlers []string
	// ReadyTimeout bounds each wait for the CRI to answer. Default: 60 s.
	ReadyTimeout time.Duration
	// Logf, if set, is told what Stop removed that the CRI did not.
	Logf func(format string, args ...any)
}

// Containerd is a running containerd.
type Containerd struct {
	opts       Options
	bins       Binaries
	dir        string
	configPath string
	socket     string
	socketDir  string // a short directory for the socket when Dir is long; removed by Stop
	dirLock    *os.File
	net        *network
	proc       *controlplane.Process
	conn       *grpc.ClientConn
	runtime    runtimeapi.RuntimeServiceClient
	images     runtimeapi.ImageServiceClient
	ready      bool // the CRI was ready once
	stopped    bool
}

// maxSocketPath leaves room under the 108 bytes of a unix socket address for
// the ".ttrpc" suffix of containerd's second socket.
const maxSocketPath = 100

// Start writes the configuration of a containerd under o.Dir, starts it as a
// child process and waits until its CRI answers with RuntimeReady and
// NetworkReady. Its error wraps ErrUnavailable when the machine cannot run
// containerd at all.
func Start(ctx context.Context, o Options) (_ *Containerd, err error) {
	if err := Check(); err != nil {
		return nil, err
	}
	if o.Dir == "" || o.RegistryHost == "" {
		return nil, errors.New("containerd: Dir and RegistryHost are required")
	}
	if o.ReadyTimeout == 0 {
		o.ReadyTimeout = 60 * time.Second
	}
	if len(o.Handlers) == 0 {
		o.Handlers = []string{DefaultHandler}
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	bins, err := FindBinaries()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, err
	}
	// Mount points in /proc/self/mountinfo are real paths.
	dir, err := filepath.Abs(o.Dir)
	if err == nil {
		dir, err = filepath.EvalSymlinks(dir)
	}
	if err != nil {
		return nil, err
	}
	if o.PauseImage == "" {
		if o.PauseImage, err = images.Push(ctx, o.RegistryHost, images.Pause); err != nil {
			return nil, fmt.Errorf("containerd: pushing the pause image: %w", err)
		}
	}
	// Stop kills the shims of the socket under Dir and unmounts everything
	// under Dir: two instances must never share it.
	lock, err := os.OpenFile(filepath.Join(dir, "containerd.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		return nil, fmt.Errorf("containerd: %s is the directory of another running instance", dir)
	}
	c := &Containerd{opts: o, bins: bins, dir: dir, dirLock: lock}
	defer func() {
		if err != nil {
			if serr := c.Stop(); serr != nil {
				err = fmt.Errorf("%w (and stopping: %v)", err, serr)
			}
		}
	}()
	if c.net, err = claimNetwork(); err != nil {
		return nil, err
	}
	c.socket = filepath.Join(dir, "containerd.sock")
	if len(c.socket) > maxSocketPath {
		if c.socketDir, err = os.MkdirTemp("", "ctrd-"); err != nil {
			return nil, err
		}
		c.socket = filepath.Join(c.socketDir, "containerd.sock")
	}
	cniConfDir := filepath.Join(dir, "cni", "net.d")
	if err := os.MkdirAll(cniConfDir, 0o755); err != nil {
		return nil, err
	}
	conflist, err := c.net.conflist(filepath.Join(dir, "cni", "ipam"))
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(cniConfDir, "10-"+c.net.Name+".conflist"), conflist, 0o644); err != nil {
		return nil, err
	}
	registryConfigDir := filepath.Join(dir, "certs.d")
	if err := os.MkdirAll(filepath.Join(registryConfigDir, o.RegistryHost), 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(registryConfigDir, o.RegistryHost, "hosts.toml"), []byte(hostsTOML(o.RegistryHost)), 0o644); err != nil {
		return nil, err
	}
	c.configPath = filepath.Join(dir, "config.toml")
	config := configTOML(configParams{
		Root:              filepath.Join(dir, "root"),
		State:             filepath.Join(dir, "state"),
		Socket:            c.socket,
		Opt:               filepath.Join(dir, "opt"),
		PauseImage:        o.PauseImage,
		RegistryConfigDir: registryConfigDir,
		CNIBinDir:         bins.CNIDir,
		CNIConfDir:        cniConfDir,
		Runc:              bins.Runc,
		RuncRoot:          filepath.Join(dir, "state", "runc"),
		Handlers:          o.Handlers,
	})
	if err := os.WriteFile(c.configPath, []byte(config), 0o644); err != nil {
		return nil, err
	}
	// One connection for the instance's life; it reconnects within a second
	// after a restart.
	c.conn, err = grpc.NewClient(c.Endpoint(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
			MinConnectTimeout: 5 * time.Second,
		}),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(16<<20)),
	)
	if err != nil {
		return nil, err
	}
	c.runtime = runtimeapi.NewRuntimeServiceClient(c.conn)
	c.images = runtimeapi.NewImageServiceClient(c.conn)
	if err := c.start(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// MustStart is Start for tests: it skips tb when the machine cannot run
// containerd (unless RequireEnv is set), fails it on any other error, and
// stops containerd when tb ends, failing tb if Stop fails. Logf defaults to
// tb.Logf.
func MustStart(tb testing.TB, o Options) *Containerd {
	tb.Helper()
	if o.Logf == nil {
		o.Logf = tb.Logf
	}
	c, err := Start(tb.Context(), o)
	if errors.Is(err, ErrUnavailable) && os.Getenv(RequireEnv) == "" {
		tb.Skip(err)
	}
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := c.Stop(); err != nil {
			tb.Error(err)
		}
	})
	return c
}

// start starts the process and waits until the CRI is ready.
func (c *Containerd) start(ctx context.Context) error {
	p, err := controlplane.StartProcess("containerd", c.bins.Containerd, []string{"--config", c.configPath}, c.dir, false)
	if err != nil {
		return err
	}
	c.proc = p
	if err := c.waitReady(ctx); err != nil {
		return err
	}
	c.ready = true
	return nil
}

// waitReady polls the CRI until Version answers and Status reports
// RuntimeReady and NetworkReady, failing early if the process exits.
func (c *Containerd) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.opts.ReadyTimeout)
	defer cancel()
	for {
		err := c.probe(ctx)
		if err == nil {
			return nil
		}
		if done, perr := c.proc.Exited(); done {
			return fmt.Errorf("containerd exited (%v) before its CRI was ready; log %s:\n%s", perr, c.LogPath(), controlplane.Tail(c.LogPath(), 30))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("containerd's CRI was not ready within %v: %w; log %s:\n%s", c.opts.ReadyTimeout, err, c.LogPath(), controlplane.Tail(c.LogPath(), 30))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (c *Containerd) probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := c.runtime.Version(ctx, &runtimeapi.VersionRequest{}); err != nil {
		return err
	}
	st, err := c.runtime.Status(ctx, &runtimeapi.StatusRequest{})
	if err != nil {
		return err
	}
	var notReady []string
	for _, want := range []string{runtimeapi.RuntimeReady, runtimeapi.NetworkReady} {
		ok := false
		for _, cond := range st.GetStatus().GetConditions() {
			if cond.GetType() == want {
				ok = cond.GetStatus()
				if !ok {
					notReady = append(notReady, fmt.Sprintf("%s: %s %s", want, cond.GetReason(), cond.GetMessage()))
				}
			}
		}
		if !ok && len(notReady) == 0 {
			notReady = append(notReady, want+" missing")
		}
	}
	if len(notReady) > 0 {
		return errors.New(strings.Join(notReady, "; "))
	}
	return nil
}

// Endpoint is the CRI endpoint, unix:///…/containerd.sock.
func (c *Containerd) Endpoint() string { return "unix://" + c.socket }

// LogPath is containerd's log; a restarted containerd appends to it.
func (c *Containerd) LogPath() string { return filepath.Join(c.dir, "containerd.log") }

// Dir is the directory of the instance (Options.Dir with symlinks resolved).
func (c *Containerd) Dir() string { return c.dir }

// PID is the process ID of containerd, 0 before it was started.
func (c *Containerd) PID() int {
	if c.proc == nil {
		return 0
	}
	return c.proc.PID
}

// Running reports whether containerd runs.
func (c *Containerd) Running() bool { return c.proc != nil && c.proc.Alive() }

// Subnet is the pods' network; their IPs are in it and nothing outside it
// can be reached from a pod.
func (c *Containerd) Subnet() netip.Prefix { return c.net.Subnet }

// Bridge is the name of the pods' bridge, which the first sandbox creates.
func (c *Containerd) Bridge() string { return c.net.Bridge }

// RuntimeService is a CRI runtime client connected to Endpoint. It outlives
// restarts (it reconnects) and is closed by Stop.
func (c *Containerd) RuntimeService() runtimeapi.RuntimeServiceClient { return c.runtime }

// ImageService is a CRI image client connected to Endpoint, like
// RuntimeService.
func (c *Containerd) ImageService() runtimeapi.ImageServiceClient { return c.images }

// Restart stops containerd (SIGTERM, then SIGKILL after 10 s) unless it
// is not running, starts it again with the same configuration and waits
// until its CRI is ready. Sandboxes and containers keep running meanwhile,
// under their shims, and containerd finds them again.
func (c *Containerd) Restart(ctx context.Context) error {
	if c.stopped {
		return errors.New("containerd: Restart after Stop")
	}
	if err := c.proc.Stop(10 * time.Second); err != nil {
		return err
	}
	return c.start(ctx)
}

// Kill ends containerd with SIGKILL, as a runtime that vanishes; its shims
// and containers keep running. Restart brings it back; Stop cleans up
// either way.
func (c *Containerd) Kill() error {
	if !c.Running() {
		return nil
	}
	if err := syscall.Kill(c.proc.PID, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("killing containerd (pid %d): %w", c.proc.PID, err)
	}
	select {
	case <-c.proc.Done():
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("containerd (pid %d) did not exit after SIGKILL", c.proc.PID)
	}
}

// Stop removes every pod sandbox through the CRI (starting containerd again
// first if it was killed), stops containerd, then removes what is left:
// shims of this containerd and their containers (killed by PID), mounts
// under Dir (overlay snapshots, shm, network namespaces), the pods' cgroups,
// the bridge, and IPv4 forwarding if the bridge turned it on. It fails if
// any of those is still there at the end. Stop may be called more than
// once; Dir is left for the caller to remove.
func (c *Containerd) Stop() error {
	if c.stopped {
		return nil
	}
	c.stopped = true
	var errs []error
	var cgroups []string
	if c.proc != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if !c.proc.Alive() && c.ready {
			c.opts.Logf("containerd is not running; starting it again to remove its sandboxes")
			if err := c.start(ctx); err != nil {
				c.opts.Logf("containerd did not come back, removing what it left by hand: %v", err)
			}
		}
		if c.proc.Alive() {
			var err error
			cgroups, err = c.removeSandboxes(ctx)
			errs = append(errs, err)
		}
		errs = append(errs, c.proc.Stop(10*time.Second))
	}
	if c.socket != "" {
		killed, err := killShims(c.socket)
		if len(killed) > 0 {
			c.opts.Logf("killed processes of containerd's shims: %v", killed)
		}
		errs = append(errs, err)
	}
	if c.dir != "" {
		unmounted, err := unmountAll(c.dir)
		if len(unmounted) > 0 {
			c.opts.Logf("unmounted %s", strings.Join(unmounted, ", "))
		}
		errs = append(errs, err)
	}
	for _, cg := range cgroups {
		errs = append(errs, RemoveCgroup(cg))
	}
	if c.conn != nil {
		c.conn.Close()
	}
	if c.net != nil {
		errs = append(errs, c.net.removeBridge())
		errs = append(errs, c.net.release())
	}
	if c.socketDir != "" {
		errs = append(errs, os.RemoveAll(c.socketDir))
	}
	if left := c.leftovers(); len(left) > 0 {
		errs = append(errs, fmt.Errorf("containerd left behind: %s", strings.Join(left, "; ")))
	}
	c.dirLock.Close()
	return errors.Join(errs...)
}

// removeSandboxes stops and removes every pod sandbox, and returns their
// cgroup parents.
func (c *Containerd) removeSandboxes(ctx context.Context) ([]string, error) {
	resp, err := c.runtime.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		return nil, fmt.Errorf("listing sandboxes: %w", err)
	}
	var errs []error
	var cgroups []string
	for _, s := range resp.GetItems() {
		if cg := c.cgroupParent(ctx, s.GetId()); cg != "" {
			cgroups = append(cgroups, cg)
		}
		if _, err := c.runtime.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: s.GetId()}); err != nil {
			errs = append(errs, fmt.Errorf("stopping sandbox %s: %w", s.GetId(), err))
			continue
		}
		if _, err := c.runtime.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: s.GetId()}); err != nil {
			errs = append(errs, fmt.Errorf("removing sandbox %s: %w", s.GetId(), err))
		}
	}
	return cgroups, errors.Join(errs...)
}

// cgroupParent returns the cgroup parent a sandbox was created with, from
// containerd's verbose status ("info": the sandbox's config and OCI spec).
func (c *Containerd) cgroupParent(ctx context.Context, id string) string {
	st, err := c.runtime.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id, Verbose: true})
	if err != nil {
		return ""
	}
	var info struct {
		Config struct {
			Linux struct {
				CgroupParent string `json:"cgroup_parent"`
			} `json:"linux"`
		} `json:"config"`
		RuntimeSpec struct {
			Linux struct {
				CgroupsPath string `json:"cgroupsPath"`
			} `json:"linux"`
		} `json:"runtimeSpec"`
	}
	if json.Unmarshal([]byte(st.GetInfo()["info"]), &info) != nil {
		return ""
	}
	if p := info.Config.Linux.CgroupParent; p != "" {
		return p
	}
	if p := info.RuntimeSpec.Linux.CgroupsPath; strings.HasPrefix(p, "/") {
		return filepath.Dir(p)
	}
	return ""
}

// leftovers lists what of this instance still exists.
func (c *Containerd) leftovers() []string {
	var out []string
	if c.Running() {
		out = append(out, fmt.Sprintf("containerd (pid %d)", c.proc.PID))
	}
	if c.socket != "" {
		if shims := shimsOf(c.socket, processes()); len(shims) > 0 {
			out = append(out, fmt.Sprintf("shims %v", shims))
		}
	}
	if c.dir != "" {
		if mps, _ := mountsUnder(c.dir); len(mps) > 0 {
			out = append(out, "mounts "+strings.Join(mps, ", "))
		}
	}
	if c.net != nil && linkExists(c.net.Bridge) {
		out = append(out, "bridge "+c.net.Bridge)
	}
	return out
}
