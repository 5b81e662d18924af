package pods

import (
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// publish computes the pod's status, hands it to the status manager and
// returns its phase.
func (w *worker) publish(pod *v1.Pod) v1.PodPhase {
	s := w.status(pod)
	w.d.status.SetPodStatus(pod, s)
	return s.Phase
}

func (w *worker) status(pod *v1.Pod) v1.PodStatus {
	now := metav1.NewTime(w.d.clock.Now())
	s := v1.PodStatus{
		QOSClass:  pod.Status.QOSClass,
		StartTime: &metav1.Time{Time: w.startTime},
	}
	for _, ip := range w.d.nodeIPs {
		s.HostIPs = append(s.HostIPs, v1.HostIP{IP: ip.String()})
	}
	// A pod with a sandbox of its own has the sandbox's addresses; the
	// others share the node's network.
	podIPs := w.d.nodeIPs
	if w.sandbox != nil && len(w.sandbox.IPs) > 0 {
		podIPs = w.sandbox.IPs
	}
	for _, ip := range podIPs {
		s.PodIPs = append(s.PodIPs, v1.PodIP{IP: ip.String()})
	}
	if len(s.HostIPs) > 0 {
		s.HostIP = s.HostIPs[0].IP
	}
	if len(s.PodIPs) > 0 {
		s.PodIP = s.PodIPs[0].IP
	}
	if w.rejected != nil {
		s = *pod.Status.DeepCopy()
		s.Phase, s.Reason, s.Message = v1.PodFailed, w.rejected.Reason, w.rejected.Message
		return s
	}
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		s.InitContainerStatuses = append(s.InitContainerStatuses, w.containers[c.Name].status(c))
	}
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		s.ContainerStatuses = append(s.ContainerStatuses, w.containers[c.Name].status(c))
	}
	state := w.getState()
	ended := state == stateFinished || state == stateTerminating
	s.Phase = phase(&pod.Spec, s.InitContainerStatuses, s.ContainerStatuses, ended && !isTerminalPhase(pod.Status.Phase))
	if ended && isTerminalPhase(pod.Status.Phase) {
		s.Phase = pod.Status.Phase
	}
	if w.ending.failsPod() {
		s.Phase = v1.PodFailed
	}
	s.Reason, s.Message = w.ending.reason, w.ending.message
	sandboxReady := w.volumesReady && w.route.Load() != nil && (w.sandboxer() == nil || w.sandbox != nil)
	s.Conditions = conditions(pod, pod.Status.Conditions, s.InitContainerStatuses, s.ContainerStatuses, s.Phase, sandboxReady, now)
	if w.ending.reason == reasonEvicted {
		s.Conditions = setPodCondition(s.Conditions, v1.PodCondition{
			Type: v1.DisruptionTarget, Status: v1.ConditionTrue, Reason: v1.PodReasonTerminationByKubelet,
			Message: w.ending.message, LastTransitionTime: now,
		})
	}
	return s
}

// setPodCondition adds c, or replaces the condition of its type, keeping
// the transition time when the status did not change.
func setPodCondition(conds []v1.PodCondition, c v1.PodCondition) []v1.PodCondition {
	for i := range conds {
		if conds[i].Type == c.Type {
			if conds[i].Status == c.Status {
				c.LastTransitionTime = conds[i].LastTransitionTime
			}
			conds[i] = c
			return conds
		}
	}
	return append(conds, c)
}
