package pods

import (
	"context"
	"os"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"

	"github.com/krustlet/krustlet-go/pkg/kubelet/logs"
	"github.com/krustlet/krustlet-go/pkg/provider"
)

// stopTimeout is how much longer than its grace period a run may take to
// stop before the worker stops waiting for it.
const stopTimeout = 30 * time.Second

// finish ends the pod for good while it stays in the API: every container
// is stopped within grace, the sandbox too, and the pod keeps the status it
// ended with (e the reason, when the worker decided it).
func (w *worker) finish(ctx context.Context, pod *v1.Pod, grace time.Duration, e ending) {
	w.stopAll(ctx, pod, grace)
	w.stopSandbox(ctx)
	if e != (ending{}) {
		w.ending = e
	}
	w.setState(stateFinished)
	w.publish(pod)
}

// terminate stops everything of a pod that is being deleted (or is gone),
// then has the pod object deleted, or cleans up once it is gone.
func (w *worker) terminate(ctx context.Context, pod *v1.Pod, gone bool) (time.Duration, bool) {
	w.setState(stateTerminating)
	w.stopAll(ctx, pod, gracePeriod(pod, gone))
	w.stopSandbox(ctx)
	if gone {
		w.cleanUp(ctx, pod)
		return 0, true
	}
	w.publish(pod)
	w.d.status.DeletePodWhenWritten(pod)
	return 0, false
}

// stopAll stops every running container within grace and waits for them.
func (w *worker) stopAll(ctx context.Context, pod *v1.Pod, grace time.Duration) {
	var wg sync.WaitGroup
	for _, st := range w.containers {
		r := st.current
		if r == nil || r.finished() {
			continue
		}
		if !r.stopping {
			r.stopping = true
			w.d.recorder.Eventf(pod, v1.EventTypeNormal, "Killing", "Stopping container %s", st.name)
		}
		wg.Go(func() {
			stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace+stopTimeout)
			defer cancel()
			if err := r.handle.Stop(stopCtx, grace); err != nil {
				klog.FromContext(ctx).Error(err, "Stopping container failed", "container", st.name)
			}
			select {
			case <-r.done:
			case <-stopCtx.Done():
			}
		})
	}
	wg.Wait()
	w.collectExits()
	for _, st := range w.containers {
		if st.current == nil && st.last != nil {
			st.waiting = nil
		}
	}
}

// sandboxer is the pod's provider as a PodSandboxer, when it has a sandbox.
func (w *worker) sandboxer() provider.PodSandboxer {
	route := w.route.Load()
	if route == nil {
		return nil
	}
	sb, _ := route.Runtime.Provider.(provider.PodSandboxer)
	return sb
}

// stopSandbox stops the pod's sandbox once its containers stopped.
func (w *worker) stopSandbox(ctx context.Context) {
	sb := w.sandboxer()
	if sb == nil || w.sandbox == nil {
		return
	}
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopTimeout)
	defer cancel()
	if err := sb.StopPod(stopCtx, string(w.uid)); err != nil {
		klog.FromContext(ctx).Error(err, "Stopping the pod sandbox failed")
	}
}

// cleanUp removes everything the pod left on the node.
func (w *worker) cleanUp(ctx context.Context, pod *v1.Pod) {
	logger := klog.FromContext(ctx)
	if sb := w.sandboxer(); sb != nil {
		rmCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopTimeout)
		if err := sb.RemovePod(rmCtx, string(w.uid)); err != nil {
			logger.Error(err, "Removing the pod sandbox failed")
		}
		cancel()
	}
	podDir := w.d.layout.podDir(pod.UID)
	if err := w.d.volumes.TearDown(ctx, pod.UID, podDir); err != nil {
		logger.Error(err, "Tearing down volumes failed")
	}
	if err := os.RemoveAll(podDir); err != nil {
		logger.Error(err, "Removing pod directory failed")
	}
	if err := os.RemoveAll(logs.PodDir(w.d.layout.logRoot(), pod.Namespace, pod.Name, string(pod.UID))); err != nil {
		logger.Error(err, "Removing pod logs failed")
	}
	for i := range pod.Spec.InitContainers {
		w.d.restartBackoff.DeleteEntry(backoffKey(pod, &pod.Spec.InitContainers[i]))
	}
	for i := range pod.Spec.Containers {
		w.d.restartBackoff.DeleteEntry(backoffKey(pod, &pod.Spec.Containers[i]))
	}
	w.d.sandboxBackoff.DeleteEntry(w.sandboxKey())
	w.d.status.Forget(pod.UID)
	logger.V(2).Info("Pod cleaned up")
}
