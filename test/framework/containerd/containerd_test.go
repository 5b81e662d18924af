package containerd

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/krustlet/krustlet-go/test/framework/controlplane"
	"github.com/krustlet/krustlet-go/test/framework/images"
	"github.com/krustlet/krustlet-go/test/framework/registry"
)

// images are the test images in a registry on loopback.
type testImages struct {
	host, pause, ctrtest string
}

// setupImages starts a registry and pushes the pause and ctrtest images to
// it; it skips the test in -short mode or where containerd or the registry
// cannot run.
func setupImages(t *testing.T) testImages {
	t.Helper()
	if testing.Short() {
		t.Skip("starts containerd and runs containers")
	}
	if err := Check(); err != nil && os.Getenv(RequireEnv) == "" {
		t.Skip(err)
	}
	if _, err := registry.FindBinary(); err != nil && os.Getenv(RequireEnv) == "" {
		t.Skip(err)
	}
	reg, err := registry.Start(t.Context(), registry.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Stop() })

	start := time.Now()
	pause, err := images.Build(t.Context(), images.Pause)
	if err != nil {
		t.Fatal(err)
	}
	built := time.Now()
	pauseRef, err := pause.Push(t.Context(), reg.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("pause image: built (or found in the cache) in %v, pushed in %v", built.Sub(start).Round(time.Millisecond), time.Since(built).Round(time.Millisecond))
	start = time.Now()
	ref := images.MustPush(t, reg.Host, images.CtrTest)
	t.Logf("ctrtest image: built (or found in the cache) and pushed in %v", time.Since(start).Round(time.Millisecond))
	return testImages{host: reg.Host, pause: pauseRef, ctrtest: ref}
}

func startContainerd(t *testing.T, imgs testImages, handlers ...string) *Containerd {
	t.Helper()
	start := time.Now()
	c := MustStart(t, Options{Dir: t.TempDir(), RegistryHost: imgs.host, PauseImage: imgs.pause, Handlers: handlers})
	t.Logf("containerd ready in %v (pid %d, pods on %s)", time.Since(start).Round(time.Millisecond), c.PID(), c.Subnet())
	return c
}

// setup starts a registry with the test images and a containerd; it
// returns containerd and ctrtest's reference.
func setup(t *testing.T) (*Containerd, string) {
	t.Helper()
	imgs := setupImages(t)
	return startContainerd(t, imgs), imgs.ctrtest
}

func randomUID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// pod is a sandbox of the tests.
type pod struct {
	id     string
	config *runtimeapi.PodSandboxConfig
}

func runPod(t *testing.T, c *Containerd, name string) pod {
	t.Helper()
	return runPodWith(t, c, name, DefaultHandler)
}

func runPodWith(t *testing.T, c *Containerd, name, handler string) pod {
	t.Helper()
	uid := randomUID()
	cfg := &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: name, Namespace: "default", Uid: uid},
		Hostname:     name,
		LogDirectory: filepath.Join(c.Dir(), "pods", "default_"+name+"_"+uid),
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			CgroupParent: "/kubepods/besteffort/pod" + uid,
			SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
				NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_POD, Pid: runtimeapi.NamespaceMode_CONTAINER, Ipc: runtimeapi.NamespaceMode_POD},
			},
		},
	}
	if err := os.MkdirAll(cfg.LogDirectory, 0o755); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	resp, err := c.RuntimeService().RunPodSandbox(t.Context(), &runtimeapi.RunPodSandboxRequest{Config: cfg, RuntimeHandler: handler})
	if err != nil {
		t.Fatalf("RunPodSandbox: %v\ncontainerd log:\n%s", err, controlplane.Tail(c.LogPath(), 20))
	}
	t.Logf("RunPodSandbox %s: %v", name, time.Since(start).Round(time.Millisecond))
	return pod{id: resp.GetPodSandboxId(), config: cfg}
}

