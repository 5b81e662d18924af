package node

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/klog/v2/ktesting"
	testingclock "k8s.io/utils/clock/testing"
)

const testNode = "edge-1"

var (
	t0        = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	nodesGVR  = schema.GroupVersionResource{Version: "v1", Resource: "nodes"}
	errServer = apierrors.NewInternalError(errors.New("etcd is sad"))
)

// readiness is the error list ReadyCondition reads, changed by tests
// while the controller runs.
type readiness struct {
	mu   sync.Mutex
	errs []error
}

func (r *readiness) set(errs ...error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = errs
}

func (r *readiness) get() []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.errs
}

func newTestStatusController(client *fake.Clientset, clk *testingclock.FakeClock, ready *readiness) *StatusController {
	now := func() metav1.Time { return metav1.NewTime(clk.Now()) }
	return &StatusController{
		Client:   client,
		NodeName: testNode,
		Setters: []Setter{
			DaemonEndpoints(10250),
			ReadyCondition(now, ready.get),
		},
		Clock:           clk,
		UpdateFrequency: 10 * time.Second,
		ReportFrequency: time.Minute,
		Register:        func(context.Context) error { return errors.New("unexpected Register") },
	}
}

// countActions counts the client's actions of verb on nodes, with
// subresource sub ("" for the object).
func countActions(client *fake.Clientset, verb, sub string) int {
	n := 0
	for _, a := range client.Actions() {
		if a.GetVerb() == verb && a.GetResource().Resource == "nodes" && a.GetSubresource() == sub {
			n++
		}
	}
	return n
}

func storedNode(t *testing.T, client *fake.Clientset) *v1.Node {
	t.Helper()
	obj, err := client.Tracker().Get(nodesGVR, "", testNode)
	if err != nil {
		t.Fatalf("reading node from the tracker: %v", err)
	}
	return obj.(*v1.Node)
}

func readyCondition(t *testing.T, n *v1.Node) v1.NodeCondition {
	t.Helper()
	for _, c := range n.Status.Conditions {
		if c.Type == v1.NodeReady {
			return c
		}
	}
	t.Fatalf("node has no Ready condition: %+v", n.Status.Conditions)
	return v1.NodeCondition{}
}

// getResourceVersion is the resourceVersion a get action asks for.
func getResourceVersion(a k8stesting.Action) string {
	g, ok := a.(interface{ GetGetOptions() metav1.GetOptions })
	if !ok {
		return ""
	}
	return g.GetGetOptions().ResourceVersion
}

// runHarness runs a StatusController and holds each sync once it has read
// the Node, before it reads the clock (in a first setter, or in Register
// when the Node is gone), until the test lets it go. The test thus knows
// which syncs are complete, and the time each one runs at. It holds them
// outside the fake clientset, whose lock is taken while a reactor runs.
type runHarness struct {
	t       *testing.T
	clock   *testingclock.FakeClock
	ctrl    *StatusController
	syncs   chan struct{}
	proceed chan struct{}
	cancel  context.CancelFunc
	done    chan error
}

func startRun(t *testing.T, ctrl *StatusController, clk *testingclock.FakeClock) *runHarness {
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	h := &runHarness{t: t, clock: clk, ctrl: ctrl, syncs: make(chan struct{}), proceed: make(chan struct{}), cancel: cancel, done: make(chan error, 1)}
	hold := func() {
		select {
		case h.syncs <- struct{}{}:
		case <-ctx.Done():
			return
		}
		select {
		case <-h.proceed:
		case <-ctx.Done():
		}
	}
	ctrl.Setters = append([]Setter{func(context.Context, *v1.Node) error { hold(); return nil }}, ctrl.Setters...)
	register := ctrl.Register
	ctrl.Register = func(ctx context.Context) error { hold(); return register(ctx) }
	go func() { h.done <- ctrl.Run(ctx) }()
	t.Cleanup(h.stop)
	h.waitSync()
	return h
}

// waitSync waits until a sync is held.
func (h *runHarness) waitSync() {
	h.t.Helper()
	select {
	case <-h.syncs:
	case <-time.After(10 * time.Second):
		h.t.Fatal("no node status sync started")
	}
}

// after moves the clock by d (a multiple of the update frequency, so that
// the ticker fires once), lets the held sync run at that time and waits
// until it is complete, which is when the sync the tick started is held.
// With d = 0 the next sync is started by Trigger instead.
func (h *runHarness) after(d time.Duration) {
	h.t.Helper()
	if d > 0 {
		h.clock.Step(d)
	} else {
		h.ctrl.Trigger()
	}
	h.proceed <- struct{}{}
	h.waitSync()
}

