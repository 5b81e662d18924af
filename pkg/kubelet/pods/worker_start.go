package pods

import (
	"context"
	"errors"
	"fmt"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"

	"github.com/krustlet/krustlet-go/pkg/kubelet/logs"
	"github.com/krustlet/krustlet-go/pkg/provider"
)

// ensureSandbox routes the pod to its provider and, for a provider that
// makes one, starts the pod's sandbox; it also re-attaches to runs a
// previous agent left. It returns a retry delay when the pod cannot run yet.
func (w *worker) ensureSandbox(ctx context.Context, pod *v1.Pod) time.Duration {
	if d := w.sandboxBackingOff(); d > 0 {
		return d
	}
	route := w.route.Load()
	if route == nil {
		r, err := w.d.router.Route(pod)
		if err != nil {
			return w.sandboxFailed(ctx, pod, err)
		}
		route = &r
		w.runtimeName = r.Runtime.Provider.Node().RuntimeName
		w.route.Store(route)
		klog.FromContext(ctx).V(2).Info("Pod routed", "provider", r.Runtime.Name, "handler", r.Handler)
	}
	if sb, ok := route.Runtime.Provider.(provider.PodSandboxer); ok && w.sandbox == nil {
		s, err := sb.StartPod(ctx, provider.PodConfig{Pod: pod, Handler: route.Handler,
			LogDirectory: logs.PodDir(w.d.layout.logRoot(), pod.Namespace, pod.Name, string(pod.UID))})
		if err != nil {
			return w.sandboxFailed(ctx, pod, err)
		}
		w.sandbox = s
	}
	w.d.sandboxBackoff.Reset(w.sandboxKey())
	w.sandboxFailedAt = time.Time{}
	if !w.adopted {
		w.adopted = true
		w.adopt(ctx, pod, route.Runtime.Provider)
	}
	return 0
}

func (w *worker) sandboxKey() string { return string(w.uid) + "/sandbox" }

// sandboxBackingOff is how long a failed route or sandbox still waits.
func (w *worker) sandboxBackingOff() time.Duration {
	if w.sandboxFailedAt.IsZero() {
		return 0
	}
	return w.sandboxFailedAt.Add(w.d.sandboxBackoff.Get(w.sandboxKey())).Sub(w.d.clock.Now())
}

// sandboxFailed reports a pod that cannot get a sandbox, as the kubelet
// does: it stays Pending, a FailedCreatePodSandBox event says why, and it
// is tried again with back-off.
func (w *worker) sandboxFailed(ctx context.Context, pod *v1.Pod, err error) time.Duration {
	msg := "Failed to create pod sandbox: " + err.Error()
	w.d.recorder.Event(pod, v1.EventTypeWarning, "FailedCreatePodSandBox", msg)
	klog.FromContext(ctx).Info("Pod sandbox not created; retrying", "err", err)
	w.sandboxFailedAt = w.d.clock.Now()
	w.d.sandboxBackoff.Next(w.sandboxKey(), w.sandboxFailedAt)
	return w.d.sandboxBackoff.Get(w.sandboxKey())
}

// adopt re-attaches to the runs that a previous agent started and that
// still run, for providers whose runs outlive the agent. Their containers
// were restored as ended by the restart; an adopted one is running again.
func (w *worker) adopt(ctx context.Context, pod *v1.Pod, p provider.Provider) {
	a, ok := p.(provider.Adopter)
	if !ok {
		return
	}
	pending := false
	for _, st := range w.containers {
		pending = pending || st.adoptable != nil
	}
	if !pending {
		return
	}
	listed, err := a.ListContainers(ctx)
	if err != nil {
		klog.FromContext(ctx).Error(err, "Listing the provider's containers failed; the pod's running containers count as ended")
		return
	}
	alive := map[string]provider.RunningContainer{}
	for _, rc := range listed {
		alive[rc.ID] = rc
	}
	for _, st := range w.containers {
		info := st.adoptable
		st.adoptable = nil
		if info == nil {
			continue
		}
		rc, ok := alive[info.id]
		if !ok {
			continue
		}
		handle, err := a.Adopt(ctx, info.id)
		if err != nil {
			klog.FromContext(ctx).Error(err, "Adopting a running container failed; it counts as ended", "container", st.name)
			continue
		}
		startedAt := rc.StartedAt
		if startedAt.IsZero() {
			startedAt = info.startedAt
		}
		r := &run{handle: handle, id: info.id, startedAt: startedAt, done: make(chan struct{})}
		st.last, st.prev = st.prev, nil
		st.current, st.waiting = r, nil
		w.d.metrics.containerAdopted()
		w.d.runs.add(RunningContainer{Pod: pod, Container: st.name, ID: r.id, StartedAt: r.startedAt, Provider: p})
		w.watch(ctx, st.name, r, nil)
		klog.FromContext(ctx).Info("Adopted a container that ran through the agent's restart", "container", st.name, "run", info.id)
	}
}

