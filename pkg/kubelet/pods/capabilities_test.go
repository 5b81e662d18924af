package pods

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/krustlet/krustlet-go/pkg/kubelet/runtimeclass"
	"github.com/krustlet/krustlet-go/pkg/provider"
)

// sandboxProvider is a fake provider with the capabilities of a CRI
// runtime: a sandbox per pod, logs its runtime writes, runs that outlive
// the agent.
type sandboxProvider struct {
	*fakeProvider

	mu        sync.Mutex
	startErrs []error // returned, first to last, by the next StartPods
	started   []provider.PodConfig
	stopped   []string
	removed   []string
	alive     []provider.RunningContainer // listed by ListContainers
	adopted   map[string]*fakeContainer
	orphans   []string // sandboxes of pods deleted while the agent was down
}

var (
	_ provider.PodSandboxer = (*sandboxProvider)(nil)
	_ provider.RuntimeLogs  = (*sandboxProvider)(nil)
	_ provider.Adopter      = (*sandboxProvider)(nil)
)

func newSandboxProvider() *sandboxProvider {
	return &sandboxProvider{fakeProvider: newFakeProvider(), adopted: map[string]*fakeContainer{}}
}

func (p *sandboxProvider) StartPod(_ context.Context, cfg provider.PodConfig) (*provider.PodSandbox, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.startErrs) > 0 {
		err := p.startErrs[0]
		p.startErrs = p.startErrs[1:]
		return nil, err
	}
	p.started = append(p.started, cfg)
	return &provider.PodSandbox{ID: "sb-" + string(cfg.Pod.UID), IPs: []net.IP{net.ParseIP("10.88.0.5"), net.ParseIP("fd00::5")}}, nil
}

func (p *sandboxProvider) StopPod(_ context.Context, uid string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopped = append(p.stopped, uid)
	return nil
}

func (p *sandboxProvider) RemovePod(_ context.Context, uid string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.removed = append(p.removed, uid)
	return nil
}

func (p *sandboxProvider) ListPods(context.Context) ([]string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var uids []string
	for _, c := range p.started {
		if !slices.Contains(p.removed, string(c.Pod.UID)) {
			uids = append(uids, string(c.Pod.UID))
		}
	}
	return append(uids, p.orphans...), nil
}

func (p *sandboxProvider) WritesContainerLogs() {}

func (p *sandboxProvider) ListContainers(context.Context) ([]provider.RunningContainer, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.alive), nil
}

func (p *sandboxProvider) Adopt(_ context.Context, id string) (provider.Container, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := &fakeContainer{cfg: provider.ContainerConfig{ID: id}, done: make(chan struct{})}
	p.adopted[id] = c
	return c, nil
}

func (p *sandboxProvider) calls() (started, stopped, removed int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.started), len(p.stopped), len(p.removed)
}

// classes is a RuntimeClass store a test can change.
type classes struct {
	mu sync.Mutex
	m  map[string]string // class → handler
}

func (c *classes) get(name string) (*nodev1.RuntimeClass, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	h, ok := c.m[name]
	if !ok {
		return nil, apierrors.NewNotFound(nodev1.Resource("runtimeclasses"), name)
	}
	return &nodev1.RuntimeClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Handler: h}, nil
}

func (c *classes) set(name, handler string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[name] = handler
}

// withRuntimes routes pods over two providers: h.prov ("fake", the default)
// and sb ("sandboxed", handler "sandboxed").
func withRuntimes(sb *sandboxProvider, cls *classes) harnessOption {
	return func(h *harness, c *Config) {
		r, err := runtimeclass.NewRouter([]runtimeclass.Runtime{{Name: "fake", Provider: h.prov}, {Name: "sandboxed", Provider: sb}},
			map[string]string{"fake": "fake", "sandboxed": "sandboxed"}, cls.get)
		if err != nil {
			panic(err)
		}
		c.Router = r
	}
}

func withClass(name string) func(*v1.Pod) {
	return func(p *v1.Pod) { p.Spec.RuntimeClassName = ptr.To(name) }
}

