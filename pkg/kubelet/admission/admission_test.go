package admission

import (
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	resourcehelper "k8s.io/component-helpers/resource"
	"k8s.io/klog/v2"

	"github.com/krustlet/krustlet-go/pkg/provider"
)

var _ provider.PodAdmitter = admitterFunc(nil)

type admitterFunc func(*v1.Pod) (string, string)

func (f admitterFunc) Admit(p *v1.Pod) (string, string) { return f(p) }

func testNode() *v1.Node {
	return &v1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "node1", Labels: map[string]string{"kubernetes.io/arch": "wasm32-wasi", "zone": "a"}},
		Status: v1.NodeStatus{Allocatable: v1.ResourceList{
			v1.ResourceCPU:              resource.MustParse("2"),
			v1.ResourceMemory:           resource.MustParse("1Gi"),
			v1.ResourceEphemeralStorage: resource.MustParse("10Gi"),
			v1.ResourcePods:             resource.MustParse("3"),
		}},
	}
}

func requests(kv ...string) v1.ResourceRequirements {
	r := v1.ResourceRequirements{Requests: v1.ResourceList{}}
	for i := 0; i < len(kv); i += 2 {
		r.Requests[v1.ResourceName(kv[i])] = resource.MustParse(kv[i+1])
	}
	return r
}

func podOf(name string, reqs ...string) *v1.Pod {
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: v1.PodSpec{
			NodeName:   "node1",
			Containers: []v1.Container{{Name: "app", Resources: requests(reqs...)}},
		},
	}
}

