package pods

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/flowcontrol"
	"k8s.io/klog/v2"

	"github.com/krustlet/krustlet-go/pkg/kubelet/logs"
	"github.com/krustlet/krustlet-go/pkg/kubelet/runtimeclass"
	"github.com/krustlet/krustlet-go/pkg/kubelet/status"
	"github.com/krustlet/krustlet-go/pkg/provider"
)

const (
	testNode  = "node1"
	testImage = "registry.example/app:v1"
)

// harness runs a Manager and a status manager against a fake clientset, as
// the kubelet wires them, with a fake provider and a fake clock.
type harness struct {
	t        *testing.T
	clock    *fakeClock
	client   *fake.Clientset
	recorder *record.FakeRecorder
	prov     *fakeProvider
	vols     *fakeVolumes
	builder  *fakeBuilder
	status   *status.Manager
	mgr      *Manager
	metrics  *prometheus.Registry
	dataDir  string

	nodeMu sync.Mutex
	node   *v1.Node

	eventsMu sync.Mutex
	events   []string
}

type harnessOption func(*harness, *Config)

func newHarness(t *testing.T, opts ...harnessOption) *harness {
	t.Helper()
	h := &harness{
		t:        t,
		clock:    newFakeClock(),
		client:   fake.NewClientset(),
		recorder: record.NewFakeRecorder(10000),
		prov:     newFakeProvider(),
		vols:     &fakeVolumes{},
		builder:  &fakeBuilder{},
		metrics:  prometheus.NewRegistry(),
		dataDir:  t.TempDir(),
		node: &v1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: testNode, Labels: map[string]string{"kubernetes.io/arch": "wasm32-wasi"}},
			Status: v1.NodeStatus{Allocatable: v1.ResourceList{
				v1.ResourceCPU:    resource.MustParse("2"),
				v1.ResourceMemory: resource.MustParse("4Gi"),
				v1.ResourcePods:   resource.MustParse("110"),
			}},
		},
	}
	h.status = status.NewManager(h.client, func(ns, name string) *v1.Pod { return h.mgr.Pod(ns, name) })
	cfg := Config{
		NodeName:    testNode,
		NodeIPs:     []net.IP{net.ParseIP("192.0.2.10")},
		DataDir:     h.dataDir,
		Router:      routeAllTo(h.prov),
		Recorder:    h.recorder,
		Status:      h.status,
		Volumes:     h.vols,
		Containers:  h.builder,
		Node:        h.getNode,
		LogMaxSize:  1 << 20,
		LogMaxFiles: 2,
		Clock:       h.clock,
		Metrics:     h.metrics,
		Backoff: func() *flowcontrol.Backoff {
			return flowcontrol.NewFakeBackOff(10*time.Second, 300*time.Second, h.clock.FakeClock)
		},
	}
	for _, o := range opts {
		o(h, &cfg)
	}
	var err error
	if h.mgr, err = NewManager(cfg); err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *harness) getNode() (*v1.Node, error) {
	h.nodeMu.Lock()
	defer h.nodeMu.Unlock()
	return h.node.DeepCopy(), nil
}

func (h *harness) setNode(f func(*v1.Node)) {
	h.nodeMu.Lock()
	defer h.nodeMu.Unlock()
	f(h.node)
}

// start stores pods in the API, then runs the informer, the status manager
// and the pod manager until the test ends.
func (h *harness) start(pods ...*v1.Pod) {
	h.t.Helper()
	for _, p := range pods {
		if err := h.client.Tracker().Add(p); err != nil {
			h.t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(klog.NewContext(context.Background(), klog.Logger{}))
	factory := informers.NewSharedInformerFactory(h.client, 0)
	informer := factory.Core().V1().Pods().Informer()
	factory.Start(ctx.Done())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := h.status.Run(ctx, 2); err != nil {
			h.t.Errorf("status manager: %v", err)
		}
	})
	wg.Go(func() {
		if err := h.mgr.Run(ctx, informer); err != nil {
			h.t.Errorf("pod manager: %v", err)
		}
	})
	h.t.Cleanup(func() {
		cancel()
		wg.Wait()
		factory.Shutdown()
	})
}