func TestRoutingByRuntimeClass(t *testing.T) {
	sb := newSandboxProvider()
	cls := &classes{m: map[string]string{"wasm": "fake", "containers": "sandboxed"}}
	h := newHarness(t, withRuntimes(sb, cls))
	plain := newPod("plain", v1.RestartPolicyAlways)
	wasm := newPod("wasm", v1.RestartPolicyAlways, withClass("wasm"))
	ctr := newPod("ctr", v1.RestartPolicyAlways, withClass("containers"))
	h.start(plain, wasm, ctr)
	for _, p := range []*v1.Pod{plain, wasm, ctr} {
		h.waitRunning(p.UID, "app", 0)
	}
	h.prov.mu.Lock()
	var onFake []string
	for _, cfg := range h.prov.starts {
		onFake = append(onFake, cfg.PodName)
	}
	h.prov.mu.Unlock()
	slices.Sort(onFake)
	var onSandbox []string
	sb.fakeProvider.mu.Lock()
	for _, cfg := range sb.fakeProvider.starts {
		onSandbox = append(onSandbox, cfg.PodName)
	}
	sb.fakeProvider.mu.Unlock()
	if !slices.Equal(onFake, []string{"plain", "wasm"}) || !slices.Equal(onSandbox, []string{"ctr"}) {
		t.Fatalf("default provider ran %v, sandboxed ran %v", onFake, onSandbox)
	}
	for _, p := range []*v1.Pod{plain, wasm, ctr} {
		route, ok := h.mgr.Route(p.UID)
		want := map[string]string{"plain": "fake", "wasm": "fake", "ctr": "sandboxed"}[p.Name]
		if !ok || route.Runtime.Name != want {
			t.Errorf("Route(%s) = %+v, %v; want %s", p.Name, route, ok, want)
		}
	}
}

func TestUnknownRuntimeClassStaysPending(t *testing.T) {
	sb := newSandboxProvider()
	cls := &classes{m: map[string]string{"gvisor": "runsc"}}
	h := newHarness(t, withRuntimes(sb, cls))
	missing := newPod("missing", v1.RestartPolicyAlways, withClass("later"))
	unserved := newPod("unserved", v1.RestartPolicyAlways, withClass("gvisor"))
	h.start(missing, unserved)
	h.waitEvents(`Warning FailedCreatePodSandBox Failed to create pod sandbox: RuntimeClass not found: "later"`)
	h.waitEvents(`Warning FailedCreatePodSandBox Failed to create pod sandbox: runtime handler not served by this node: RuntimeClass "gvisor" has handler "runsc"; this node serves fake, sandboxed`)
	for _, p := range []*v1.Pod{missing, unserved} {
		s := h.waitStatus(p.UID, "pending with the container creating", func(s v1.PodStatus) error {
			cs := containerStatus(s, "app")
			if s.Phase != v1.PodPending || cs.State.Waiting == nil || cs.State.Waiting.Reason != "ContainerCreating" {
				return fmt.Errorf("%s", describe(s))
			}
			return nil
		})
		if c := condition(s, v1.PodReadyToStartContainers); c.Status != v1.ConditionFalse {
			t.Errorf("%s: PodReadyToStartContainers = %s", p.Name, c.Status)
		}
	}
	if n := h.prov.startCount(); n != 0 {
		t.Fatalf("%d containers started without a provider", n)
	}
	// Retried with back-off: the class appears, and the next try runs the
	// pod on the provider it names.
	cls.set("later", "sandboxed")
	h.clock.advance(t, 10*time.Second)
	h.waitRunning(missing.UID, "app", 0)
	if started, _, _ := sb.calls(); started != 1 {
		t.Fatalf("sandboxes started = %d", started)
	}
	var tries int
	for _, e := range h.allEvents() {
		if strings.Contains(e, `"gvisor"`) {
			tries++
		}
	}
	if tries < 2 {
		t.Errorf("unserved handler tried %d times, want a retry after the back-off", tries)
	}
}

