package pods

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"

	"github.com/krustlet/krustlet-go/pkg/kubelet/admission"
	"github.com/krustlet/krustlet-go/pkg/kubelet/runtimeclass"
	"github.com/krustlet/krustlet-go/pkg/provider"
)

// Timings of the worker, as the kubelet's.
const (
	// configErrorRetry is how soon a container whose config cannot be
	// resolved (missing ConfigMap key, …) is tried again.
	configErrorRetry = 10 * time.Second
	// volumeRetry is how soon volumes that failed are set up again.
	volumeRetry = 5 * time.Second
	// volumeResync sets up volumes again while the pod runs, so that
	// ConfigMap, Secret, projected and downward API contents follow the API.
	volumeResync = 30 * time.Second
	// sizeLimitCheck is how often emptyDir volumes with a sizeLimit are
	// measured.
	sizeLimitCheck = 10 * time.Second
	// evictionGracePeriod is the grace period of a pod evicted for going
	// over a limit, the kubelet's immediate eviction.
	evictionGracePeriod = time.Second
	// minimumGracePeriod is the shortest grace period a graceful deletion
	// gets, as in the kubelet.
	minimumGracePeriod = 2 * time.Second
	// defaultGracePeriod applies when the pod names none.
	defaultGracePeriod = 30 * time.Second
)

// worker runs one pod. The fields under mu are shared with the informer
// handlers; state and route are read by other goroutines; the rest belong
// to the worker goroutine. The file holds the loop and one sync;
// worker_start.go starts containers, worker_stop.go stops them,
// worker_status.go computes the status, worker_volumes.go keeps the
// volumes.
type worker struct {
	d   *deps
	uid types.UID

	mu   sync.Mutex
	pod  *v1.Pod
	gone bool

	wake chan struct{}
	// workCtx is cancelled when the pod starts terminating, to abort pulls.
	workCtx    context.Context
	cancelWork context.CancelFunc

	state atomic.Int32 // podState
	// route is the provider of the pod, nil until the pod is routed.
	route atomic.Pointer[runtimeclass.Route]
	// runtimeName prefixes the pod's container IDs (NAME://ID); read from
	// the provider once, when the pod is routed.
	runtimeName string

	// rejected is the admission's refusal, nil when admitted.
	rejected *admission.Result
	ending   ending
	// sandbox is the pod's sandbox, for providers that make one.
	sandbox         *provider.PodSandbox
	sandboxFailedAt time.Time
	// adopted is set once runs a previous agent left were looked for.
	adopted bool

	containers    map[string]*containerState
	volumes       map[string]string
	volumesReady  bool
	volumesSynced time.Time
	sizeChecked   time.Time
	lastMountErr  string
	startTime     time.Time
}

func newWorker(d *deps, pod *v1.Pod, rejected *admission.Result) *worker {
	w := &worker{
		d:          d,
		uid:        pod.UID,
		pod:        pod,
		wake:       make(chan struct{}, 1),
		rejected:   rejected,
		containers: map[string]*containerState{},
	}
	w.workCtx, w.cancelWork = context.WithCancel(d.ctx)
	now := d.clock.Now()
	if pod.Status.StartTime != nil {
		w.startTime = pod.Status.StartTime.Time
	} else {
		w.startTime = now
	}
	hasInit := len(pod.Spec.InitContainers) > 0
	restore := func(statuses []v1.ContainerStatus, name string, c *containerState) {
		for i := range statuses {
			if statuses[i].Name == name {
				c.restoreFrom(pod.UID, &statuses[i], now)
			}
		}
	}
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		st := &containerState{name: c.Name, init: true, sidecar: isSidecar(c), image: c.Image,
			waiting: &v1.ContainerStateWaiting{Reason: "PodInitializing"}}
		restore(pod.Status.InitContainerStatuses, c.Name, st)
		w.containers[c.Name] = st
	}
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		reason := "ContainerCreating"
		if hasInit {
			reason = "PodInitializing"
		}
		st := &containerState{name: c.Name, image: c.Image, waiting: &v1.ContainerStateWaiting{Reason: reason}}
		restore(pod.Status.ContainerStatuses, c.Name, st)
		w.containers[c.Name] = st
	}
	for _, st := range w.containers {
		if st.last != nil {
			st.waiting = nil
		}
	}
	switch {
	case isTerminalPhase(pod.Status.Phase):
		// Terminal pods stay terminal: nothing runs again.
		w.setState(stateFinished)
		w.ending = ending{pod.Status.Reason, pod.Status.Message}
	case rejected != nil:
		w.setState(stateRejected)
	case pod.DeletionTimestamp != nil:
		w.setState(stateTerminating)
	default:
		w.setState(stateActive)
	}
	return w
}

func (w *worker) getState() podState  { return podState(w.state.Load()) }
func (w *worker) setState(s podState) { w.state.Store(int32(s)) }

// active reports whether the pod counts against the node's capacity.
func (w *worker) active() bool { return w.getState() == stateActive }

// update hands the worker the pod's latest version.
func (w *worker) update(pod *v1.Pod) {
	w.mu.Lock()
	w.pod = pod
	w.mu.Unlock()
	if pod.DeletionTimestamp != nil {
		w.cancelWork()
	}
	w.poke()
}

// markGone tells the worker its pod was removed from the API.
func (w *worker) markGone() {
	w.mu.Lock()
	w.gone = true
	w.mu.Unlock()
	w.cancelWork()
	w.poke()
}