func (h *runHarness) stop() {
	h.cancel()
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Errorf("Run returned %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		h.t.Error("Run did not return after the context ended")
	}
	h.done <- nil // stop is idempotent
}

func TestStatusControllerRun(t *testing.T) {
	client := fake.NewClientset(&v1.Node{ObjectMeta: metav1.ObjectMeta{Name: testNode}})
	clk := testingclock.NewFakeClock(t0)
	ready := &readiness{}
	h := startRun(t, newTestStatusController(client, clk, ready), clk)
	patches := func() int { return countActions(client, "patch", "status") }

	// Sync 1 at t0 finds an empty status: it patches.
	h.after(0)
	if got := patches(); got != 1 {
		t.Fatalf("after the first sync: %d status patches, want 1", got)
	}
	n := storedNode(t, client)
	if c := readyCondition(t, n); c.Status != v1.ConditionTrue || !c.LastHeartbeatTime.Time.Equal(t0) || !c.LastTransitionTime.Time.Equal(t0) {
		t.Errorf("Ready after the first sync: %+v", c)
	}
	if n.Status.DaemonEndpoints.KubeletEndpoint.Port != 10250 {
		t.Errorf("daemon endpoint %d, want 10250", n.Status.DaemonEndpoints.KubeletEndpoint.Port)
	}

	// At t0+10s only the heartbeat would change: no patch.
	h.after(10 * time.Second)
	if got := patches(); got != 1 {
		t.Fatalf("after a heartbeat-only sync: %d status patches, want still 1", got)
	}

	// At t0+20s Ready turns False: patch at once.
	ready.set(errors.New("runtime down"))
	h.after(10 * time.Second)
	if got := patches(); got != 2 {
		t.Fatalf("after a status change: %d status patches, want 2", got)
	}
	lastChange := t0.Add(20 * time.Second)
	if c := readyCondition(t, storedNode(t, client)); c.Status != v1.ConditionFalse || c.Message != "[runtime down]" || !c.LastTransitionTime.Time.Equal(lastChange) {
		t.Errorf("Ready after the change: %+v", c)
	}

	// At t0+30s … t0+70s nothing changed, and less than the report interval
	// (1 min) passed since the last patch: no patch.
	for range 5 {
		h.after(10 * time.Second)
	}
	if got := patches(); got != 2 {
		t.Fatalf("within the report interval: %d status patches, want still 2", got)
	}

	// At t0+80s the report interval has passed: patch the heartbeat.
	h.after(10 * time.Second)
	if got := patches(); got != 3 {
		t.Fatalf("after the report interval: %d status patches, want 3", got)
	}
	c := readyCondition(t, storedNode(t, client))
	if want := lastChange.Add(time.Minute); !c.LastHeartbeatTime.Time.Equal(want) {
		t.Errorf("heartbeat %v, want %v", c.LastHeartbeatTime, want)
	}
	if !c.LastTransitionTime.Time.Equal(lastChange) {
		t.Errorf("transition %v, want %v (status did not change)", c.LastTransitionTime, lastChange)
	}

	// A large step (the node was suspended) is one sync, which reports.
	h.after(10 * time.Minute)
	if got := patches(); got != 4 {
		t.Fatalf("after a long pause: %d status patches, want 4", got)
	}

	// Trigger syncs at once, without the clock moving.
	ready.set()
	h.after(0)
	if got := patches(); got != 5 {
		t.Fatalf("after Trigger with a change: %d status patches, want 5", got)
	}
	if c := readyCondition(t, storedNode(t, client)); c.Status != v1.ConditionTrue {
		t.Errorf("Ready after Trigger: %+v", c)
	}
	// One read per sync, from the API server's cache; 12 syncs started.
	if got, want := countActions(client, "get", ""), 12; got != want {
		t.Errorf("%d node reads, want %d (one per sync)", got, want)
	}
	for _, a := range client.Actions() {
		if a.GetVerb() == "get" && getResourceVersion(a) != "0" {
			t.Errorf("a first try read with resourceVersion %q, want \"0\"", getResourceVersion(a))
		}
	}
}

