package node

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"reflect"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/klog/v2/ktesting"
)

func testRegistrar(client *fake.Clientset, labels map[string]string) *Registrar {
	return &Registrar{
		Client:   client,
		NodeName: testNode,
		Labels:   labels,
		Taints:   []v1.Taint{{Key: "kubernetes.io/arch", Value: "wasm32-wasi", Effect: v1.TaintEffectNoExecute}},
		Setters: []Setter{
			NodeAddress([]net.IP{net.ParseIP("10.0.0.7")}, "edge-1"),
			DaemonEndpoints(10250),
		},
	}
}

// patches returns the patch actions on nodes.
func patches(client *fake.Clientset) []k8stesting.PatchAction {
	var out []k8stesting.PatchAction
	for _, a := range client.Actions() {
		if p, ok := a.(k8stesting.PatchAction); ok && a.GetVerb() == "patch" {
			out = append(out, p)
		}
	}
	return out
}

func TestRegisterCreates(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	client := fake.NewClientset()
	labels := map[string]string{"kubernetes.io/hostname": "edge-1", "node-role.kubernetes.io/edge": ""}
	r := testRegistrar(client, labels)
	if err := r.Register(ctx); err != nil {
		t.Fatal(err)
	}
	labels["later"] = "change" // the Registrar's map is not the Node's
	n := storedNode(t, client)
	if want := map[string]string{"kubernetes.io/hostname": "edge-1", "node-role.kubernetes.io/edge": ""}; !reflect.DeepEqual(n.Labels, want) {
		t.Errorf("labels %v, want %v", n.Labels, want)
	}
	if !reflect.DeepEqual(n.Spec.Taints, r.Taints) {
		t.Errorf("taints %v, want %v", n.Spec.Taints, r.Taints)
	}
	if len(n.Status.Addresses) != 2 || n.Status.DaemonEndpoints.KubeletEndpoint.Port != 10250 {
		t.Errorf("status not filled by the setters: %+v", n.Status)
	}
	if got := len(patches(client)); got != 0 {
		t.Errorf("%d patches after a create, want 0", got)
	}
}

func TestRegisterExistingNode(t *testing.T) {
	tests := []struct {
		name       string
		existing   map[string]string
		labels     map[string]string
		wantPatch  string // "" for none
		wantLabels map[string]string
	}{
		{
			name:       "labels match: no patch",
			existing:   map[string]string{"a": "1", "b": "2", "added-by-admin": "x"},
			labels:     map[string]string{"a": "1", "b": "2"},
			wantLabels: map[string]string{"a": "1", "b": "2", "added-by-admin": "x"},
		},
		{
			name:       "changed and missing labels are patched, others left alone",
			existing:   map[string]string{"a": "old", "b": "2", "added-by-admin": "x"},
			labels:     map[string]string{"a": "new", "b": "2", "c": "3"},
			wantPatch:  `{"metadata":{"labels":{"a":"new","c":"3"}}}`,
			wantLabels: map[string]string{"a": "new", "b": "2", "c": "3", "added-by-admin": "x"},
		},
		{
			name:       "no labels on the existing Node",
			labels:     map[string]string{"a": "1"},
			wantPatch:  `{"metadata":{"labels":{"a":"1"}}}`,
			wantLabels: map[string]string{"a": "1"},
		},
		{
			// Role labels have empty values: a missing one is not one that
			// matches.
			name:       "a missing label with an empty value is restored",
			existing:   map[string]string{"a": "1"},
			labels:     map[string]string{"a": "1", "node-role.kubernetes.io/edge": ""},
			wantPatch:  `{"metadata":{"labels":{"node-role.kubernetes.io/edge":""}}}`,
			wantLabels: map[string]string{"a": "1", "node-role.kubernetes.io/edge": ""},
		},
		{
			name:       "a present label with an empty value matches",
			existing:   map[string]string{"node-role.kubernetes.io/edge": ""},
			labels:     map[string]string{"node-role.kubernetes.io/edge": ""},
			wantLabels: map[string]string{"node-role.kubernetes.io/edge": ""},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, ctx := ktesting.NewTestContext(t)
			existing := &v1.Node{
				ObjectMeta: metav1.ObjectMeta{Name: testNode, Labels: tc.existing},
				Spec:       v1.NodeSpec{Taints: []v1.Taint{{Key: "set-by-admin", Effect: v1.TaintEffectNoSchedule}}},
			}
			client := fake.NewClientset(existing)
			if err := testRegistrar(client, tc.labels).Register(ctx); err != nil {
				t.Fatal(err)
			}
			ps := patches(client)
			switch {
			case tc.wantPatch == "" && len(ps) != 0:
				t.Errorf("patched %s, want no patch", ps[0].GetPatch())
			case tc.wantPatch != "" && len(ps) != 1:
				t.Fatalf("%d patches, want 1", len(ps))
			case tc.wantPatch != "":
				if ps[0].GetPatchType() != types.StrategicMergePatchType {
					t.Errorf("patch type %s, want %s", ps[0].GetPatchType(), types.StrategicMergePatchType)
				}
				if ps[0].GetSubresource() != "" {
					t.Errorf("patched subresource %q, want the object", ps[0].GetSubresource())
				}
				assertJSONEqual(t, ps[0].GetPatch(), tc.wantPatch)
			}
			n := storedNode(t, client)
			if !reflect.DeepEqual(n.Labels, tc.wantLabels) {
				t.Errorf("labels %v, want %v", n.Labels, tc.wantLabels)
			}
			if want := existing.Spec.Taints; !reflect.DeepEqual(n.Spec.Taints, want) {
				t.Errorf("taints %v, want %v: an existing Node's taints are not touched", n.Spec.Taints, want)
			}
		})
	}
}

