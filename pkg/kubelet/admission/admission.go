package admission

import (
	"fmt"
	"sort"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	resourcehelper "k8s.io/component-helpers/resource"
	corev1helpers "k8s.io/component-helpers/scheduling/corev1"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
	"k8s.io/klog/v2"

	"github.com/krustlet/krustlet-go/pkg/provider"
)

// Result is an admission decision.
type Result struct {
	Admit   bool
	Reason  string
	Message string
}

// Admit decides whether node takes pod, given the pods it already admitted
// (not terminal) and the provider's own checks (may be nil).
func Admit(logger klog.Logger, node *v1.Node, pod *v1.Pod, admitted []*v1.Pod, p provider.PodAdmitter) Result {
	if node == nil {
		return reject("UnexpectedAdmissionError", "the node object is not known yet")
	}
	if pod.Spec.NodeName != node.Name {
		return reject("NodeName", fmt.Sprintf("Pod is bound to node %q, not %q", pod.Spec.NodeName, node.Name))
	}
	if ok, err := nodeaffinity.GetRequiredNodeAffinity(pod).Match(node); err != nil || !ok {
		msg := "Predicate NodeAffinity failed: node(s) didn't match Pod's node affinity/selector"
		if err != nil {
			msg += ": " + err.Error()
		}
		return reject("NodeAffinity", msg)
	}
	if taint, untolerated := corev1helpers.FindMatchingUntoleratedTaint(logger, node.Spec.Taints, pod.Spec.Tolerations, func(t *v1.Taint) bool {
		return t.Effect == v1.TaintEffectNoExecute
	}, false); untolerated {
		return reject("Taint", fmt.Sprintf("Predicate TaintToleration failed: the pod does not tolerate the node's taint %s", taint.ToString()))
	}
	if p != nil {
		if reason, message := p.Admit(pod); reason != "" {
			return reject(reason, message)
		}
	}
	if r := fits(node, pod, admitted); !r.Admit {
		return r
	}
	return Result{Admit: true}
}

func reject(reason, message string) Result {
	return Result{Reason: reason, Message: message}
}

// fits checks pod slots and resource requests against allocatable, the
// kubelet's NodeResourcesFit predicate.
func fits(node *v1.Node, pod *v1.Pod, admitted []*v1.Pod) Result {
	alloc := node.Status.Allocatable
	if maxPods, ok := alloc[v1.ResourcePods]; ok && int64(len(admitted))+1 > maxPods.Value() {
		return reject("OutOfpods", fmt.Sprintf("Node didn't have enough resource: pods, requested: 1, used: %d, capacity: %d", len(admitted), maxPods.Value()))
	}
	used := v1.ResourceList{}
	for _, p := range admitted {
		for name, q := range resourcehelper.PodRequests(p, resourcehelper.PodResourcesOptions{}) {
			v := used[name]
			v.Add(q)
			used[name] = v
		}
	}
	want := resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{})
	names := make([]string, 0, len(want))
	for name := range want {
		names = append(names, string(name))
	}
	sort.Strings(names)
	for _, n := range names {
		name := v1.ResourceName(n)
		q := want[name]
		if q.IsZero() {
			continue
		}
		capacity, ok := alloc[name]
		if !ok {
			if isExtended(name) {
				return reject("UnexpectedAdmissionError", fmt.Sprintf("Allocate failed due to no such resource %s on the node", name))
			}
			continue
		}
		total := used[name].DeepCopy()
		total.Add(q)
		if total.Cmp(capacity) > 0 {
			u := used[name]
			return reject("OutOf"+n, fmt.Sprintf("Node didn't have enough resource: %s, requested: %s, used: %s, capacity: %s",
				n, amount(name, q), amount(name, u), amount(name, capacity)))
		}
	}
	return Result{Admit: true}
}

// amount prints a quantity as the kubelet does: millicores for CPU, bytes
// otherwise.
func amount(name v1.ResourceName, q resource.Quantity) string {
	if name == v1.ResourceCPU {
		return fmt.Sprint(q.MilliValue())
	}
	return fmt.Sprint(q.Value())
}

func isExtended(name v1.ResourceName) bool {
	return strings.Contains(string(name), "/") && !strings.HasPrefix(string(name), v1.ResourceDefaultNamespacePrefix)
}