func TestAdmit(t *testing.T) {
	refuseHostNetwork := admitterFunc(func(p *v1.Pod) (string, string) {
		if p.Spec.HostNetwork {
			return "UnsupportedPodSpec", "hostNetwork is not supported by the wasm provider"
		}
		return "", ""
	})
	running := []*v1.Pod{podOf("a", "cpu", "500m", "memory", "256Mi"), podOf("b", "cpu", "1", "ephemeral-storage", "4Gi")}
	for _, tc := range []struct {
		name     string
		node     func(*v1.Node)
		noNode   bool
		pod      *v1.Pod
		admitted []*v1.Pod
		admitter provider.PodAdmitter
		reason   string
		message  string
	}{
		{name: "fits", pod: podOf("c", "cpu", "500m", "memory", "512Mi"), admitted: running},
		{name: "no requests", pod: podOf("c"), admitted: running},
		{name: "no node", noNode: true, reason: "UnexpectedAdmissionError", message: "the node object is not known yet"},
		{
			name: "other node", pod: func() *v1.Pod { p := podOf("c"); p.Spec.NodeName = "node2"; return p }(),
			reason: "NodeName", message: `Pod is bound to node "node2", not "node1"`,
		},
		{
			name: "pods", admitted: append(running, podOf("c")), pod: podOf("d"),
			reason: "OutOfpods", message: "Node didn't have enough resource: pods, requested: 1, used: 3, capacity: 3",
		},
		{
			name: "cpu", admitted: running, pod: podOf("c", "cpu", "600m"),
			reason: "OutOfcpu", message: "Node didn't have enough resource: cpu, requested: 600, used: 1500, capacity: 2000",
		},
		{
			name: "memory", admitted: running, pod: podOf("c", "memory", "800Mi"),
			reason: "OutOfmemory", message: "Node didn't have enough resource: memory, requested: 838860800, used: 268435456, capacity: 1073741824",
		},
		{
			name: "ephemeral storage", admitted: running, pod: podOf("c", "ephemeral-storage", "7Gi"),
			reason: "OutOfephemeral-storage", message: "Node didn't have enough resource: ephemeral-storage, requested: 7516192768, used: 4294967296, capacity: 10737418240",
		},
		{
			name: "extended resource missing", pod: podOf("c", "example.com/gpu", "1"),
			reason: "UnexpectedAdmissionError", message: "Allocate failed due to no such resource example.com/gpu on the node",
		},
		{
			name: "extended resource present",
			node: func(n *v1.Node) { n.Status.Allocatable["example.com/gpu"] = resource.MustParse("2") },
			pod:  podOf("c", "example.com/gpu", "2"),
		},
		{
			name: "extended resource used up", admitted: []*v1.Pod{podOf("a", "example.com/gpu", "1")},
			node:   func(n *v1.Node) { n.Status.Allocatable["example.com/gpu"] = resource.MustParse("1") },
			pod:    podOf("c", "example.com/gpu", "1"),
			reason: "OutOfexample.com/gpu", message: "Node didn't have enough resource: example.com/gpu, requested: 1, used: 1, capacity: 1",
		},
		{name: "hugepages not on the node", pod: podOf("c", "hugepages-2Mi", "2Mi")},
		{
			name: "node selector", pod: func() *v1.Pod { p := podOf("c"); p.Spec.NodeSelector = map[string]string{"zone": "b"}; return p }(),
			reason: "NodeAffinity", message: "Predicate NodeAffinity failed: node(s) didn't match Pod's node affinity/selector",
		},
		{
			name: "required node affinity",
			pod: func() *v1.Pod {
				p := podOf("c")
				p.Spec.Affinity = &v1.Affinity{NodeAffinity: &v1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &v1.NodeSelector{
					NodeSelectorTerms: []v1.NodeSelectorTerm{{MatchExpressions: []v1.NodeSelectorRequirement{
						{Key: "kubernetes.io/arch", Operator: v1.NodeSelectorOpIn, Values: []string{"amd64"}}}}}}}}
				return p
			}(),
			reason: "NodeAffinity", message: "Predicate NodeAffinity failed: node(s) didn't match Pod's node affinity/selector",
		},
		{
			name: "matching node selector",
			pod:  func() *v1.Pod { p := podOf("c"); p.Spec.NodeSelector = map[string]string{"zone": "a"}; return p }(),
		},
		{
			name: "NoExecute taint",
			node: func(n *v1.Node) {
				n.Spec.Taints = []v1.Taint{{Key: "node.kubernetes.io/unreachable", Effect: v1.TaintEffectNoExecute}}
			},
			pod:    podOf("c"),
			reason: "Taint", message: "Predicate TaintToleration failed: the pod does not tolerate the node's taint node.kubernetes.io/unreachable:NoExecute",
		},
		{
			name: "NoExecute taint tolerated",
			node: func(n *v1.Node) {
				n.Spec.Taints = []v1.Taint{{Key: "wasm", Value: "true", Effect: v1.TaintEffectNoExecute}}
			},
			pod: func() *v1.Pod {
				p := podOf("c")
				p.Spec.Tolerations = []v1.Toleration{{Key: "wasm", Operator: v1.TolerationOpEqual, Value: "true", Effect: v1.TaintEffectNoExecute}}
				return p
			}(),
		},
		{
			// NoSchedule is the scheduler's business: a pod bound anyway runs.
			name: "NoSchedule taint",
			node: func(n *v1.Node) { n.Spec.Taints = []v1.Taint{{Key: "wasm", Effect: v1.TaintEffectNoSchedule}} },
			pod:  podOf("c"),
		},
		{
			name: "provider refuses", admitter: refuseHostNetwork,
			pod:    func() *v1.Pod { p := podOf("c"); p.Spec.HostNetwork = true; return p }(),
			reason: "UnsupportedPodSpec", message: "hostNetwork is not supported by the wasm provider",
		},
		{name: "provider accepts", admitter: refuseHostNetwork, pod: podOf("c")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			node := testNode()
			if tc.node != nil {
				tc.node(node)
			}
			if tc.noNode {
				node = nil
			}
			pod := tc.pod
			if pod == nil {
				pod = podOf("c")
			}
			got := Admit(klog.Background(), node, pod, tc.admitted, tc.admitter)
			if got.Admit != (tc.reason == "") || got.Reason != tc.reason || got.Message != tc.message {
				t.Errorf("Admit = %+v, want reason %q message %q", got, tc.reason, tc.message)
			}
		})
	}
}