func pull(t *testing.T, c *Containerd, p pod, ref string) string {
	t.Helper()
	resp, err := c.ImageService().PullImage(t.Context(), &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: ref}, SandboxConfig: p.config})
	if err != nil {
		t.Fatalf("PullImage %s: %v", ref, err)
	}
	return resp.GetImageRef()
}

// podIP returns the IP of the pod, which must be in the pods' network.
func podIP(t *testing.T, c *Containerd, p pod) netip.Addr {
	t.Helper()
	st, err := c.RuntimeService().PodSandboxStatus(t.Context(), &runtimeapi.PodSandboxStatusRequest{PodSandboxId: p.id})
	if err != nil {
		t.Fatal(err)
	}
	ip, err := netip.ParseAddr(st.GetStatus().GetNetwork().GetIp())
	if err != nil || !c.Subnet().Contains(ip) {
		t.Fatalf("pod IP %q (%v) is not in the pods' network %s", st.GetStatus().GetNetwork().GetIp(), err, c.Subnet())
	}
	return ip
}

// runContainer creates and starts a container of ref in p with args.
func runContainer(t *testing.T, c *Containerd, p pod, name, ref string, args ...string) string {
	t.Helper()
	rs := c.RuntimeService()
	created, err := rs.CreateContainer(t.Context(), &runtimeapi.CreateContainerRequest{
		PodSandboxId: p.id,
		Config: &runtimeapi.ContainerConfig{
			Metadata: &runtimeapi.ContainerMetadata{Name: name},
			Image:    &runtimeapi.ImageSpec{Image: ref},
			Args:     args,
			LogPath:  filepath.Join(name, "0.log"),
			Linux:    &runtimeapi.LinuxContainerConfig{},
		},
		SandboxConfig: p.config,
	})
	if err != nil {
		t.Fatalf("CreateContainer %s: %v", name, err)
	}
	if _, err := rs.StartContainer(t.Context(), &runtimeapi.StartContainerRequest{ContainerId: created.GetContainerId()}); err != nil {
		t.Fatalf("StartContainer %s: %v", name, err)
	}
	return created.GetContainerId()
}

