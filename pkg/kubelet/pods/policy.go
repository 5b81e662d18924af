package pods

import (
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/krustlet/krustlet-go/pkg/provider"
)

// gracePeriod is how long a deleted pod's containers get to stop.
func gracePeriod(pod *v1.Pod, gone bool) time.Duration {
	if gone {
		return 0
	}
	grace := defaultGracePeriod
	switch {
	case pod.DeletionGracePeriodSeconds != nil:
		grace = time.Duration(*pod.DeletionGracePeriodSeconds) * time.Second
	case pod.Spec.TerminationGracePeriodSeconds != nil:
		grace = time.Duration(*pod.Spec.TerminationGracePeriodSeconds) * time.Second
	}
	if grace == 0 {
		return 0 // force deletion
	}
	return max(grace, minimumGracePeriod)
}

func shouldRestart(policy v1.RestartPolicy, exitCode int32) bool {
	switch policy {
	case v1.RestartPolicyAlways:
		return true
	case v1.RestartPolicyOnFailure:
		return exitCode != 0
	default:
		return false
	}
}

// defaultPullPolicy is the API server's defaulting: Always for :latest or no
// tag, IfNotPresent otherwise.
func defaultPullPolicy(image string) v1.PullPolicy {
	if strings.Contains(image, "@") {
		return v1.PullIfNotPresent
	}
	name := image[strings.LastIndex(image, "/")+1:]
	if _, tag, ok := strings.Cut(name, ":"); !ok || tag == "latest" {
		return v1.PullAlways
	}
	return v1.PullIfNotPresent
}

func resources(c *v1.Container) provider.Resources {
	var r provider.Resources
	if q, ok := c.Resources.Limits[v1.ResourceMemory]; ok {
		r.MemoryLimitBytes = q.Value()
	}
	if q, ok := c.Resources.Limits[v1.ResourceCPU]; ok {
		r.CPULimitMillis = q.MilliValue()
	}
	if q, ok := c.Resources.Requests[v1.ResourceCPU]; ok {
		r.CPURequestMillis = q.MilliValue()
	}
	return r
}

func backoffKey(pod *v1.Pod, c *v1.Container) string {
	return string(pod.UID) + "/" + c.Name
}

func isErrorReason(reason string) bool {
	switch reason {
	case "ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull", "CreateContainerConfigError", "CreateContainerError", "RunContainerError":
		return true
	}
	return false
}

func isTerminalPhase(p v1.PodPhase) bool { return p == v1.PodSucceeded || p == v1.PodFailed }

func minPositive(a, b time.Duration) time.Duration {
	switch {
	case a <= 0:
		return b
	case b <= 0:
		return a
	}
	return min(a, b)
}