// startOrBackOff starts a container, or says how long its crash-loop
// back-off still lasts.
func (w *worker) startOrBackOff(ctx context.Context, pod *v1.Pod, c *v1.Container, st *containerState) time.Duration {
	b := w.d.restartBackoff
	key := backoffKey(pod, c)
	if !st.startFailedAt.IsZero() {
		// The last start failed: its back-off holds whatever woke the
		// worker.
		if d := st.startFailedAt.Add(b.Get(key)).Sub(w.d.clock.Now()); d > 0 {
			return d
		}
	}
	if st.last != nil {
		finished := st.last.FinishedAt.Time
		if b.IsInBackOffSince(key, finished) {
			delay := b.Get(key)
			msg := fmt.Sprintf("back-off %s restarting failed container=%s pod=%s_%s(%s)", delay, c.Name, pod.Name, pod.Namespace, pod.UID)
			if st.waiting == nil || st.waiting.Reason != "CrashLoopBackOff" {
				w.d.recorder.Eventf(pod, v1.EventTypeWarning, "BackOff", "Back-off restarting failed container %s in pod %s_%s(%s)", c.Name, pod.Name, pod.Namespace, pod.UID)
			}
			st.waiting = &v1.ContainerStateWaiting{Reason: "CrashLoopBackOff", Message: msg}
			return max(finished.Add(delay).Sub(w.d.clock.Now()), time.Millisecond)
		}
		b.Next(key, finished)
	}
	return w.start(ctx, pod, c, st)
}

// start pulls, prepares and starts one run of a container. It returns a
// retry delay when the container could not start.
func (w *worker) start(ctx context.Context, pod *v1.Pod, c *v1.Container, st *containerState) time.Duration {
	logger := klog.FromContext(ctx).WithValues("container", c.Name)
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
	env, err := w.d.containers.Env(ctx, pod, c)
	if err == nil {
		var mounts []provider.Mount
		if mounts, err = w.d.containers.Mounts(pod, c, env, w.volumes); err == nil {
			return w.run(ctx, pod, c, st, img, env, mounts)
		}
	}
	msg := err.Error()
	if st.waiting == nil || st.waiting.Message != msg {
		w.d.recorder.Event(pod, v1.EventTypeWarning, "Failed", "Error: "+msg)
	}
	st.waiting = &v1.ContainerStateWaiting{Reason: "CreateContainerConfigError", Message: msg}
	logger.Info("Container config cannot be resolved; retrying", "err", msg)
	return configErrorRetry
}

// run starts the container through the provider and waits for it in the
// background.
func (w *worker) run(ctx context.Context, pod *v1.Pod, c *v1.Container, st *containerState, img provider.Image, env []provider.EnvVar, mounts []provider.Mount) time.Duration {
	route := w.route.Load()
	p := route.Runtime.Provider
	runIndex := st.runs
	containerDir := logs.ContainerDir(w.d.layout.logRoot(), pod.Namespace, pod.Name, string(pod.UID), c.Name)
	id := runID(pod.UID, c.Name, runIndex)
	cfg := provider.ContainerConfig{
		ID:         id,
		Pod:        w.sandbox,
		PodUID:     string(pod.UID),
		Namespace:  pod.Namespace,
		PodName:    pod.Name,
		Name:       c.Name,
		Image:      img,
		Args:       w.d.containers.Args(pod, c, env),
		Env:        env,
		WorkingDir: c.WorkingDir,
		Mounts:     mounts,
		Resources:  resources(c),
		LogPath:    logs.RunPath(containerDir, runIndex),
	}
	cfg.Command, cfg.CommandArgs = w.d.containers.Command(c, env)
	// The core writes the log unless the provider's runtime does.
	var lw *logs.Writer
	if _, ok := p.(provider.RuntimeLogs); !ok {
		var err error
		if lw, err = logs.NewWriter(cfg.LogPath, w.d.logOptions); err != nil {
			return w.startFailed(pod, c, st, fmt.Errorf("%w: %v", provider.ErrCreateContainer, err))
		}
		cfg.Stdout, cfg.Stderr = lw.Stdout(), lw.Stderr()
	}
	handle, err := p.StartContainer(ctx, cfg)
	if err != nil {
		if lw != nil {
			lw.Close()
		}
		return w.startFailed(pod, c, st, err)
	}
	r := &run{handle: handle, id: id, startedAt: w.d.clock.Now(), logPath: cfg.LogPath, done: make(chan struct{})}
	st.runs++
	st.startFailedAt = time.Time{}
	st.restartCount = max(st.runs-1, 0)
	st.current, st.waiting = r, nil
	runtimeID := id
	if r, ok := handle.(provider.RuntimeIDer); ok && r.RuntimeID() != "" {
		runtimeID = r.RuntimeID()
	}
	st.containerID = w.runtimeName + "://" + runtimeID
	st.imageID = img.ID
	w.d.metrics.containerStarted(pod, r)
	w.d.runs.add(RunningContainer{Pod: pod, Container: c.Name, ID: id, StartedAt: r.startedAt, Provider: p})
	w.d.recorder.Eventf(pod, v1.EventTypeNormal, "Created", "Created container: %s", c.Name)
	w.d.recorder.Eventf(pod, v1.EventTypeNormal, "Started", "Started container %s", c.Name)
	klog.FromContext(ctx).V(2).Info("Started container", "container", c.Name, "run", runIndex)
	w.watch(ctx, c.Name, r, lw)
	// Keep this run's log and the previous one (for --previous).
	if err := logs.PruneRuns(containerDir, runIndex-1); err != nil {
		klog.FromContext(ctx).Error(err, "Removing old container logs failed")
	}
	return 0
}