// waitState polls the container's status until it is in state; containerd
// 1.6 has no container events to watch.
func waitState(t *testing.T, c *Containerd, id string, state runtimeapi.ContainerState) *runtimeapi.ContainerStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for {
		resp, err := c.RuntimeService().ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: id})
		if err == nil && resp.GetStatus().GetState() == state {
			return resp.GetStatus()
		}
		select {
		case <-ctx.Done():
			t.Fatalf("container %s did not reach %v (last: %v, %v)", id, state, resp.GetStatus().GetState(), err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// criLine is one line of a CRI-format log: time, stream, tag, content.
var criLine = regexp.MustCompile(`^(\S+) (stdout|stderr) ([FP]) (.*)$`)

func TestRunPodThroughCRI(t *testing.T) {
	c, ref := setup(t)
	rs, is := c.RuntimeService(), c.ImageService()

	p := runPod(t, c, "ctrtest")
	ip := podIP(t, c, p)

	start := time.Now()
	pulled := pull(t, c, p, ref)
	t.Logf("PullImage %s: %v (%s)", ref, time.Since(start).Round(time.Millisecond), pulled)
	img, err := is.ImageStatus(t.Context(), &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: ref}})
	if err != nil || img.GetImage().GetId() != pulled {
		t.Errorf("ImageStatus %s = %v, %v; want image %s", ref, img.GetImage(), err, pulled)
	}

	start = time.Now()
	hello := runContainer(t, c, p, "hello", ref, "echo", "hello", "stderr", "to stderr", "exit", "3")
	status := waitState(t, c, hello, runtimeapi.ContainerState_CONTAINER_EXITED)
	t.Logf("first container created, started and exited in %v", time.Since(start).Round(time.Millisecond))
	if status.GetExitCode() != 3 {
		t.Errorf("exit code %d, want 3 (reason %q, message %q)", status.GetExitCode(), status.GetReason(), status.GetMessage())
	}
	logPath := filepath.Join(p.config.LogDirectory, "hello", "0.log")
	if status.GetLogPath() != logPath {
		t.Errorf("log path %q, want %q", status.GetLogPath(), logPath)
	}
	b, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		m := criLine.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("log line %q is not in the CRI format", line)
		}
		if _, err := time.Parse(time.RFC3339Nano, m[1]); err != nil {
			t.Errorf("log line %q: %v", line, err)
		}
		got = append(got, m[2]+" "+m[3]+" "+m[4])
	}
	// Two streams may interleave either way.
	if strings.Join(got, "|") != "stdout F hello|stderr F to stderr" && strings.Join(got, "|") != "stderr F to stderr|stdout F hello" {
		t.Errorf("log lines %q, want stdout F hello and stderr F to stderr", got)
	}

	serve := runContainer(t, c, p, "serve", ref, "serve", "8080")
	waitState(t, c, serve, runtimeapi.ContainerState_CONTAINER_RUNNING)
	// The pod IP is in the network namespace this test's containerd made.
	url := "http://" + netip.AddrPortFrom(ip, 8080).String() + "/some/path"
	body := httpGetEventually(t, url)
	if body != "ctrtest /some/path\n" {
		t.Errorf("GET %s = %q, want %q", url, body, "ctrtest /some/path\n")
	}

	start = time.Now()
	if _, err := rs.StopPodSandbox(t.Context(), &runtimeapi.StopPodSandboxRequest{PodSandboxId: p.id}); err != nil {
		t.Fatal(err)
	}
	if _, err := rs.RemovePodSandbox(t.Context(), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: p.id}); err != nil {
		t.Fatal(err)
	}
	t.Logf("StopPodSandbox and RemovePodSandbox: %v", time.Since(start).Round(time.Millisecond))
	if err := RemoveCgroup(p.config.Linux.CgroupParent); err != nil {
		t.Error(err)
	}
	list, err := rs.ListPodSandbox(t.Context(), &runtimeapi.ListPodSandboxRequest{})
	if err != nil || len(list.GetItems()) != 0 {
		t.Errorf("sandboxes after removal: %v, %v", list.GetItems(), err)
	}

	start = time.Now()
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	t.Logf("Stop: %v", time.Since(start).Round(time.Millisecond))
	assertNothingLeft(t, c, p.config.Linux.CgroupParent)
}