func (w *worker) poke() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *worker) snapshot() (*v1.Pod, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.pod, w.gone
}

// loop syncs the pod whenever it is woken, until the pod is gone or ctx
// ends.
func (w *worker) loop(ctx context.Context) {
	timer := w.d.clock.NewTimer(time.Hour)
	timer.Stop()
	for {
		after, done := w.sync(ctx)
		if done || ctx.Err() != nil {
			return
		}
		if after > 0 {
			timer.Stop()
			timer.Reset(after)
		}
		select {
		case <-ctx.Done():
			return
		case <-w.wake:
		case <-timer.C():
		}
	}
}

// sync reconciles the pod once. It returns when it wants to run again
// (0: only when woken) and whether the worker is finished.
func (w *worker) sync(ctx context.Context) (time.Duration, bool) {
	pod, gone := w.snapshot()
	logger := klog.FromContext(ctx).WithValues("pod", klog.KObj(pod), "podUID", pod.UID)
	ctx = klog.NewContext(ctx, logger)
	w.collectExits()
	if gone || pod.DeletionTimestamp != nil {
		return w.terminate(ctx, pod, gone)
	}
	switch w.getState() {
	case stateFinished, stateTerminating:
		w.publish(pod)
		return 0, false
	case stateRejected:
		w.d.recorder.Event(pod, v1.EventTypeWarning, w.rejected.Reason, w.rejected.Message)
		logger.Info("Pod rejected at admission", "reason", w.rejected.Reason, "message", w.rejected.Message)
		w.ending = ending{w.rejected.Reason, w.rejected.Message}
		w.setState(stateFinished)
		w.publish(pod)
		return 0, false
	}

	var requeue time.Duration
	now := w.d.clock.Now()
	if d := pod.Spec.ActiveDeadlineSeconds; d != nil {
		deadline := w.startTime.Add(time.Duration(*d) * time.Second)
		if !now.Before(deadline) {
			msg := "Pod was active on the node longer than the specified deadline"
			w.d.recorder.Event(pod, v1.EventTypeNormal, reasonDeadlineExceeded, msg)
			w.finish(ctx, pod, gracePeriod(pod, false), ending{reasonDeadlineExceeded, msg})
			return 0, false
		}
		requeue = deadline.Sub(now)
	}

	refresh, hasRefresh := w.tokenRefresh()
	if !w.volumesReady || now.Sub(w.volumesSynced) >= volumeResync || (hasRefresh && !now.Before(refresh)) {
		if d := w.setUpVolumes(ctx, pod); d > 0 {
			w.publish(pod)
			return minPositive(requeue, d), false
		}
		refresh, hasRefresh = w.tokenRefresh()
	}
	requeue = minPositive(requeue, volumeResync)
	if hasRefresh {
		requeue = minPositive(requeue, max(refresh.Sub(now), time.Millisecond))
	}
	if hasSizeLimit(pod) {
		requeue = minPositive(requeue, sizeLimitCheck)
	}
	if msg := w.sizeLimitExceeded(ctx, pod, now); msg != "" {
		w.d.recorder.Event(pod, v1.EventTypeWarning, reasonEvicted, msg)
		w.finish(ctx, pod, evictionGracePeriod, ending{reasonEvicted, msg})
		return 0, false
	}
	if d := w.ensureSandbox(ctx, pod); d > 0 {
		w.publish(pod)
		return minPositive(requeue, d), false
	}

	initDone := true
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		st := w.containers[c.Name]
		if st.sidecar {
			if !st.running() {
				requeue = minPositive(requeue, w.startOrBackOff(ctx, pod, c, st))
			}
			if !st.running() {
				initDone = false
				break
			}
			continue
		}
		if st.succeeded() {
			continue
		}
		initDone = false
		if st.running() {
			break
		}
		if st.last != nil && pod.Spec.RestartPolicy == v1.RestartPolicyNever {
			break // the pod fails: phase() sees the failed init container
		}
		requeue = minPositive(requeue, w.startOrBackOff(ctx, pod, c, st))
		break
	}
	// appsDone: every regular container ended for good. The phase does not
	// say so while sidecars run (they count as running, as in getPhase);
	// the kubelet then kills the pod (computePodActions' KillPod).
	appsDone := false
	if initDone {
		appsDone = len(pod.Spec.Containers) > 0
		for i := range pod.Spec.Containers {
			c := &pod.Spec.Containers[i]
			st := w.containers[c.Name]
			if st.running() {
				appsDone = false
				continue
			}
			if st.last != nil && !shouldRestart(pod.Spec.RestartPolicy, st.last.ExitCode) {
				st.waiting = nil
				continue
			}
			appsDone = false
			requeue = minPositive(requeue, w.startOrBackOff(ctx, pod, c, st))
		}
	}
	if p := w.publish(pod); appsDone || isTerminalPhase(p) {
		// Every regular container is done for good: stop the sidecars and
		// keep the pod as it ended.
		w.finish(ctx, pod, gracePeriod(pod, false), ending{})
		return 0, false
	}
	return requeue, false
}

// collectExits records the runs that ended since the last sync.
func (w *worker) collectExits() {
	for _, st := range w.containers {
		if st.current != nil && st.current.finished() {
			w.d.metrics.containerExited(st.current)
			st.record()
		}
	}
}
