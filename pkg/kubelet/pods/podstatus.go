package pods

import (
	"fmt"
	"slices"
	"strings"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Conditions the kubelet owns; others (PodScheduled, DisruptionTarget,
// readiness gates) are kept as the API has them.
var kubeletConditions = []v1.PodConditionType{
	v1.PodReadyToStartContainers, v1.PodInitialized, v1.ContainersReady, v1.PodReady,
}

// containerStatus is the API status of one container.
func (c *containerState) status(spec *v1.Container) v1.ContainerStatus {
	s := v1.ContainerStatus{
		Name:         c.name,
		Image:        spec.Image,
		ImageID:      c.imageID,
		ContainerID:  c.containerID,
		RestartCount: c.restartCount,
	}
	f := false
	s.Started = &f
	switch {
	case c.running():
		s.State.Running = &v1.ContainerStateRunning{StartedAt: metav1.NewTime(c.current.startedAt)}
		if c.last != nil {
			s.LastTerminationState.Terminated = c.last.DeepCopy()
		}
		s.Ready = true
		t := true
		s.Started = &t
	case c.waiting != nil:
		s.State.Waiting = c.waiting.DeepCopy()
		if c.last != nil {
			s.LastTerminationState.Terminated = c.last.DeepCopy()
		}
	case c.last != nil:
		s.State.Terminated = c.last.DeepCopy()
		if c.prev != nil {
			s.LastTerminationState.Terminated = c.prev.DeepCopy()
		}
	default:
		reason := "ContainerCreating"
		s.State.Waiting = &v1.ContainerStateWaiting{Reason: reason}
	}
	return s
}

// phase is the kubelet's getPhase: init containers first, then the app
// containers' states; podIsTerminal is set once the worker stopped
// everything for good (deletion, deadline).
func phase(spec *v1.PodSpec, inits, apps []v1.ContainerStatus, podIsTerminal bool) v1.PodPhase {
	pendingInit, failedInit := 0, 0
	for i, c := range spec.InitContainers {
		if isSidecar(&c) {
			continue
		}
		s := inits[i]
		switch {
		case s.State.Running != nil:
			pendingInit++
		case s.State.Terminated != nil:
			if s.State.Terminated.ExitCode != 0 {
				failedInit++
			}
		case s.State.Waiting != nil:
			if s.LastTerminationState.Terminated != nil {
				if s.LastTerminationState.Terminated.ExitCode != 0 {
					failedInit++
				}
			} else {
				pendingInit++
			}
		default:
			pendingInit++
		}
	}
	unknown, running, waiting, stopped, succeeded := 0, 0, 0, 0, 0
	for i, c := range spec.InitContainers {
		if !isSidecar(&c) {
			continue
		}
		s := inits[i]
		switch {
		case s.State.Running != nil:
			running++
		case s.State.Waiting != nil && s.LastTerminationState.Terminated == nil:
			waiting++
		}
	}
	anyAppStarted := false
	for _, s := range apps {
		switch {
		case s.State.Running != nil:
			running++
			anyAppStarted = true
		case s.State.Terminated != nil:
			stopped++
			anyAppStarted = true
			if s.State.Terminated.ExitCode == 0 {
				succeeded++
			}
		case s.State.Waiting != nil:
			if s.LastTerminationState.Terminated != nil {
				stopped++
				anyAppStarted = true
			} else {
				waiting++
			}
		default:
			unknown++
		}
	}
	if failedInit > 0 && spec.RestartPolicy == v1.RestartPolicyNever {
		return v1.PodFailed
	}
	if podIsTerminal {
		if stopped == succeeded && stopped == len(apps) && failedInit == 0 {
			return v1.PodSucceeded
		}
		return v1.PodFailed
	}
	switch {
	case pendingInit > 0 && !anyAppStarted:
		return v1.PodPending
	case waiting > 0:
		return v1.PodPending
	case running > 0 && unknown == 0:
		return v1.PodRunning
	case running == 0 && stopped > 0 && unknown == 0:
		if spec.RestartPolicy == v1.RestartPolicyAlways {
			return v1.PodRunning
		}
		if stopped == succeeded {
			return v1.PodSucceeded
		}
		if spec.RestartPolicy == v1.RestartPolicyNever {
			return v1.PodFailed
		}
		return v1.PodRunning
	default:
		return v1.PodPending
	}
}

// conditions computes the kubelet-owned conditions and merges them into
// old, keeping transition times of conditions whose status did not change.
func conditions(pod *v1.Pod, old []v1.PodCondition, inits, apps []v1.ContainerStatus, podPhase v1.PodPhase, sandboxReady bool, now metav1.Time) []v1.PodCondition {
	terminal := podPhase == v1.PodSucceeded || podPhase == v1.PodFailed
	var want []v1.PodCondition
	add := func(t v1.PodConditionType, ok bool, reason, message string) {
		status := v1.ConditionFalse
		if ok {
			status = v1.ConditionTrue
		}
		want = append(want, v1.PodCondition{Type: t, Status: status, Reason: reason, Message: message})
	}

	add(v1.PodReadyToStartContainers, sandboxReady && !terminal, "", "")

	var incomplete []string
	for i, c := range pod.Spec.InitContainers {
		s := inits[i]
		if isSidecar(&c) {
			if s.State.Running == nil {
				incomplete = append(incomplete, c.Name)
			}
			continue
		}
		if s.State.Terminated == nil || s.State.Terminated.ExitCode != 0 {
			incomplete = append(incomplete, c.Name)
		}
	}
	switch {
	case len(incomplete) == 0:
		add(v1.PodInitialized, true, "", "")
	case terminal && podPhase == v1.PodSucceeded:
		add(v1.PodInitialized, true, "PodCompleted", "")
	default:
		add(v1.PodInitialized, false, "ContainersNotInitialized", fmt.Sprintf("containers with incomplete status: [%s]", strings.Join(incomplete, " ")))
	}

	var unready []string
	for i, c := range pod.Spec.InitContainers {
		if isSidecar(&c) && !inits[i].Ready {
			unready = append(unready, c.Name)
		}
	}
	for _, s := range apps {
		if !s.Ready {
			unready = append(unready, s.Name)
		}
	}
	containersReady := len(unready) == 0 && !terminal
	switch {
	case containersReady:
		add(v1.ContainersReady, true, "", "")
	case terminal:
		add(v1.ContainersReady, false, "PodCompleted", "")
	default:
		add(v1.ContainersReady, false, "ContainersNotReady", fmt.Sprintf("containers with unready status: [%s]", strings.Join(unready, " ")))
	}

	var gateMsgs []string
	for _, g := range pod.Spec.ReadinessGates {
		i := slices.IndexFunc(old, func(c v1.PodCondition) bool { return c.Type == g.ConditionType })
		switch {
		case i < 0:
			gateMsgs = append(gateMsgs, fmt.Sprintf("corresponding condition of pod readiness gate %q does not exist.", g.ConditionType))
		case old[i].Status != v1.ConditionTrue:
			gateMsgs = append(gateMsgs, fmt.Sprintf("the status of pod readiness gate %q is not \"True\", but %v", g.ConditionType, old[i].Status))
		}
	}
	switch {
	case terminal:
		add(v1.PodReady, false, "PodCompleted", "")
	case !containersReady:
		add(v1.PodReady, false, "ContainersNotReady", fmt.Sprintf("containers with unready status: [%s]", strings.Join(unready, " ")))
	case len(gateMsgs) > 0:
		add(v1.PodReady, false, "ReadinessGatesNotReady", strings.Join(gateMsgs, ", "))
	default:
		add(v1.PodReady, true, "", "")
	}

	out := make([]v1.PodCondition, 0, len(old)+len(want))
	for _, c := range old {
		if !slices.Contains(kubeletConditions, c.Type) {
			out = append(out, c)
		}
	}
	for _, c := range want {
		c.LastTransitionTime = now
		if i := slices.IndexFunc(old, func(o v1.PodCondition) bool { return o.Type == c.Type }); i >= 0 && old[i].Status == c.Status {
			c.LastTransitionTime = old[i].LastTransitionTime
		}
		out = append(out, c)
	}
	return out
}

func isSidecar(c *v1.Container) bool {
	return c.RestartPolicy != nil && *c.RestartPolicy == v1.ContainerRestartPolicyAlways
}
