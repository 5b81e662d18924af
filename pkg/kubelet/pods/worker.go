package pods

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"

	"github.com/krustlet/krustlet-go/pkg/kubelet/admission"
	"github.com/krustlet/krustlet-go/pkg/kubelet/logs"
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
// handlers and run goroutines; the rest belong to the worker goroutine.
type worker struct {
	m   *Manager
	uid types.UID

	mu   sync.Mutex
	pod  *v1.Pod
	gone bool

	wake chan struct{}
	// workCtx is cancelled when the pod starts terminating, to abort pulls.
	workCtx    context.Context
	cancelWork context.CancelFunc
	// active is true while the pod counts against the node's capacity.
	active atomic.Bool

	rejected      *admission.Result
	containers    map[string]*containerState
	volumes       map[string]string
	volumesReady  bool
	volumesSynced time.Time
	sizeChecked   time.Time
	lastMountErr  string
	startTime     time.Time
	terminal      bool
	reason        string
	message       string
}

func newWorker(m *Manager, pod *v1.Pod, rejected *admission.Result) *worker {
	w := &worker{
		m:          m,
		uid:        pod.UID,
		pod:        pod,
		wake:       make(chan struct{}, 1),
		rejected:   rejected,
		containers: map[string]*containerState{},
	}
	w.workCtx, w.cancelWork = context.WithCancel(m.ctx)
	now := m.cfg.Clock.Now()
	if pod.Status.StartTime != nil {
		w.startTime = pod.Status.StartTime.Time
	} else {
		w.startTime = now
	}
	hasInit := len(pod.Spec.InitContainers) > 0
	restore := func(statuses []v1.ContainerStatus, name string, c *containerState) {
		for i := range statuses {
			if statuses[i].Name == name {
				c.restoreFrom(&statuses[i], now)
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
		w.terminal = true
		w.reason, w.message = pod.Status.Reason, pod.Status.Message
	case rejected == nil && pod.DeletionTimestamp == nil:
		w.active.Store(true)
	}
	return w
}

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
	timer := w.m.cfg.Clock.NewTimer(time.Hour)
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
	for _, st := range w.containers {
		if st.current != nil && st.current.finished() {
			w.m.metrics.containerExited(st.current)
			st.record()
		}
	}
	if gone || pod.DeletionTimestamp != nil {
		return w.terminate(ctx, pod, gone)
	}
	if w.terminal {
		w.publish(pod)
		return 0, false
	}
	if w.rejected != nil {
		w.terminal, w.reason, w.message = true, w.rejected.Reason, w.rejected.Message
		w.m.cfg.Recorder.Event(pod, v1.EventTypeWarning, w.rejected.Reason, w.rejected.Message)
		logger.Info("Pod rejected at admission", "reason", w.rejected.Reason, "message", w.rejected.Message)
		w.publish(pod)
		return 0, false
	}

	var requeue time.Duration
	now := w.m.cfg.Clock.Now()
	if d := pod.Spec.ActiveDeadlineSeconds; d != nil {
		deadline := w.startTime.Add(time.Duration(*d) * time.Second)
		if !now.Before(deadline) {
			msg := "Pod was active on the node longer than the specified deadline"
			w.m.cfg.Recorder.Event(pod, v1.EventTypeNormal, "DeadlineExceeded", msg)
			w.stopAll(ctx, pod, gracePeriod(pod, false))
			w.terminal, w.reason, w.message = true, "DeadlineExceeded", msg
			w.active.Store(false)
			w.publish(pod)
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
		w.m.cfg.Recorder.Event(pod, v1.EventTypeWarning, "Evicted", msg)
		w.stopAll(ctx, pod, evictionGracePeriod)
		w.terminal, w.reason, w.message = true, "Evicted", msg
		w.active.Store(false)
		w.publish(pod)
		return 0, false
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
		w.stopAll(ctx, pod, gracePeriod(pod, false))
		w.terminal = true
		w.active.Store(false)
		w.publish(pod)
		return 0, false
	}
	return requeue, false
}

// setUpVolumes makes the pod's volumes ready; it returns a retry delay when
// they are not.
func (w *worker) setUpVolumes(ctx context.Context, pod *v1.Pod) time.Duration {
	vols, err := w.m.cfg.Volumes.SetUp(ctx, pod, w.m.podDir(pod.UID))
	w.volumesSynced = w.m.cfg.Clock.Now()
	if err != nil {
		if msg := err.Error(); msg != w.lastMountErr {
			w.lastMountErr = msg
			w.m.cfg.Recorder.Event(pod, v1.EventTypeWarning, "FailedMount", "MountVolume.SetUp failed: "+msg)
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
	if r, ok := w.m.cfg.Volumes.(TokenRefresher); ok {
		return r.NextTokenRefresh(w.uid)
	}
	return time.Time{}, false
}

// sizeLimitExceeded returns the eviction message when an emptyDir of the
// pod is over its sizeLimit, as the kubelet's eviction manager does.
func (w *worker) sizeLimitExceeded(ctx context.Context, pod *v1.Pod, now time.Time) string {
	l, ok := w.m.cfg.Volumes.(SizeLimiter)
	if !ok || !hasSizeLimit(pod) || now.Sub(w.sizeChecked) < sizeLimitCheck {
		return ""
	}
	w.sizeChecked = now
	vs, err := l.SizeLimitViolations(pod, w.m.podDir(pod.UID))
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

// startOrBackOff starts a container, or says how long its crash-loop
// back-off still lasts.
func (w *worker) startOrBackOff(ctx context.Context, pod *v1.Pod, c *v1.Container, st *containerState) time.Duration {
	if !st.startFailedAt.IsZero() {
		// The last start failed: its back-off holds whatever woke the
		// worker.
		if d := st.startFailedAt.Add(w.m.restartBackoff.Get(backoffKey(pod, c))).Sub(w.m.cfg.Clock.Now()); d > 0 {
			return d
		}
	}
	if st.last != nil {
		key := backoffKey(pod, c)
		finished := st.last.FinishedAt.Time
		b := w.m.restartBackoff
		if b.IsInBackOffSince(key, finished) {
			delay := b.Get(key)
			msg := fmt.Sprintf("back-off %s restarting failed container=%s pod=%s_%s(%s)", delay, c.Name, pod.Name, pod.Namespace, pod.UID)
			if st.waiting == nil || st.waiting.Reason != "CrashLoopBackOff" {
				w.m.cfg.Recorder.Eventf(pod, v1.EventTypeWarning, "BackOff", "Back-off restarting failed container %s in pod %s_%s(%s)", c.Name, pod.Name, pod.Namespace, pod.UID)
			}
			st.waiting = &v1.ContainerStateWaiting{Reason: "CrashLoopBackOff", Message: msg}
			return max(finished.Add(delay).Sub(w.m.cfg.Clock.Now()), time.Millisecond)
		}
		b.Next(key, finished)
	}
	return w.start(ctx, pod, c, st)
}

// start pulls, prepares and starts one run of a container. It returns a
// retry delay when the container could not start.
func (w *worker) start(ctx context.Context, pod *v1.Pod, c *v1.Container, st *containerState) time.Duration {
	logger := klog.FromContext(ctx).WithValues("container", c.Name)
	rec := w.m.cfg.Recorder
	if st.waiting == nil || !isErrorReason(st.waiting.Reason) {
		st.waiting = &v1.ContainerStateWaiting{Reason: "ContainerCreating"}
	}
	// Report where the pod is before a pull that may take long, as the
	// kubelet writes the status before it pulls.
	w.publish(pod)
	img, retry := w.pull(ctx, pod, c, st)
	if retry > 0 {
		return retry
	}
	env, err := w.m.cfg.Containers.Env(ctx, pod, c)
	if err == nil {
		var mounts []provider.Mount
		if mounts, err = w.m.cfg.Containers.Mounts(pod, c, env, w.volumes); err == nil {
			return w.run(ctx, pod, c, st, img, env, mounts)
		}
	}
	msg := err.Error()
	if st.waiting == nil || st.waiting.Message != msg {
		rec.Event(pod, v1.EventTypeWarning, "Failed", "Error: "+msg)
	}
	st.waiting = &v1.ContainerStateWaiting{Reason: "CreateContainerConfigError", Message: msg}
	logger.Info("Container config cannot be resolved; retrying", "err", msg)
	return configErrorRetry
}

// run starts the container through the provider and waits for it in the
// background.
func (w *worker) run(ctx context.Context, pod *v1.Pod, c *v1.Container, st *containerState, img provider.Image, env []provider.EnvVar, mounts []provider.Mount) time.Duration {
	rec := w.m.cfg.Recorder
	runIndex := st.runs
	containerDir := logs.ContainerDir(w.m.logDir(), pod.Namespace, pod.Name, string(pod.UID), c.Name)
	logPath := logs.RunPath(containerDir, runIndex)
	lw, err := logs.NewWriter(logPath, logs.Options{MaxSize: w.m.cfg.LogMaxSize, MaxFiles: w.m.cfg.LogMaxFiles, Now: w.m.cfg.Clock.Now})
	if err != nil {
		return w.startFailed(pod, c, st, fmt.Errorf("%w: %v", provider.ErrCreateContainer, err))
	}
	id := runID(pod.UID, c.Name, runIndex)
	cfg := provider.ContainerConfig{
		ID:         id,
		PodUID:     string(pod.UID),
		Namespace:  pod.Namespace,
		PodName:    pod.Name,
		Name:       c.Name,
		Image:      img,
		Args:       w.m.cfg.Containers.Args(pod, c, env),
		Env:        env,
		WorkingDir: c.WorkingDir,
		Mounts:     mounts,
		Resources:  resources(c),
		Stdout:     lw.Stdout(),
		Stderr:     lw.Stderr(),
	}
	handle, err := w.m.cfg.Provider.StartContainer(ctx, cfg)
	if err != nil {
		lw.Close()
		return w.startFailed(pod, c, st, err)
	}
	r := &run{handle: handle, id: id, startedAt: w.m.cfg.Clock.Now(), logPath: logPath, done: make(chan struct{})}
	st.runs++
	st.startFailedAt = time.Time{}
	st.restartCount = max(st.runs-1, 0)
	st.current, st.waiting = r, nil
	st.containerID = w.m.runtimeName + "://" + id
	st.imageID = img.ID
	w.m.metrics.containerStarted(pod, r)
	w.m.trackRun(pod, c.Name, r)
	rec.Eventf(pod, v1.EventTypeNormal, "Created", "Created container: %s", c.Name)
	rec.Eventf(pod, v1.EventTypeNormal, "Started", "Started container %s", c.Name)
	klog.FromContext(ctx).V(2).Info("Started container", "container", c.Name, "run", runIndex)
	go func() {
		exit, err := handle.Wait(w.m.ctx)
		if err != nil {
			if w.m.ctx.Err() != nil {
				return // the agent is stopping; the run ends with it
			}
			exit = provider.ExitStatus{ExitCode: 128, Reason: "Error", Message: "waiting for the container failed: " + err.Error(),
				StartedAt: r.startedAt, FinishedAt: w.m.cfg.Clock.Now()}
		}
		if exit.StartedAt.IsZero() {
			exit.StartedAt = r.startedAt
		}
		if exit.FinishedAt.IsZero() {
			exit.FinishedAt = w.m.cfg.Clock.Now()
		}
		if err := lw.Close(); err != nil {
			klog.FromContext(ctx).Error(err, "Writing container log failed", "container", c.Name)
		}
		r.exit = exit
		w.m.untrackRun(r)
		close(r.done)
		w.poke()
	}()
	// Keep this run's log and the previous one (for --previous).
	if err := logs.PruneRuns(containerDir, runIndex-1); err != nil {
		klog.FromContext(ctx).Error(err, "Removing old container logs failed")
	}
	return 0
}

// startFailed records a container that could not be started and backs off.
func (w *worker) startFailed(pod *v1.Pod, c *v1.Container, st *containerState, err error) time.Duration {
	reason := "RunContainerError"
	if errors.Is(err, provider.ErrCreateContainer) {
		reason = "CreateContainerError"
	}
	msg := err.Error()
	w.m.cfg.Recorder.Event(pod, v1.EventTypeWarning, "Failed", "Error: "+msg)
	st.waiting = &v1.ContainerStateWaiting{Reason: reason, Message: msg}
	key := backoffKey(pod, c)
	st.startFailedAt = w.m.cfg.Clock.Now()
	w.m.restartBackoff.Next(key, st.startFailedAt)
	return w.m.restartBackoff.Get(key)
}

// pull makes the container's image available, with the kubelet's image
// pull back-off. It returns a retry delay when the image is not available.
func (w *worker) pull(ctx context.Context, pod *v1.Pod, c *v1.Container, st *containerState) (provider.Image, time.Duration) {
	rec := w.m.cfg.Recorder
	now := w.m.cfg.Clock.Now()
	key := string(pod.UID) + "/" + c.Image
	b := w.m.pullBackoff
	if b.IsInBackOffSinceUpdate(key, now) {
		delay := max(st.pullFailedAt.Add(b.Get(key)).Sub(now), time.Millisecond)
		if st.waiting != nil && (st.waiting.Reason == "ImagePullBackOff" || st.waiting.Reason == "ErrImageNeverPull") {
			// Already reported; the kubelet never turns ErrImageNeverPull
			// into ImagePullBackOff.
			return provider.Image{}, delay
		}
		rec.Eventf(pod, v1.EventTypeNormal, "BackOff", "Back-off pulling image %q", c.Image)
		last := ""
		if st.waiting != nil {
			last = st.waiting.Message
		}
		st.waiting = &v1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: fmt.Sprintf("Back-off pulling image %q: %s", c.Image, last)}
		return provider.Image{}, delay
	}
	policy := c.ImagePullPolicy
	if policy == "" {
		policy = defaultPullPolicy(c.Image)
	}
	var creds []provider.Credential
	if w.m.cfg.Credentials != nil {
		var err error
		if creds, err = w.m.cfg.Credentials.Credentials(ctx, pod); err != nil {
			klog.FromContext(ctx).Info("Some image pull secrets could not be read; pulling with the credentials found", "err", err)
		}
	}
	announce := policy == v1.PullAlways || !w.m.seenImage(c.Image)
	if announce && policy != v1.PullNever {
		rec.Eventf(pod, v1.EventTypeNormal, "Pulling", "Pulling image %q", c.Image)
	}
	start := w.m.cfg.Clock.Now()
	img, err := w.m.cfg.Provider.PullImage(w.workCtx, provider.PullRequest{Image: c.Image, Policy: policy, Credentials: creds})
	took := w.m.cfg.Clock.Since(start)
	if err != nil {
		if w.workCtx.Err() != nil {
			return provider.Image{}, time.Millisecond // terminating: the next sync stops the pod
		}
		st.pullFailedAt = w.m.cfg.Clock.Now()
		b.Next(key, st.pullFailedAt)
		if errors.Is(err, provider.ErrImageNeverPull) {
			msg := fmt.Sprintf("Container image %q is not present with pull policy of Never", c.Image)
			rec.Event(pod, v1.EventTypeWarning, "ErrImageNeverPull", msg)
			st.waiting = &v1.ContainerStateWaiting{Reason: "ErrImageNeverPull", Message: msg}
		} else {
			rec.Eventf(pod, v1.EventTypeWarning, "Failed", "Failed to pull image %q: %v", c.Image, err)
			rec.Event(pod, v1.EventTypeWarning, "Failed", "Error: ErrImagePull")
			st.waiting = &v1.ContainerStateWaiting{Reason: "ErrImagePull", Message: err.Error()}
		}
		w.m.metrics.pullFailed()
		return provider.Image{}, b.Get(key)
	}
	b.Reset(key)
	w.m.markImageSeen(c.Image)
	if img.AlreadyPresent {
		rec.Eventf(pod, v1.EventTypeNormal, "Pulled", "Container image %q already present on machine", c.Image)
	} else {
		rec.Eventf(pod, v1.EventTypeNormal, "Pulled", "Successfully pulled image %q in %v. Image size: %d bytes.", c.Image, took.Round(time.Millisecond), img.Size)
		w.m.metrics.pulled(took)
	}
	return img, 0
}

// terminate stops everything of a pod that is being deleted (or is gone),
// then has the pod object deleted, or cleans up once it is gone.
func (w *worker) terminate(ctx context.Context, pod *v1.Pod, gone bool) (time.Duration, bool) {
	w.active.Store(false)
	w.stopAll(ctx, pod, gracePeriod(pod, gone))
	if !w.terminal {
		w.terminal = true
	}
	if gone {
		w.cleanUp(ctx, pod)
		return 0, true
	}
	w.publish(pod)
	w.m.cfg.Status.DeletePodWhenWritten(pod)
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
			w.m.cfg.Recorder.Eventf(pod, v1.EventTypeNormal, "Killing", "Stopping container %s", st.name)
		}
		wg.Go(func() {
			stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace+30*time.Second)
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
	for _, st := range w.containers {
		if st.current != nil && st.current.finished() {
			w.m.metrics.containerExited(st.current)
			st.record()
		}
		if st.current == nil && st.last != nil {
			st.waiting = nil
		}
	}
}

// cleanUp removes everything the pod left on the node.
func (w *worker) cleanUp(ctx context.Context, pod *v1.Pod) {
	logger := klog.FromContext(ctx)
	if err := w.m.cfg.Volumes.TearDown(ctx, pod.UID, w.m.podDir(pod.UID)); err != nil {
		logger.Error(err, "Tearing down volumes failed")
	}
	if err := os.RemoveAll(w.m.podDir(pod.UID)); err != nil {
		logger.Error(err, "Removing pod directory failed")
	}
	if err := os.RemoveAll(logs.PodDir(w.m.logDir(), pod.Namespace, pod.Name, string(pod.UID))); err != nil {
		logger.Error(err, "Removing pod logs failed")
	}
	for i := range pod.Spec.InitContainers {
		w.m.restartBackoff.DeleteEntry(backoffKey(pod, &pod.Spec.InitContainers[i]))
	}
	for i := range pod.Spec.Containers {
		w.m.restartBackoff.DeleteEntry(backoffKey(pod, &pod.Spec.Containers[i]))
	}
	w.m.cfg.Status.Forget(pod.UID)
	logger.V(2).Info("Pod cleaned up")
}

// publish computes the pod's status, hands it to the status manager and
// returns its phase.
func (w *worker) publish(pod *v1.Pod) v1.PodPhase {
	s := w.status(pod)
	w.m.cfg.Status.SetPodStatus(pod, s)
	return s.Phase
}

func (w *worker) status(pod *v1.Pod) v1.PodStatus {
	now := metav1.NewTime(w.m.cfg.Clock.Now())
	s := v1.PodStatus{
		QOSClass:  pod.Status.QOSClass,
		StartTime: &metav1.Time{Time: w.startTime},
	}
	for _, ip := range w.m.cfg.NodeIPs {
		s.HostIPs = append(s.HostIPs, v1.HostIP{IP: ip.String()})
		s.PodIPs = append(s.PodIPs, v1.PodIP{IP: ip.String()})
	}
	if len(s.HostIPs) > 0 {
		s.HostIP, s.PodIP = s.HostIPs[0].IP, s.PodIPs[0].IP
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
	podIsTerminal := w.terminal && !isTerminalPhase(pod.Status.Phase)
	s.Phase = phase(&pod.Spec, s.InitContainerStatuses, s.ContainerStatuses, podIsTerminal)
	if w.terminal && isTerminalPhase(pod.Status.Phase) {
		s.Phase = pod.Status.Phase
	}
	if w.reason == "DeadlineExceeded" || w.reason == "Evicted" {
		s.Phase = v1.PodFailed
	}
	s.Reason, s.Message = w.reason, w.message
	s.Conditions = conditions(pod, pod.Status.Conditions, s.InitContainerStatuses, s.ContainerStatuses, s.Phase, w.volumesReady, now)
	if w.reason == "Evicted" {
		s.Conditions = setPodCondition(s.Conditions, v1.PodCondition{
			Type: v1.DisruptionTarget, Status: v1.ConditionTrue, Reason: v1.PodReasonTerminationByKubelet,
			Message: w.message, LastTransitionTime: now,
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