// httpGetEventually GETs url until the server answers (it may not listen
// yet when the container has just started).
func httpGetEventually(t *testing.T, url string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err == nil {
			b, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			if rerr == nil && resp.StatusCode == http.StatusOK {
				return string(b)
			}
			err = fmt.Errorf("%s: %v", resp.Status, rerr)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("GET %s: %v", url, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// assertNothingLeft checks, as a user would with ps, mount and ip link, that
// the stopped containerd left no process, mount, bridge or pod cgroup.
func assertNothingLeft(t *testing.T, c *Containerd, cgroups ...string) {
	t.Helper()
	for _, p := range processes() {
		if strings.Contains(strings.Join(p.argv, " "), c.socket) {
			t.Errorf("process %d is left: %q", p.pid, p.argv)
		}
	}
	if mps, err := mountsUnder(c.Dir()); err != nil || len(mps) > 0 {
		t.Errorf("mounts left under %s: %v %v", c.Dir(), mps, err)
	}
	if linkExists(c.Bridge()) {
		t.Errorf("bridge %s is left", c.Bridge())
	}
	for _, cg := range cgroups {
		for _, root := range cgroupRoots() {
			if _, err := os.Stat(filepath.Join(root, cg)); err == nil {
				t.Errorf("cgroup %s is left", filepath.Join(root, cg))
			}
		}
	}
}

func TestKillRestartAndStopAfterKill(t *testing.T) {
	c, ref := setup(t)
	rs := c.RuntimeService()
	p := runPod(t, c, "survivor")
	pull(t, c, p, ref)
	sleeper := runContainer(t, c, p, "sleep", ref, "sleep", "forever")
	waitState(t, c, sleeper, runtimeapi.ContainerState_CONTAINER_RUNNING)

	if err := c.Kill(); err != nil {
		t.Fatal(err)
	}
	if c.Running() {
		t.Fatal("containerd runs after Kill")
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	_, err := rs.Version(ctx, &runtimeapi.VersionRequest{})
	cancel()
	if err == nil {
		t.Fatal("the CRI answers after Kill")
	}

	start := time.Now()
	if err := c.Restart(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Logf("Restart after Kill: %v", time.Since(start).Round(time.Millisecond))
	// The container ran on under its shim and containerd found it again.
	waitState(t, c, sleeper, runtimeapi.ContainerState_CONTAINER_RUNNING)

	start = time.Now()
	if err := c.Restart(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Logf("Restart: %v", time.Since(start).Round(time.Millisecond))
	waitState(t, c, sleeper, runtimeapi.ContainerState_CONTAINER_RUNNING)

	// Stop after Kill still removes the sandbox: it starts containerd again.
	if err := c.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	assertNothingLeft(t, c, p.config.Linux.CgroupParent)
}

// Two instances at once get their own networks; each one's pods stay
// reachable while the other stops. The second one has a second handler.
func TestTwoInstances(t *testing.T) {
	imgs := setupImages(t)
	var urls []string
	var cs []*Containerd
	for i, name := range []string{"first", "second"} {
		var c *Containerd
		var p pod
		if i == 0 {
			c = startContainerd(t, imgs)
			p = runPod(t, c, name)
		} else {
			c = startContainerd(t, imgs, DefaultHandler, "other")
			p = runPodWith(t, c, name, "other")
			cfg := &runtimeapi.PodSandboxConfig{Metadata: &runtimeapi.PodSandboxMetadata{Name: "unknown", Namespace: "default", Uid: randomUID()}}
			_, err := c.RuntimeService().RunPodSandbox(t.Context(), &runtimeapi.RunPodSandboxRequest{Config: cfg, RuntimeHandler: "unknown"})
			if err == nil || !strings.Contains(err.Error(), `no runtime for "unknown"`) {
				t.Errorf("RunPodSandbox with an unknown handler: %v", err)
			}
		}
		pull(t, c, p, imgs.ctrtest)
		waitState(t, c, runContainer(t, c, p, "serve", imgs.ctrtest), runtimeapi.ContainerState_CONTAINER_RUNNING)
		urls = append(urls, "http://"+netip.AddrPortFrom(podIP(t, c, p), 8080).String()+"/"+name)
		cs = append(cs, c)
		if i == 1 && (cs[0].Subnet().Overlaps(c.Subnet()) || cs[0].Bridge() == c.Bridge()) {
			t.Fatalf("two instances share a network: %s on %s and %s on %s", cs[0].Subnet(), cs[0].Bridge(), c.Subnet(), c.Bridge())
		}
	}
	forward := readFile(ipForward)
	t.Logf("ip_forward while both run: %s", strings.TrimSpace(forward))
	for i, name := range []string{"first", "second"} {
		if got := httpGetEventually(t, urls[i]); got != name+" /"+name+"\n" {
			t.Errorf("GET %s = %q", urls[i], got)
		}
	}
	if err := cs[0].Stop(); err != nil {
		t.Fatal(err)
	}
	if got := httpGetEventually(t, urls[1]); got != "second /second\n" {
		t.Errorf("after the first stopped, GET %s = %q", urls[1], got)
	}
	if readFile(ipForward) != forward {
		t.Errorf("stopping the first instance changed %s while the second runs", ipForward)
	}
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// A containerd that is installed but does not come up fails Start with its
// log; it is not a reason to skip.
func TestStartFailsWhenContainerdDoesNotComeUp(t *testing.T) {
	if testing.Short() {
		t.Skip("starts containerd")
	}
	if err := Check(); err != nil && os.Getenv(RequireEnv) == "" {
		t.Skip(err)
	}
	dir := t.TempDir()
	// containerd cannot create its root where a file is.
	if err := os.WriteFile(filepath.Join(dir, "root"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Start(t.Context(), Options{Dir: dir, RegistryHost: "127.0.0.1:1", PauseImage: "127.0.0.1:1/pause:none", ReadyTimeout: 20 * time.Second})
	if err == nil {
		c.Stop()
		t.Fatal("Start succeeded")
	}
	t.Log(err)
	if errors.Is(err, ErrUnavailable) {
		t.Errorf("the error wraps ErrUnavailable, so tests would skip: %v", err)
	}
	if !strings.Contains(err.Error(), "exited") || !strings.Contains(err.Error(), filepath.Join(dir, "containerd.log")) {
		t.Errorf("the error does not say that containerd exited and where its log is: %v", err)
	}
}

func TestDirServesOneInstance(t *testing.T) {
	c, _ := setup(t)
	_, err := Start(t.Context(), Options{Dir: c.Dir(), RegistryHost: "127.0.0.1:1", PauseImage: "127.0.0.1:1/pause:none"})
	if err == nil || !strings.Contains(err.Error(), "another running instance") {
		t.Fatalf("a second Start on the same Dir = %v, want a refusal", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if _, err := c.RuntimeService().Version(ctx, &runtimeapi.VersionRequest{}); err != nil {
		t.Errorf("the first instance no longer answers: %v", err)
	}
}

func TestClaimNetworkGivesEachInstanceItsOwn(t *testing.T) {
	a, err := claimNetwork()
	if err != nil {
		t.Fatal(err)
	}
	defer a.release() //nolint:errcheck
	b, err := claimNetwork()
	if err != nil {
		t.Fatal(err)
	}
	defer b.release() //nolint:errcheck
	if a.Subnet.Overlaps(b.Subnet) || a.Bridge == b.Bridge || a.Name == b.Name {
		t.Errorf("two claims share a network: %+v and %+v", a, b)
	}
	hostNets, err := hostPrefixes()
	if err != nil {
		t.Fatal(err)
	}
	if overlapsAny(a.Subnet, hostNets) {
		t.Errorf("%s overlaps a network of the host (%v)", a.Subnet, hostNets)
	}
	// A network stays claimed until it is released.
	a.release()
	again, err := claimNetwork()
	if err != nil {
		t.Fatal(err)
	}
	defer again.release() //nolint:errcheck
	if again.Subnet == b.Subnet {
		t.Errorf("%s was claimed twice", b.Subnet)
	}
}

func TestConfigKeepsTheInstanceUnderItsDir(t *testing.T) {
	cfg := configTOML(configParams{
		Root: "/d/root", State: "/d/state", Socket: "/d/containerd.sock", Opt: "/d/opt",
		PauseImage: "127.0.0.1:5000/pause:x", RegistryConfigDir: "/d/certs.d",
		CNIBinDir: "/usr/lib/cni", CNIConfDir: "/d/cni/net.d", Runc: "/usr/sbin/runc", RuncRoot: "/d/state/runc",
		Handlers: []string{"runc", "other"},
	})
	for _, want := range []string{
		`root = "/d/root"`,
		`state = "/d/state"`,
		`address = "/d/containerd.sock"`,
		`sandbox_image = "127.0.0.1:5000/pause:x"`,
		`restrict_oom_score_adj = true`,
		`netns_mounts_under_state_dir = true`,
		`default_runtime_name = "runc"`,
		`[plugins."io.containerd.grpc.v1.cri".containerd.runtimes."other"]`,
		`Root = "/d/state/runc"`,
		`conf_dir = "/d/cni/net.d"`,
		`config_path = "/d/certs.d"`,
	} {
		if !strings.Contains(cfg, want) {
			t.Errorf("config lacks %s:\n%s", want, cfg)
		}
	}
	hosts := hostsTOML("127.0.0.1:5000")
	for _, want := range []string{`server = "http://127.0.0.1:5000"`, `[host."http://127.0.0.1:5000"]`} {
		if !strings.Contains(hosts, want) {
			t.Errorf("hosts.toml lacks %s:\n%s", want, hosts)
		}
	}
}