func TestStatusControllerRunRegistersWhenNodeIsGone(t *testing.T) {
	client := fake.NewClientset()
	clk := testingclock.NewFakeClock(t0)
	ctrl := newTestStatusController(client, clk, &readiness{})
	var registered int
	ctrl.Register = func(ctx context.Context) error {
		registered++
		_, err := client.CoreV1().Nodes().Create(ctx, &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: testNode}}, metav1.CreateOptions{})
		return err
	}
	h := startRun(t, ctrl, clk)

	// Sync 1 finds no Node: it registers, and does not patch.
	h.after(0)
	if registered != 1 {
		t.Fatalf("Register called %d times, want 1", registered)
	}
	if got := countActions(client, "patch", "status"); got != 0 {
		t.Fatalf("%d status patches after registering, want 0", got)
	}
	// Sync 2 finds the new Node with an empty status and fills it.
	h.after(10 * time.Second)
	if got := countActions(client, "patch", "status"); got != 1 {
		t.Fatalf("%d status patches after the Node came back, want 1", got)
	}
	if registered != 1 {
		t.Errorf("Register called %d times, want 1", registered)
	}
	readyCondition(t, storedNode(t, client))
}

// failN returns a reactor failing the first n calls with err; n < 0 fails
// them all. It counts calls.
func failN(n int, err error, calls *int) k8stesting.ReactionFunc {
	return func(k8stesting.Action) (bool, runtime.Object, error) {
		*calls++
		if n < 0 || *calls <= n {
			return true, nil, err
		}
		return false, nil, nil
	}
}

func TestStatusControllerSyncRetries(t *testing.T) {
	tests := []struct {
		name          string
		verb          string // fails
		failures      int    // -1: always
		err           error
		wantErr       bool
		wantGets      int
		wantPatches   int
		wantRegisters int
		registerErr   error
		deleteNode    bool // when the failure happens
	}{
		{name: "success at once", verb: "get", failures: 0, wantGets: 1, wantPatches: 1},
		{name: "get fails twice, then works", verb: "get", failures: 2, err: errServer, wantGets: 3, wantPatches: 1},
		{name: "get fails four times, then works", verb: "get", failures: 4, err: errServer, wantGets: 5, wantPatches: 1},
		{name: "get always fails: five tries", verb: "get", failures: -1, err: errServer, wantErr: true, wantGets: 5},
		{name: "patch conflicts four times, then works", verb: "patch", failures: 4, err: apierrors.NewConflict(schema.GroupResource{Resource: "nodes"}, testNode, errors.New("changed")), wantGets: 5, wantPatches: 5},
		{name: "patch always fails: five tries", verb: "patch", failures: -1, err: errServer, wantErr: true, wantGets: 5, wantPatches: 5},
		// The Node is deleted between the Get and the patch: the next try's
		// Get finds it gone and registers it again.
		{name: "patch finds the Node gone: register on the next try", verb: "patch", failures: 1, err: apierrors.NewNotFound(schema.GroupResource{Resource: "nodes"}, testNode), deleteNode: true, wantGets: 2, wantPatches: 1, wantRegisters: 1},
		{name: "get finds the Node gone: register", verb: "get", failures: 1, err: apierrors.NewNotFound(schema.GroupResource{Resource: "nodes"}, testNode), wantGets: 1, wantRegisters: 1},
		{name: "registering fails: five tries", verb: "get", failures: -1, err: apierrors.NewNotFound(schema.GroupResource{Resource: "nodes"}, testNode), registerErr: errServer, wantErr: true, wantGets: 5, wantRegisters: 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			client := fake.NewClientset(&v1.Node{ObjectMeta: metav1.ObjectMeta{Name: testNode}})
			var calls int
			client.PrependReactor(tc.verb, "nodes", failN(tc.failures, tc.err, &calls))
			if tc.deleteNode {
				client.PrependReactor(tc.verb, "nodes", func(k8stesting.Action) (bool, runtime.Object, error) {
					return false, nil, client.Tracker().Delete(nodesGVR, "", testNode)
				})
			}
			ctrl := newTestStatusController(client, testingclock.NewFakeClock(t0), &readiness{})
			registers := 0
			ctrl.Register = func(context.Context) error { registers++; return tc.registerErr }

			_, ctx := ktesting.NewTestContext(t)
			err := ctrl.sync(ctx)
			if (err != nil) != tc.wantErr {
				t.Fatalf("sync() error = %v, want error %v", err, tc.wantErr)
			}
			if tc.wantErr && !strings.Contains(err.Error(), "exceeded retry count") {
				t.Errorf("error %q does not say the retries ran out", err)
			}
			if got := countActions(client, "get", ""); got != tc.wantGets {
				t.Errorf("%d gets, want %d", got, tc.wantGets)
			}
			if got := countActions(client, "patch", "status"); got != tc.wantPatches {
				t.Errorf("%d status patches, want %d", got, tc.wantPatches)
			}
			if registers != tc.wantRegisters {
				t.Errorf("Register called %d times, want %d", registers, tc.wantRegisters)
			}
			// Only the first try reads from the API server's cache.
			i := 0
			for _, a := range client.Actions() {
				if a.GetVerb() != "get" {
					continue
				}
				if rv := getResourceVersion(a); (i == 0) != (rv == "0") {
					t.Errorf("get %d has resourceVersion %q", i, rv)
				}
				i++
			}
		})
	}
}