// status waits until the status manager holds a status of pod for which
// check returns nil, and returns it.
func (h *harness) waitStatus(uid types.UID, what string, check func(s v1.PodStatus) error) v1.PodStatus {
	h.t.Helper()
	var s v1.PodStatus
	waitFor(h.t, what, func() error {
		var ok bool
		if s, ok = h.status.Status(uid); !ok {
			return fmt.Errorf("no status")
		}
		if err := check(s); err != nil {
			return fmt.Errorf("%w\nstatus: %s", err, describe(s))
		}
		return nil
	})
	return s
}

// current returns the status last set for pod.
func (h *harness) current(pod *v1.Pod) v1.PodStatus {
	s, _ := h.status.Status(pod.UID)
	return s
}

// waitPhase waits for the pod's phase.
func (h *harness) waitPhase(uid types.UID, phase v1.PodPhase) v1.PodStatus {
	h.t.Helper()
	return h.waitStatus(uid, "phase "+string(phase), func(s v1.PodStatus) error {
		if s.Phase != phase {
			return fmt.Errorf("phase %s", s.Phase)
		}
		return nil
	})
}

// waitWaiting waits until container name waits with reason.
func (h *harness) waitWaiting(uid types.UID, name, reason string) v1.ContainerStatus {
	h.t.Helper()
	var cs v1.ContainerStatus
	h.waitStatus(uid, name+" waiting with "+reason, func(s v1.PodStatus) error {
		cs = containerStatus(s, name)
		if cs.State.Waiting == nil || cs.State.Waiting.Reason != reason {
			return fmt.Errorf("%s is %s", name, stateOf(cs))
		}
		return nil
	})
	return cs
}

// waitRunning waits until container name runs with restartCount.
func (h *harness) waitRunning(uid types.UID, name string, restarts int32) v1.ContainerStatus {
	h.t.Helper()
	var cs v1.ContainerStatus
	h.waitStatus(uid, fmt.Sprintf("%s running with %d restarts", name, restarts), func(s v1.PodStatus) error {
		cs = containerStatus(s, name)
		if cs.State.Running == nil || cs.RestartCount != restarts {
			return fmt.Errorf("%s is %s with %d restarts", name, stateOf(cs), cs.RestartCount)
		}
		return nil
	})
	return cs
}

// apiPod returns the pod as stored in the fake API.
func (h *harness) apiPod(pod *v1.Pod) (*v1.Pod, error) {
	return h.client.CoreV1().Pods(pod.Namespace).Get(context.Background(), pod.Name, metav1.GetOptions{})
}

// waitAPIPhase waits until the API has the pod in phase.
func (h *harness) waitAPIPhase(pod *v1.Pod, phase v1.PodPhase) {
	h.t.Helper()
	waitFor(h.t, "API phase "+string(phase), func() error {
		p, err := h.apiPod(pod)
		if err != nil {
			return err
		}
		if p.Status.Phase != phase {
			return fmt.Errorf("API phase %s", p.Status.Phase)
		}
		return nil
	})
}

// update changes the pod in the fake API (the informer delivers it).
func (h *harness) update(pod *v1.Pod, f func(*v1.Pod)) {
	h.t.Helper()
	cur, err := h.apiPod(pod)
	if err != nil {
		h.t.Fatal(err)
	}
	f(cur)
	if _, err := h.client.CoreV1().Pods(pod.Namespace).Update(context.Background(), cur, metav1.UpdateOptions{}); err != nil {
		h.t.Fatal(err)
	}
}

// allEvents returns the events recorded so far, as "Type Reason Message".
func (h *harness) allEvents() []string {
	h.eventsMu.Lock()
	defer h.eventsMu.Unlock()
	for {
		select {
		case e := <-h.recorder.Events:
			h.events = append(h.events, e)
		default:
			return slices.Clone(h.events)
		}
	}
}

// waitEvents waits until the events include want in this order (others may
// come in between) and returns all events.
func (h *harness) waitEvents(want ...string) []string {
	h.t.Helper()
	var got []string
	waitFor(h.t, "events", func() error {
		got = h.allEvents()
		if i, missing := inOrder(got, want); missing {
			return fmt.Errorf("missing %q after %d matched in:\n  %s", want[i], i, strings.Join(got, "\n  "))
		}
		return nil
	})
	return got
}

