package cri

import (
	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/krustlet/krustlet-go/pkg/provider"
)

// CPU and OOM constants of the kubelet (pkg/kubelet/cm and qos).
const (
	minShares     = 2
	sharesPerCPU  = 1024
	quotaPeriod   = 100000 // µs
	minQuota      = 1000
	guaranteedOOM = -997
	bestEffortOOM = 1000
)

// qosClass is the pod's QoS class as the API server set it, or as the
// kubelet's GetPodQOS computes it for a pod without one.
func qosClass(pod *v1.Pod) v1.PodQOSClass {
	if pod.Status.QOSClass != "" {
		return pod.Status.QOSClass
	}
	requests, limits, guaranteed := false, false, true
	for _, c := range append(append([]v1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...) {
		for _, r := range []v1.ResourceName{v1.ResourceCPU, v1.ResourceMemory} {
			req, hasReq := c.Resources.Requests[r]
			lim, hasLim := c.Resources.Limits[r]
			requests = requests || hasReq && !req.IsZero()
			limits = limits || hasLim && !lim.IsZero()
			if !hasLim || (hasReq && req.Cmp(lim) != 0) {
				guaranteed = false
			}
		}
	}
	switch {
	case !requests && !limits:
		return v1.PodQOSBestEffort
	case guaranteed:
		return v1.PodQOSGuaranteed
	}
	return v1.PodQOSBurstable
}

// linuxResources maps a container's resources as the kubelet does: shares
// from the CPU request, a CFS quota from the CPU limit, the memory limit,
// and the OOM score adjustment of its QoS class.
func linuxResources(pod *v1.Pod, r provider.Resources) *runtimeapi.LinuxContainerResources {
	out := &runtimeapi.LinuxContainerResources{CpuShares: minShares}
	request := r.CPURequestMillis
	if request == 0 && r.CPULimitMillis > 0 {
		request = r.CPULimitMillis // the API defaults a missing request to the limit
	}
	if request > 0 {
		out.CpuShares = max(request*sharesPerCPU/1000, minShares)
	}
	if r.CPULimitMillis > 0 {
		out.CpuPeriod = quotaPeriod
		out.CpuQuota = max(r.CPULimitMillis*quotaPeriod/1000, minQuota)
	}
	out.MemoryLimitInBytes = r.MemoryLimitBytes
	switch qosClass(pod) {
	case v1.PodQOSGuaranteed:
		out.OomScoreAdj = guaranteedOOM
	case v1.PodQOSBestEffort:
		out.OomScoreAdj = bestEffortOOM
	default:
		// Burstable: 1000 - 1000*request/capacity in the kubelet; without
		// the node's capacity here, the middle of the range.
		out.OomScoreAdj = 500
	}
	return out
}