func TestStatusControllerSyncStopsWhenContextEnds(t *testing.T) {
	client := fake.NewClientset()
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	gets := 0
	client.PrependReactor("get", "nodes", func(k8stesting.Action) (bool, runtime.Object, error) {
		gets++
		cancel()
		return true, nil, errServer
	})
	ctrl := newTestStatusController(client, testingclock.NewFakeClock(t0), &readiness{})
	if err := ctrl.sync(ctx); err != nil {
		t.Errorf("sync() = %v, want nil once the context ended", err)
	}
	if gets != 1 {
		t.Errorf("%d gets, want 1: no retry after the context ended", gets)
	}
}

func TestStatusControllerSetterErrorKeepsOthers(t *testing.T) {
	client := fake.NewClientset(&v1.Node{ObjectMeta: metav1.ObjectMeta{Name: testNode}})
	clk := testingclock.NewFakeClock(t0)
	ctrl := newTestStatusController(client, clk, &readiness{})
	ctrl.Setters = append([]Setter{func(context.Context, *v1.Node) error { return errors.New("no capacity") }}, ctrl.Setters...)
	_, ctx := ktesting.NewTestContext(t)
	if err := ctrl.sync(ctx); err != nil {
		t.Fatalf("sync() = %v, want nil: a failing setter does not fail the update", err)
	}
	n := storedNode(t, client)
	if n.Status.DaemonEndpoints.KubeletEndpoint.Port != 10250 {
		t.Errorf("the other setters were not applied: %+v", n.Status)
	}
	readyCondition(t, n)
}

func TestStatusChanged(t *testing.T) {
	base := func() *v1.NodeStatus {
		return &v1.NodeStatus{
			Capacity:  v1.ResourceList{v1.ResourceCPU: resource.MustParse("1")},
			Addresses: []v1.NodeAddress{{Type: v1.NodeHostName, Address: "edge-1"}},
			Conditions: []v1.NodeCondition{
				{Type: v1.NodeReady, Status: v1.ConditionTrue, Reason: "KubeletReady", LastHeartbeatTime: metav1.NewTime(t0), LastTransitionTime: metav1.NewTime(t0)},
				{Type: v1.NodeMemoryPressure, Status: v1.ConditionFalse, LastHeartbeatTime: metav1.NewTime(t0), LastTransitionTime: metav1.NewTime(t0)},
			},
		}
	}
	tests := []struct {
		name   string
		change func(s *v1.NodeStatus)
		want   bool
	}{
		{name: "identical", change: func(*v1.NodeStatus) {}, want: false},
		{name: "only heartbeats", change: func(s *v1.NodeStatus) {
			for i := range s.Conditions {
				s.Conditions[i].LastHeartbeatTime = metav1.NewTime(t0.Add(time.Hour))
			}
		}, want: false},
		{name: "same quantity spelled differently", change: func(s *v1.NodeStatus) {
			s.Capacity[v1.ResourceCPU] = resource.MustParse("1000m")
		}, want: false},
		{name: "transition time", change: func(s *v1.NodeStatus) {
			s.Conditions[0].LastTransitionTime = metav1.NewTime(t0.Add(time.Second))
		}, want: true},
		{name: "condition status", change: func(s *v1.NodeStatus) {
			s.Conditions[1].Status = v1.ConditionTrue
		}, want: true},
		{name: "condition message", change: func(s *v1.NodeStatus) {
			s.Conditions[0].Message = "x"
		}, want: true},
		{name: "condition added", change: func(s *v1.NodeStatus) {
			s.Conditions = append(s.Conditions, v1.NodeCondition{Type: v1.NodePIDPressure})
		}, want: true},
		{name: "capacity", change: func(s *v1.NodeStatus) {
			s.Capacity[v1.ResourceCPU] = resource.MustParse("2")
		}, want: true},
		{name: "addresses", change: func(s *v1.NodeStatus) {
			s.Addresses = append(s.Addresses, v1.NodeAddress{Type: v1.NodeInternalIP, Address: "10.0.0.1"})
		}, want: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, b := base(), base()
			tc.change(b)
			if got := StatusChanged(a, b); got != tc.want {
				t.Errorf("StatusChanged() = %v, want %v", got, tc.want)
			}
			if a.Conditions[0].LastHeartbeatTime.IsZero() || b.Conditions[0].LastHeartbeatTime.IsZero() {
				t.Error("StatusChanged modified its arguments")
			}
		})
	}
}
