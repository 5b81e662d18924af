package pods

import (
	"context"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"
)

// setUpVolumes makes the pod's volumes ready; it returns a retry delay when
// they are not.
func (w *worker) setUpVolumes(ctx context.Context, pod *v1.Pod) time.Duration {
	vols, err := w.d.volumes.SetUp(ctx, pod, w.d.layout.podDir(pod.UID))
	w.volumesSynced = w.d.clock.Now()
	if err != nil {
		if msg := err.Error(); msg != w.lastMountErr {
			w.lastMountErr = msg
			w.d.recorder.Event(pod, v1.EventTypeWarning, "FailedMount", "MountVolume.SetUp failed: "+msg)
		}
		if w.volumesReady {
			// A refresh failed; what is mounted stays as it was.
			klog.FromContext(ctx).Error(err, "Refreshing volumes failed")
			return 0
		}
		return volumeRetry
	}
	w.lastMountErr = ""
	w.volumes, w.volumesReady = vols, true
	return 0
}

// tokenRefresh is when the pod's volumes hold a token that must be
// rewritten.
func (w *worker) tokenRefresh() (time.Time, bool) {
	if r, ok := w.d.volumes.(TokenRefresher); ok {
		return r.NextTokenRefresh(w.uid)
	}
	return time.Time{}, false
}

// sizeLimitExceeded returns the eviction message when an emptyDir of the
// pod is over its sizeLimit, as the kubelet's eviction manager does.
func (w *worker) sizeLimitExceeded(ctx context.Context, pod *v1.Pod, now time.Time) string {
	l, ok := w.d.volumes.(SizeLimiter)
	if !ok || !hasSizeLimit(pod) || now.Sub(w.sizeChecked) < sizeLimitCheck {
		return ""
	}
	w.sizeChecked = now
	vs, err := l.SizeLimitViolations(pod, w.d.layout.podDir(pod.UID))
	if err != nil {
		klog.FromContext(ctx).Error(err, "Measuring emptyDir volumes failed")
		return ""
	}
	if len(vs) == 0 {
		return ""
	}
	return vs[0].Message()
}

func hasSizeLimit(pod *v1.Pod) bool {
	for _, v := range pod.Spec.Volumes {
		if v.EmptyDir != nil && v.EmptyDir.SizeLimit != nil {
			return true
		}
	}
	return false
}