func assertJSONEqual(t *testing.T, got []byte, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("patch %s: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("patch %s, want %s", got, want)
	}
}

func TestRegisterRetries(t *testing.T) {
	existing := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: testNode}}
	tests := []struct {
		name     string
		objects  []runtime.Object
		verb     string
		failures int
		err      error
		wantCall int // calls of verb
	}{
		{name: "create fails twice", verb: "create", failures: 2, err: errServer, wantCall: 3},
		{name: "create is forbidden once", verb: "create", failures: 1, err: apierrors.NewForbidden(nodesGVR.GroupResource(), testNode, errors.New("not yet")), wantCall: 2},
		{name: "get of the existing Node fails twice", objects: []runtime.Object{existing}, verb: "get", failures: 2, err: errServer, wantCall: 3},
		{name: "label patch fails once", objects: []runtime.Object{existing}, verb: "patch", failures: 1, err: errServer, wantCall: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, ctx := ktesting.NewTestContext(t)
			ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			client := fake.NewClientset(tc.objects...)
			var calls int
			client.PrependReactor(tc.verb, "nodes", failN(tc.failures, tc.err, &calls))
			start := time.Now()
			if err := testRegistrar(client, map[string]string{"a": "1"}).Register(ctx); err != nil {
				t.Fatalf("Register() = %v, want success after retries", err)
			}
			if calls != tc.wantCall {
				t.Errorf("%d %s calls, want %d", calls, tc.verb, tc.wantCall)
			}
			if got := storedNode(t, client).Labels["a"]; got != "1" {
				t.Errorf("label a = %q, want 1", got)
			}
			// Back-off: 100 ms, then 200 ms, …
			minWait := time.Duration(0)
			for i := range tc.failures {
				minWait += 100 * time.Millisecond << i
			}
			if elapsed := time.Since(start); elapsed < minWait {
				t.Errorf("succeeded after %v, want a back-off of at least %v", elapsed, minWait)
			}
		})
	}
}

func TestRegisterSetterErrorRetries(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	client := fake.NewClientset()
	r := testRegistrar(client, nil)
	calls := 0
	r.Setters = append(r.Setters, func(context.Context, *v1.Node) error {
		calls++
		if calls == 1 {
			return errors.New("capacity not readable yet")
		}
		return nil
	})
	if err := r.Register(ctx); err != nil {
		t.Fatal(err)
	}
	if calls != 2 {
		t.Errorf("setter called %d times, want 2", calls)
	}
	if got := countActions(client, "create", ""); got != 1 {
		t.Errorf("%d creates, want 1: no create with an incomplete status", got)
	}
}

func TestRegisterGivesUpWhenContextEnds(t *testing.T) {
	t.Parallel()
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithTimeout(ctx, 250*time.Millisecond)
	defer cancel()
	client := fake.NewClientset()
	var calls int
	client.PrependReactor("create", "nodes", failN(-1, errServer, &calls))
	err := testRegistrar(client, nil).Register(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Register() = %v, want the context's deadline error", err)
	}
	// Tries at 0, 100 ms and 300 ms: the third is past the deadline.
	if calls < 1 || calls > 2 {
		t.Errorf("%d creates before the deadline, want 2", calls)
	}
}