// inOrder reports the first of want that does not follow the ones before it
// in got, each matched as a prefix.
func inOrder(got, want []string) (int, bool) {
	i := 0
	for _, g := range got {
		if i < len(want) && strings.HasPrefix(g, want[i]) {
			i++
		}
	}
	return i, i < len(want)
}

// reasons returns the reasons of events, in order.
func reasons(events []string) []string {
	var out []string
	for _, e := range events {
		if f := strings.Fields(e); len(f) > 1 {
			out = append(out, f[1])
		}
	}
	return out
}

// patches returns the status patches sent to the API, in order.
func (h *harness) patches() []string {
	var out []string
	for _, a := range h.client.Actions() {
		if p, ok := a.(k8stesting.PatchAction); ok && a.GetSubresource() == "status" {
			out = append(out, string(p.GetPatch()))
		}
	}
	return out
}

func (h *harness) logDir(pod *v1.Pod, container string) string {
	return logs.ContainerDir(filepath.Join(h.dataDir, "logs", "pods"), pod.Namespace, pod.Name, string(pod.UID), container)
}

func (h *harness) hasWorker(uid types.UID) bool {
	h.mgr.mu.Lock()
	defer h.mgr.mu.Unlock()
	_, ok := h.mgr.workers[uid]
	return ok
}

// newPod returns a pod bound to the test node with one container "app".
func newPod(name string, policy v1.RestartPolicy, mutate ...func(*v1.Pod)) *v1.Pod {
	p := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: "default", UID: types.UID(name + "-uid"),
			CreationTimestamp: metav1.NewTime(time.Date(2026, 3, 1, 11, 0, 0, 0, time.UTC)),
		},
		Spec: v1.PodSpec{
			NodeName:      testNode,
			RestartPolicy: policy,
			Containers:    []v1.Container{{Name: "app", Image: testImage}},
		},
		Status: v1.PodStatus{Phase: v1.PodPending, Conditions: []v1.PodCondition{{Type: v1.PodScheduled, Status: v1.ConditionTrue}}},
	}
	for _, m := range mutate {
		m(p)
	}
	return p
}

func containerStatus(s v1.PodStatus, name string) v1.ContainerStatus {
	for _, l := range [][]v1.ContainerStatus{s.InitContainerStatuses, s.ContainerStatuses} {
		for _, c := range l {
			if c.Name == name {
				return c
			}
		}
	}
	return v1.ContainerStatus{}
}

func condition(s v1.PodStatus, t v1.PodConditionType) v1.PodCondition {
	for _, c := range s.Conditions {
		if c.Type == t {
			return c
		}
	}
	return v1.PodCondition{}
}

func stateOf(cs v1.ContainerStatus) string {
	switch {
	case cs.State.Running != nil:
		return "running"
	case cs.State.Waiting != nil:
		return "waiting(" + cs.State.Waiting.Reason + ": " + cs.State.Waiting.Message + ")"
	case cs.State.Terminated != nil:
		return fmt.Sprintf("terminated(%d %s)", cs.State.Terminated.ExitCode, cs.State.Terminated.Reason)
	}
	return "unknown"
}

func describe(s v1.PodStatus) string {
	var b strings.Builder
	fmt.Fprintf(&b, "phase=%s reason=%q", s.Phase, s.Reason)
	for _, l := range [][]v1.ContainerStatus{s.InitContainerStatuses, s.ContainerStatuses} {
		for _, c := range l {
			fmt.Fprintf(&b, " %s=%s/restarts=%d", c.Name, stateOf(c), c.RestartCount)
		}
	}
	return b.String()
}

// routeAllTo routes every pod to p, as a node with one provider does.
func routeAllTo(p provider.Provider) Router {
	r, err := runtimeclass.NewRouter([]runtimeclass.Runtime{{Name: "fake", Provider: p}}, map[string]string{"fake": "fake"}, nil)
	if err != nil {
		panic(err)
	}
	return r
}