func TestAdmitChecksOrder(t *testing.T) {
	// A pod that breaks several rules gets the first: affinity before the
	// provider before resources.
	calls := 0
	admitter := admitterFunc(func(*v1.Pod) (string, string) { calls++; return "UnsupportedPodSpec", "no" })
	p := podOf("c", "cpu", "10")
	p.Spec.NodeSelector = map[string]string{"zone": "b"}
	if got := Admit(klog.Background(), testNode(), p, nil, admitter); got.Reason != "NodeAffinity" || calls != 0 {
		t.Errorf("Admit = %+v after %d provider calls", got, calls)
	}
	p.Spec.NodeSelector = nil
	if got := Admit(klog.Background(), testNode(), p, nil, admitter); got.Reason != "UnsupportedPodSpec" {
		t.Errorf("Admit = %+v", got)
	}
}

func TestInitContainerRequests(t *testing.T) {
	always := v1.ContainerRestartPolicyAlways
	sidecar := func(name string, reqs ...string) v1.Container {
		return v1.Container{Name: name, RestartPolicy: &always, Resources: requests(reqs...)}
	}
	initc := func(name string, reqs ...string) v1.Container {
		return v1.Container{Name: name, Resources: requests(reqs...)}
	}
	for _, tc := range []struct {
		name  string
		inits []v1.Container
		app   string
		want  string // CPU the pod asks for
	}{
		// max(sum of apps, largest init container)
		{"init larger than app", []v1.Container{initc("i1", "cpu", "1500m"), initc("i2", "cpu", "200m")}, "500m", "1500m"},
		{"app larger than init", []v1.Container{initc("i1", "cpu", "200m")}, "500m", "500m"},
		// Sidecars add to the apps and to the init containers after them.
		{"sidecar adds to the app", []v1.Container{sidecar("s", "cpu", "300m")}, "500m", "800m"},
		{"sidecar before an init container", []v1.Container{sidecar("s", "cpu", "300m"), initc("i", "cpu", "1500m")}, "500m", "1800m"},
		{"sidecar after an init container", []v1.Container{initc("i", "cpu", "1500m"), sidecar("s", "cpu", "300m")}, "500m", "1500m"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := podOf("c", "cpu", tc.app)
			p.Spec.InitContainers = tc.inits
			want := resource.MustParse(tc.want)
			got := resourcehelper.PodRequests(p, resourcehelper.PodResourcesOptions{})[v1.ResourceCPU]
			if got.Cmp(want) != 0 {
				t.Fatalf("PodRequests cpu = %s, want %s", got.String(), tc.want)
			}
			// Admission uses the same math: the pod fits a node with
			// exactly that much CPU left, and not one millicore less.
			node := testNode()
			used := podOf("a", "cpu", "100m")
			node.Status.Allocatable[v1.ResourceCPU] = *resource.NewMilliQuantity(want.MilliValue()+100, resource.DecimalSI)
			if r := Admit(klog.Background(), node, p, []*v1.Pod{used}, nil); !r.Admit {
				t.Errorf("does not fit exactly: %+v", r)
			}
			node.Status.Allocatable[v1.ResourceCPU] = *resource.NewMilliQuantity(want.MilliValue()+99, resource.DecimalSI)
			if r := Admit(klog.Background(), node, p, []*v1.Pod{used}, nil); r.Reason != "OutOfcpu" {
				t.Errorf("fits one millicore short: %+v", r)
			}
		})
	}
	// Pod overhead counts too.
	p := podOf("c", "memory", "100Mi")
	p.Spec.Overhead = v1.ResourceList{v1.ResourceMemory: resource.MustParse("1000Mi")}
	if r := Admit(klog.Background(), testNode(), p, nil, nil); r.Reason != "OutOfmemory" {
		t.Errorf("overhead ignored: %+v", r)
	}
}