func TestPodSandbox(t *testing.T) {
	sb := newSandboxProvider()
	sb.startErrs = []error{fmt.Errorf("%w: network plugin not ready", provider.ErrCreatePodSandbox)}
	cls := &classes{m: map[string]string{"containers": "sandboxed"}}
	h := newHarness(t, withRuntimes(sb, cls))
	pod := newPod("sandboxed", v1.RestartPolicyNever, withClass("containers"))
	h.start(pod)
	h.waitEvents("Warning FailedCreatePodSandBox Failed to create pod sandbox: pod sandbox could not be created: network plugin not ready")
	h.clock.advance(t, 10*time.Second)
	h.waitRunning(pod.UID, "app", 0)
	s := h.current(pod)
	var ips []string
	for _, ip := range s.PodIPs {
		ips = append(ips, ip.IP)
	}
	if s.PodIP != "10.88.0.5" || !slices.Equal(ips, []string{"10.88.0.5", "fd00::5"}) || s.HostIP != "192.0.2.10" {
		t.Errorf("podIP %s podIPs %v hostIP %s", s.PodIP, ips, s.HostIP)
	}
	run := sb.fakeProvider.run(t, "app", 0)
	if run.cfg.Pod == nil || run.cfg.Pod.ID != "sb-"+string(pod.UID) {
		t.Errorf("ContainerConfig.Pod = %+v", run.cfg.Pod)
	}
	// The runtime writes the log; the core hands it no streams but the path.
	if run.cfg.Stdout != nil || run.cfg.Stderr != nil || !strings.HasSuffix(run.cfg.LogPath, "/app/0.log") {
		t.Errorf("log: stdout %v stderr %v path %q", run.cfg.Stdout, run.cfg.Stderr, run.cfg.LogPath)
	}
	sb.mu.Lock()
	logDir := sb.started[0].LogDirectory
	sb.mu.Unlock()
	if !strings.HasPrefix(run.cfg.LogPath, logDir+"/") {
		t.Errorf("LogPath %q is not under the sandbox's LogDirectory %q", run.cfg.LogPath, logDir)
	}
	run.exit(0)
	h.waitPhase(pod.UID, v1.PodSucceeded)
	waitFor(t, "the sandbox stopped", func() error {
		if _, stopped, _ := sb.calls(); stopped == 0 {
			return errors.New("not stopped")
		}
		return nil
	})
	if err := h.client.CoreV1().Pods(pod.Namespace).Delete(context.Background(), pod.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the sandbox removed", func() error {
		if _, _, removed := sb.calls(); removed != 1 {
			return fmt.Errorf("removed %d times", removed)
		}
		return nil
	})
}

func TestAdoptionAfterAgentRestart(t *testing.T) {
	sb := newSandboxProvider()
	cls := &classes{m: map[string]string{"containers": "sandboxed"}}
	h := newHarness(t, withRuntimes(sb, cls))
	started := metav1.NewTime(time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC))
	pod := newPod("adopted", v1.RestartPolicyAlways, withClass("containers"), func(p *v1.Pod) {
		p.Status.Phase = v1.PodRunning
		p.Status.StartTime = &started
		p.Status.ContainerStatuses = []v1.ContainerStatus{{
			Name: "app", Image: testImage, ImageID: testImage + "@sha256:0123", ContainerID: "fake://old",
			RestartCount: 2, Ready: true,
			State: v1.ContainerState{Running: &v1.ContainerStateRunning{StartedAt: started}},
			LastTerminationState: v1.ContainerState{Terminated: &v1.ContainerStateTerminated{
				ExitCode: 1, Reason: "Error", ContainerID: "fake://older"}},
		}}
	})
	id := runID(pod.UID, "app", 2)
	sb.alive = []provider.RunningContainer{{ID: id, StartedAt: started.Time}}
	h.start(pod)
	cs := h.waitRunning(pod.UID, "app", 2)
	if !cs.State.Running.StartedAt.Equal(&started) {
		t.Errorf("startedAt = %v, want the adopted run's %v", cs.State.Running.StartedAt, started)
	}
	if last := cs.LastTerminationState.Terminated; last == nil || last.ExitCode != 1 {
		t.Errorf("lastState = %+v, want the exit before the restart", cs.LastTerminationState.Terminated)
	}
	if n := sb.fakeProvider.startCount(); n != 0 {
		t.Fatalf("%d new runs started beside the adopted one", n)
	}
	// The adopted run ends: the restart policy applies as to any run.
	sb.mu.Lock()
	adopted := sb.adopted[id]
	sb.mu.Unlock()
	adopted.exit(2)
	h.waitRunning(pod.UID, "app", 3)
	if run := sb.fakeProvider.run(t, "app", 0); !strings.HasSuffix(run.cfg.ID, "_app_3") {
		t.Errorf("next run ID = %q, want run 3", run.cfg.ID)
	}
}

func TestOrphanSandboxesRemovedAtStart(t *testing.T) {
	sb := newSandboxProvider()
	sb.orphans = []string{"gone-uid"}
	cls := &classes{m: map[string]string{"containers": "sandboxed"}}
	h := newHarness(t, withRuntimes(sb, cls))
	live := newPod("live", v1.RestartPolicyAlways, withClass("containers"))
	h.start(live)
	h.waitRunning(live.UID, "app", 0)
	// Orphans are removed once the pods that exist have their workers,
	// which may be after the live pod runs.
	waitFor(t, "the orphan sandbox removed", func() error {
		sb.mu.Lock()
		defer sb.mu.Unlock()
		if !slices.Equal(sb.removed, []string{"gone-uid"}) {
			return fmt.Errorf("removed sandboxes %v, want only the deleted pod's", sb.removed)
		}
		return nil
	})
}