// watch waits for a run to end in the background, then closes its log
// writer (when the core writes the log) and wakes the worker.
func (w *worker) watch(ctx context.Context, container string, r *run, lw *logs.Writer) {
	go func() {
		exit, err := r.handle.Wait(w.d.ctx)
		if err != nil {
			if w.d.ctx.Err() != nil {
				return // the agent is stopping; the run ends with it
			}
			exit = provider.ExitStatus{ExitCode: 128, Reason: "Error", Message: "waiting for the container failed: " + err.Error(),
				StartedAt: r.startedAt, FinishedAt: w.d.clock.Now()}
		}
		if exit.StartedAt.IsZero() {
			exit.StartedAt = r.startedAt
		}
		if exit.FinishedAt.IsZero() {
			exit.FinishedAt = w.d.clock.Now()
		}
		if lw != nil {
			if err := lw.Close(); err != nil {
				klog.FromContext(ctx).Error(err, "Writing container log failed", "container", container)
			}
		}
		r.exit = exit
		w.d.runs.remove(r.id)
		close(r.done)
		w.poke()
	}()
}

// startFailed records a container that could not be started and backs off.
func (w *worker) startFailed(pod *v1.Pod, c *v1.Container, st *containerState, err error) time.Duration {
	reason := "RunContainerError"
	if errors.Is(err, provider.ErrCreateContainer) {
		reason = "CreateContainerError"
	}
	msg := err.Error()
	w.d.recorder.Event(pod, v1.EventTypeWarning, "Failed", "Error: "+msg)
	st.waiting = &v1.ContainerStateWaiting{Reason: reason, Message: msg}
	key := backoffKey(pod, c)
	st.startFailedAt = w.d.clock.Now()
	w.d.restartBackoff.Next(key, st.startFailedAt)
	return w.d.restartBackoff.Get(key)
}

// pull makes the container's image available, with the kubelet's image
// pull back-off. It returns a retry delay when the image is not available.
func (w *worker) pull(ctx context.Context, pod *v1.Pod, c *v1.Container, st *containerState) (provider.Image, time.Duration) {
	rec := w.d.recorder
	now := w.d.clock.Now()
	key := string(pod.UID) + "/" + c.Image
	b := w.d.pullBackoff
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
	if w.d.credentials != nil {
		var err error
		if creds, err = w.d.credentials.Credentials(ctx, pod); err != nil {
			klog.FromContext(ctx).Info("Some image pull secrets could not be read; pulling with the credentials found", "err", err)
		}
	}
	announce := policy == v1.PullAlways || !w.d.images.has(c.Image)
	if announce && policy != v1.PullNever {
		rec.Eventf(pod, v1.EventTypeNormal, "Pulling", "Pulling image %q", c.Image)
	}
	start := w.d.clock.Now()
	img, err := w.route.Load().Runtime.Provider.PullImage(w.workCtx, provider.PullRequest{Image: c.Image, Policy: policy, Credentials: creds})
	took := w.d.clock.Since(start)
	if err != nil {
		if w.workCtx.Err() != nil {
			return provider.Image{}, time.Millisecond // terminating: the next sync stops the pod
		}
		st.pullFailedAt = w.d.clock.Now()
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
		w.d.metrics.pullFailed()
		return provider.Image{}, b.Get(key)
	}
	b.Reset(key)
	w.d.images.add(c.Image)
	if img.AlreadyPresent {
		rec.Eventf(pod, v1.EventTypeNormal, "Pulled", "Container image %q already present on machine", c.Image)
	} else {
		rec.Eventf(pod, v1.EventTypeNormal, "Pulled", "Successfully pulled image %q in %v. Image size: %d bytes.", c.Image, took.Round(time.Millisecond), img.Size)
		w.d.metrics.pulled(took)
	}
	return img, 0
}
