package pods

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/krustlet/krustlet-go/pkg/kubelet/logs"
	"github.com/krustlet/krustlet-go/pkg/provider"
)

func TestRunToCompletion(t *testing.T) {
	h := newHarness(t)
	pod := newPod("done", v1.RestartPolicyOnFailure)
	h.start(pod)

	run := h.prov.run(t, "app", 0)
	s := h.waitPhase(pod.UID, v1.PodRunning)
	cs := containerStatus(s, "app")
	if cs.State.Running == nil || !cs.Ready || cs.Started == nil || !*cs.Started {
		t.Errorf("app status = %+v, want running, ready and started", cs)
	}
	if want := "fake://" + run.cfg.ID; cs.ContainerID != want {
		t.Errorf("containerID = %q, want %q", cs.ContainerID, want)
	}
	if cs.ImageID != testImage+"@sha256:0123" || cs.Image != testImage {
		t.Errorf("image = %q, imageID = %q", cs.Image, cs.ImageID)
	}
	if s.HostIP != "192.0.2.10" || s.PodIP != "192.0.2.10" || s.StartTime == nil {
		t.Errorf("hostIP=%q podIP=%q startTime=%v", s.HostIP, s.PodIP, s.StartTime)
	}
	if c := condition(s, v1.PodReady); c.Status != v1.ConditionTrue {
		t.Errorf("Ready = %+v", c)
	}
	if c := condition(s, v1.PodScheduled); c.Status != v1.ConditionTrue {
		t.Errorf("PodScheduled not kept: %+v", s.Conditions)
	}
	if run.cfg.PodUID != string(pod.UID) || run.cfg.Name != "app" || run.cfg.Image.ID != testImage+"@sha256:0123" ||
		len(run.cfg.Args) != 1 || run.cfg.Env[0].Value != "done" {
		t.Errorf("container config = %+v", run.cfg)
	}

	h.waitAPIPhase(pod, v1.PodRunning)
	if m := gather(t, h); m["kubelet_running_containers"] != 1 {
		t.Errorf("running containers = %v", m["kubelet_running_containers"])
	}
	fmt.Fprintln(run.cfg.Stdout, "hello from wasm")
	h.clock.Step(time.Second)
	run.exit(0)
	s = h.waitPhase(pod.UID, v1.PodSucceeded)
	cs = containerStatus(s, "app")
	if term := cs.State.Terminated; term == nil || term.ExitCode != 0 || term.Reason != "Completed" ||
		!term.FinishedAt.Time.Equal(h.clock.Now()) || term.ContainerID != "fake://"+run.cfg.ID {
		t.Errorf("app = %+v, want terminated 0 Completed", cs.State)
	}
	if cs.Ready {
		t.Error("a terminated container is not ready")
	}
	for _, typ := range []v1.PodConditionType{v1.ContainersReady, v1.PodReady} {
		if c := condition(s, typ); c.Status != v1.ConditionFalse || c.Reason != "PodCompleted" {
			t.Errorf("%s = %+v, want False PodCompleted", typ, c)
		}
	}
	if c := condition(s, v1.PodReadyToStartContainers); c.Status != v1.ConditionFalse {
		t.Errorf("PodReadyToStartContainers = %+v, want False once terminal", c)
	}
	h.waitEvents(
		`Normal Pulling Pulling image "`+testImage+`"`,
		`Normal Pulled Successfully pulled image "`+testImage+`"`,
		"Normal Created Created container: app",
		"Normal Started Started container app",
	)

	// The API got the phases in order, and ends Succeeded.
	h.waitAPIPhase(pod, v1.PodSucceeded)
	var phases []string
	for _, p := range h.patches() {
		for _, ph := range []v1.PodPhase{v1.PodPending, v1.PodRunning, v1.PodSucceeded} {
			// (A patch made against a cache that lags repeats a phase.)
			if strings.Contains(p, `"phase":"`+string(ph)+`"`) && (len(phases) == 0 || phases[len(phases)-1] != string(ph)) {
				phases = append(phases, string(ph))
			}
		}
	}
	if got := strings.Join(phases, ","); got != "Running,Succeeded" && got != "Pending,Running,Succeeded" {
		t.Errorf("phases written = %s", got)
	}

	// The run's output is in its CRI log file.
	data, err := os.ReadFile(logs.RunPath(h.logDir(pod, "app"), 0))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(string(data), " stdout F hello from wasm\n") {
		t.Errorf("log = %q", data)
	}
	// Nothing runs again.
	if n := h.prov.startCount(); n != 1 {
		t.Errorf("%d starts, want 1", n)
	}
	// The kubelet's metrics count the run and the pod's start, an hour
	// after its creation.
	metrics := gather(t, h)
	if metrics["kubelet_running_containers"] != 0 || metrics["krustlet_container_starts_total"] != 1 ||
		metrics["kubelet_pod_start_duration_seconds_count"] != 1 || metrics["kubelet_pod_start_duration_seconds_sum"] != 3600 {
		t.Errorf("metrics = %v", metrics)
	}
}

// gather returns the values of the pod workers' metrics by name (sum and
// count of histograms as NAME_sum and NAME_count).
func gather(t *testing.T, h *harness) map[string]float64 {
	t.Helper()
	families, err := h.metrics.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			switch {
			case m.GetGauge() != nil:
				out[f.GetName()] = m.GetGauge().GetValue()
			case m.GetCounter() != nil:
				out[f.GetName()] = m.GetCounter().GetValue()
			case m.GetHistogram() != nil:
				out[f.GetName()+"_count"] = float64(m.GetHistogram().GetSampleCount())
				out[f.GetName()+"_sum"] = m.GetHistogram().GetSampleSum()
			}
		}
	}
	return out
}

func TestExitStatusPreserved(t *testing.T) {
	for _, tc := range []struct {
		name       string
		exit       provider.ExitStatus
		wantReason string
	}{
		{"code", provider.ExitStatus{ExitCode: 3}, "Error"},
		{"trap", provider.ExitStatus{ExitCode: 134, Reason: "Error", Message: "wasm trap: unreachable"}, "Error"},
		{"oom", provider.ExitStatus{ExitCode: 137, Reason: "OOMKilled", Message: "memory limit exceeded"}, "OOMKilled"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			pod := newPod("exit", v1.RestartPolicyNever)
			h.start(pod)
			h.prov.run(t, "app", 0).end(tc.exit)
			s := h.waitPhase(pod.UID, v1.PodFailed)
			term := containerStatus(s, "app").State.Terminated
			if term == nil || term.ExitCode != tc.exit.ExitCode || term.Reason != tc.wantReason || term.Message != tc.exit.Message {
				t.Fatalf("terminated = %+v, want code %d reason %s message %q", term, tc.exit.ExitCode, tc.wantReason, tc.exit.Message)
			}
			if n := h.prov.startCount(); n != 1 {
				t.Errorf("Never restarted %d times", n-1)
			}
		})
	}
}

// crashLoopMessage is the kubelet's CrashLoopBackOff message.
func crashLoopMessage(pod *v1.Pod, container string, d time.Duration) string {
	return fmt.Sprintf("back-off %s restarting failed container=%s pod=%s_%s(%s)", d, container, pod.Name, pod.Namespace, pod.UID)
}

func TestRestartBackOff(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	pod := newPod("crash", v1.RestartPolicyOnFailure)
	h.start(pod)

	// The first failure restarts at once, as the kubelet does.
	h.prov.run(t, "app", 0).exit(1)
	cs := h.waitRunning(pod.UID, "app", 1)
	if last := cs.LastTerminationState.Terminated; last == nil || last.ExitCode != 1 || last.Reason != "Error" {
		t.Fatalf("lastState = %+v", cs.LastTerminationState)
	}

	// Each later failure waits twice as long: 10s, 20s, 40s.
	for i, delay := range []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second} {
		run := i + 1
		h.clock.Step(time.Minute) // run for a while
		h.prov.run(t, "app", run).exit(int32(run + 1))
		cs := h.waitWaiting(pod.UID, "app", "CrashLoopBackOff")
		if want := crashLoopMessage(pod, "app", delay); cs.State.Waiting.Message != want {
			t.Errorf("message = %q, want %q", cs.State.Waiting.Message, want)
		}
		if cs.RestartCount != int32(run) {
			t.Errorf("restartCount = %d in back-off after run %d", cs.RestartCount, run)
		}
		if last := cs.LastTerminationState.Terminated; last == nil || last.ExitCode != int32(run+1) {
			t.Errorf("lastState = %+v, want exit %d", cs.LastTerminationState, run+1)
		}
		if s, _ := h.status.Status(pod.UID); s.Phase != v1.PodRunning {
			t.Errorf("phase in back-off = %s, want Running", s.Phase)
		}
		if c := condition(h.current(pod), v1.ContainersReady); c.Status != v1.ConditionFalse || c.Reason != "ContainersNotReady" ||
			c.Message != "containers with unready status: [app]" {
			t.Errorf("ContainersReady = %+v", c)
		}
		// Not restarted before the back-off ends; then restarted.
		if n := h.prov.runCount("app"); n != run+1 {
			t.Fatalf("%d runs during the back-off, want %d", n, run+1)
		}
		h.clock.advance(t, delay)
		h.waitRunning(pod.UID, "app", int32(run+1))
	}
	if n := h.prov.runCount("app"); n != 5 {
		t.Errorf("%d runs, want 5", n)
	}
	got := h.waitEvents("Warning BackOff Back-off restarting failed container app in pod crash_default(crash-uid)")
	if n := strings.Count(strings.Join(reasons(got), " "), "BackOff"); n != 3 {
		t.Errorf("%d BackOff events, want one per back-off: %q", n, got)
	}
}

func TestRestartBackOffResetsAfterCleanRun(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	pod := newPod("flaky", v1.RestartPolicyAlways)
	h.start(pod)

	h.prov.run(t, "app", 0).exit(1) // restarts at once
	h.prov.run(t, "app", 1).exit(1)
	h.waitWaiting(pod.UID, "app", "CrashLoopBackOff")
	h.clock.advance(t, 10*time.Second)
	h.prov.run(t, "app", 2).exit(1)
	cs := h.waitWaiting(pod.UID, "app", "CrashLoopBackOff")
	if want := crashLoopMessage(pod, "app", 20*time.Second); cs.State.Waiting.Message != want {
		t.Fatalf("message = %q, want %q", cs.State.Waiting.Message, want)
	}
	h.clock.advance(t, 20*time.Second)

	// Run 3 runs cleanly for over 10 minutes: its failure restarts at
	// once, and the back-off starts again at 10s.
	run := h.prov.run(t, "app", 3)
	h.waitRunning(pod.UID, "app", 3)
	h.clock.Step(10*time.Minute + time.Second)
	run.exit(1)
	h.waitRunning(pod.UID, "app", 4)
	h.prov.run(t, "app", 4).exit(1)
	cs = h.waitWaiting(pod.UID, "app", "CrashLoopBackOff")
	if want := crashLoopMessage(pod, "app", 10*time.Second); cs.State.Waiting.Message != want {
		t.Fatalf("after a clean run: message = %q, want %q", cs.State.Waiting.Message, want)
	}
}

func TestAlwaysRestartsCompletedContainer(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	pod := newPod("always", v1.RestartPolicyAlways)
	h.start(pod)
	h.prov.run(t, "app", 0).exit(0)
	cs := h.waitRunning(pod.UID, "app", 1)
	if last := cs.LastTerminationState.Terminated; last == nil || last.ExitCode != 0 || last.Reason != "Completed" {
		t.Fatalf("lastState = %+v, want Completed", cs.LastTerminationState)
	}
	if st := h.current(pod); st.Phase != v1.PodRunning {
		t.Errorf("phase = %s", st.Phase)
	}
	// A completed container of an Always pod backs off too.
	h.prov.run(t, "app", 1).exit(0)
	cs = h.waitWaiting(pod.UID, "app", "CrashLoopBackOff")
	if st := h.current(pod); st.Phase != v1.PodRunning {
		t.Errorf("phase in back-off = %s, want Running", st.Phase)
	}
	h.clock.advance(t, 10*time.Second)
	h.waitRunning(pod.UID, "app", 2)
}

func TestNeverFails(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	pod := newPod("never", v1.RestartPolicyNever, func(p *v1.Pod) {
		p.Spec.Containers = append(p.Spec.Containers, v1.Container{Name: "helper", Image: testImage})
	})
	h.start(pod)
	h.prov.run(t, "helper", 0).exit(0)
	h.prov.run(t, "app", 0).exit(2)
	s := h.waitPhase(pod.UID, v1.PodFailed)
	if c := containerStatus(s, "app"); c.State.Terminated == nil || c.State.Terminated.ExitCode != 2 {
		t.Errorf("app = %s", stateOf(c))
	}
	if c := containerStatus(s, "helper"); c.State.Terminated == nil || c.State.Terminated.Reason != "Completed" {
		t.Errorf("helper = %s", stateOf(c))
	}
	if n := h.prov.startCount(); n != 2 {
		t.Errorf("%d starts, want 2", n)
	}
}

func withInit(names ...string) func(*v1.Pod) {
	return func(p *v1.Pod) {
		for _, n := range names {
			p.Spec.InitContainers = append(p.Spec.InitContainers, v1.Container{Name: n, Image: testImage})
		}
	}
}

func withSidecar(name string) func(*v1.Pod) {
	return func(p *v1.Pod) {
		always := v1.ContainerRestartPolicyAlways
		p.Spec.InitContainers = append(p.Spec.InitContainers, v1.Container{Name: name, Image: testImage, RestartPolicy: &always})
	}
}

func TestInitContainersRunInOrder(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	pod := newPod("init", v1.RestartPolicyAlways, withInit("init1", "init2"))
	h.start(pod)

	init1 := h.prov.run(t, "init1", 0)
	s := h.waitStatus(pod.UID, "init1 running", func(s v1.PodStatus) error {
		if containerStatus(s, "init1").State.Running == nil {
			return errors.New("init1 not running")
		}
		return nil
	})
	if s.Phase != v1.PodPending {
		t.Errorf("phase = %s while initialising", s.Phase)
	}
	if c := condition(s, v1.PodInitialized); c.Status != v1.ConditionFalse || c.Reason != "ContainersNotInitialized" ||
		c.Message != "containers with incomplete status: [init1 init2]" {
		t.Errorf("Initialized = %+v", c)
	}
	for _, name := range []string{"init2", "app"} {
		if w := containerStatus(s, name).State.Waiting; w == nil || w.Reason != "PodInitializing" {
			t.Errorf("%s = %s, want waiting PodInitializing", name, stateOf(containerStatus(s, name)))
		}
		if n := h.prov.runCount(name); n != 0 {
			t.Errorf("%s started while init1 runs", name)
		}
	}

	init1.exit(0)
	init2 := h.prov.run(t, "init2", 0)
	s = h.waitStatus(pod.UID, "init2 running", func(s v1.PodStatus) error {
		if containerStatus(s, "init2").State.Running == nil {
			return errors.New("init2 not running")
		}
		return nil
	})
	if c := condition(s, v1.PodInitialized); c.Message != "containers with incomplete status: [init2]" {
		t.Errorf("Initialized = %+v", c)
	}
	if n := h.prov.runCount("app"); n != 0 {
		t.Error("app started while init2 runs")
	}

	init2.exit(0)
	h.prov.run(t, "app", 0)
	s = h.waitPhase(pod.UID, v1.PodRunning)
	if c := condition(s, v1.PodInitialized); c.Status != v1.ConditionTrue {
		t.Errorf("Initialized = %+v", c)
	}
	for _, name := range []string{"init1", "init2"} {
		if term := containerStatus(s, name).State.Terminated; term == nil || term.Reason != "Completed" {
			t.Errorf("%s = %s", name, stateOf(containerStatus(s, name)))
		}
	}
	if h.prov.runCount("init1") != 1 || h.prov.runCount("init2") != 1 {
		t.Error("init containers ran again")
	}
}

func TestFailingInitContainer(t *testing.T) {
	t.Run("Never", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		pod := newPod("init-never", v1.RestartPolicyNever, withInit("init"))
		h.start(pod)
		h.prov.run(t, "init", 0).exit(1)
		s := h.waitPhase(pod.UID, v1.PodFailed)
		if term := containerStatus(s, "init").State.Terminated; term == nil || term.ExitCode != 1 {
			t.Errorf("init = %s", stateOf(containerStatus(s, "init")))
		}
		if w := containerStatus(s, "app").State.Waiting; w == nil || w.Reason != "PodInitializing" {
			t.Errorf("app = %s", stateOf(containerStatus(s, "app")))
		}
		if c := condition(s, v1.PodInitialized); c.Status != v1.ConditionFalse || c.Message != "containers with incomplete status: [init]" {
			t.Errorf("Initialized = %+v", c)
		}
		if h.prov.runCount("app") != 0 || h.prov.runCount("init") != 1 {
			t.Error("something ran again")
		}
	})
	t.Run("OnFailure", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		pod := newPod("init-onfailure", v1.RestartPolicyOnFailure, withInit("init"))
		h.start(pod)
		h.prov.run(t, "init", 0).exit(1)
		h.waitRunning(pod.UID, "init", 1)
		h.prov.run(t, "init", 1).exit(1)
		cs := h.waitWaiting(pod.UID, "init", "CrashLoopBackOff")
		if cs.RestartCount != 1 || cs.LastTerminationState.Terminated == nil {
			t.Errorf("init = %+v", cs)
		}
		if st := h.current(pod); st.Phase != v1.PodPending {
			t.Errorf("phase = %s, want Pending while init fails", st.Phase)
		}
		h.clock.advance(t, 10*time.Second)
		h.prov.run(t, "init", 2).exit(0)
		h.prov.run(t, "app", 0)
		h.waitPhase(pod.UID, v1.PodRunning)
	})
}

func TestSidecar(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	pod := newPod("sidecar", v1.RestartPolicyOnFailure, withSidecar("proxy"), withInit("setup"))
	h.start(pod)

	// The sidecar starts first and keeps running while the next init
	// container and the app run.
	proxy := h.prov.run(t, "proxy", 0)
	h.prov.run(t, "setup", 0).exit(0)
	app := h.prov.run(t, "app", 0)
	s := h.waitPhase(pod.UID, v1.PodRunning)
	if c := containerStatus(s, "proxy"); c.State.Running == nil || !c.Ready {
		t.Errorf("proxy = %+v", c)
	}
	if c := condition(s, v1.PodInitialized); c.Status != v1.ConditionTrue {
		t.Errorf("Initialized = %+v", c)
	}
	if c := condition(s, v1.PodReady); c.Status != v1.ConditionTrue {
		t.Errorf("Ready = %+v", c)
	}

	// When the app completes, the sidecar is stopped and the pod succeeds.
	app.exit(0)
	s = h.waitPhase(pod.UID, v1.PodSucceeded)
	if stops := proxy.stopped(); len(stops) != 1 {
		t.Errorf("sidecar stopped %v", stops)
	}
	if c := containerStatus(s, "proxy"); c.State.Terminated == nil {
		t.Errorf("proxy = %s, want terminated", stateOf(c))
	}
	if h.prov.runCount("proxy") != 1 {
		t.Error("sidecar restarted after the pod completed")
	}
	h.waitEvents("Normal Killing Stopping container proxy")
}

func TestSidecarRestartsWhileAppRuns(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	pod := newPod("sidecar-crash", v1.RestartPolicyNever, withSidecar("proxy"))
	h.start(pod)
	h.prov.run(t, "proxy", 0)
	h.prov.run(t, "app", 0)
	h.waitPhase(pod.UID, v1.PodRunning)
	// A sidecar restarts whatever the pod's restartPolicy.
	h.prov.run(t, "proxy", 0).exit(1)
	h.waitRunning(pod.UID, "proxy", 1)
	if st := h.current(pod); st.Phase != v1.PodRunning {
		t.Errorf("phase = %s", st.Phase)
	}
}

func TestImagePullBackOff(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	pod := newPod("pull", v1.RestartPolicyAlways)
	pullErr := fmt.Errorf("%w: registry.example answered 503", provider.ErrImagePull)
	h.prov.failPulls(testImage, pullErr, pullErr)
	h.start(pod)

	// The failure shows as ErrImagePull, then, until the back-off ends, as
	// ImagePullBackOff. The status echo from the API wakes the worker.
	cs := h.waitWaiting(pod.UID, "app", "ImagePullBackOff")
	if want := fmt.Sprintf("Back-off pulling image %q: %s", testImage, pullErr); cs.State.Waiting.Message != want {
		t.Errorf("message = %q, want %q", cs.State.Waiting.Message, want)
	}
	if st := h.current(pod); st.Phase != v1.PodPending {
		t.Errorf("phase = %s", st.Phase)
	}
	h.clock.advance(t, 10*time.Second)
	h.waitEvents(
		"Warning Failed Error: ErrImagePull", `Normal BackOff`,
		"Warning Failed Error: ErrImagePull", `Normal BackOff`)
	if n := h.prov.pullCount(); n != 2 {
		t.Fatalf("%d pulls, want 2", n)
	}
	h.waitWaiting(pod.UID, "app", "ImagePullBackOff")
	h.clock.advance(t, 20*time.Second)
	h.waitRunning(pod.UID, "app", 0)
	// A status written during the back-off is stable: the status echo does
	// not make the worker write again and again.
	if n := len(h.patches()); n > 12 {
		t.Errorf("%d status patches for two failed pulls:\n%s", n, strings.Join(h.patches(), "\n"))
	}
	got := h.waitEvents(
		`Normal Pulling Pulling image "`+testImage+`"`,
		`Warning Failed Failed to pull image "`+testImage+`": `+pullErr.Error(),
		"Warning Failed Error: ErrImagePull",
		`Normal BackOff Back-off pulling image "`+testImage+`"`,
		`Normal Pulling Pulling image "`+testImage+`"`,
		"Warning Failed Error: ErrImagePull",
		`Normal BackOff Back-off pulling image "`+testImage+`"`,
		`Normal Pulling Pulling image "`+testImage+`"`,
		`Normal Pulled Successfully pulled image "`+testImage+`"`,
		"Normal Created Created container: app",
		"Normal Started Started container app",
	)
	if n := strings.Count(strings.Join(got, "\n"), "Normal BackOff"); n != 2 {
		t.Errorf("%d BackOff events, want one per back-off:\n%s", n, strings.Join(got, "\n"))
	}
}

func TestImageNeverPull(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	pod := newPod("neverpull", v1.RestartPolicyAlways, func(p *v1.Pod) {
		p.Spec.Containers[0].ImagePullPolicy = v1.PullNever
	})
	h.prov.failPulls(testImage, fmt.Errorf("%w: %s", provider.ErrImageNeverPull, testImage))
	h.start(pod)
	want := fmt.Sprintf("Container image %q is not present with pull policy of Never", testImage)
	h.waitEvents("Warning ErrImageNeverPull " + want)
	// The reason stays ErrImageNeverPull (the kubelet never reports
	// ImagePullBackOff for it), also once the status echo and other
	// updates woke the worker.
	waitFor(t, "API status written", func() error {
		p, err := h.apiPod(pod)
		if err != nil {
			return err
		}
		if cs := containerStatus(p.Status, "app"); cs.State.Waiting == nil || cs.State.Waiting.Reason != "ErrImageNeverPull" {
			return fmt.Errorf("API app = %s", stateOf(cs))
		}
		return nil
	})
	h.update(pod, func(p *v1.Pod) { p.Labels = map[string]string{"poke": "1"} })
	waitFor(t, "the worker to see the update", func() error {
		if p := h.mgr.Pod(pod.Namespace, pod.Name); p == nil || p.Labels["poke"] != "1" {
			return errors.New("not in the cache yet")
		}
		return nil
	})
	cs := h.waitWaiting(pod.UID, "app", "ErrImageNeverPull")
	if cs.State.Waiting.Message != want {
		t.Errorf("message = %q, want %q", cs.State.Waiting.Message, want)
	}
	// The image is looked for again after the back-off, without a Pulling
	// event.
	h.clock.advance(t, 10*time.Second)
	h.waitRunning(pod.UID, "app", 0)
	for _, e := range h.allEvents() {
		if strings.Contains(e, "Pulling") || strings.Contains(e, "BackOff") {
			t.Errorf("event %q for pull policy Never", e)
		}
	}
	if n := h.prov.pullCount(); n != 2 {
		t.Errorf("%d pulls, want 2", n)
	}
	if p := h.prov.pulls[0]; p.Policy != v1.PullNever {
		t.Errorf("pull policy = %s", p.Policy)
	}
}

func TestCreateContainerConfigError(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	pod := newPod("config", v1.RestartPolicyAlways)
	// The ConfigMap key appears 15s from now; until then every try fails.
	appears := h.clock.Now().Add(15 * time.Second)
	errMissing := errors.New(`couldn't find key LEVEL in ConfigMap default/settings`)
	h.builder.setEnvErr(func(*v1.Container) error {
		if h.clock.Now().Before(appears) {
			return errMissing
		}
		return nil
	})
	h.start(pod)
	cs := h.waitWaiting(pod.UID, "app", "CreateContainerConfigError")
	if cs.State.Waiting.Message != errMissing.Error() {
		t.Errorf("message = %q", cs.State.Waiting.Message)
	}
	if st := h.current(pod); st.Phase != v1.PodPending {
		t.Errorf("phase = %s", st.Phase)
	}
	h.clock.advance(t, 10*time.Second)
	h.waitWaiting(pod.UID, "app", "CreateContainerConfigError")
	h.clock.advance(t, 10*time.Second)
	h.waitRunning(pod.UID, "app", 0)
	got := h.waitEvents("Warning Failed Error: "+errMissing.Error(), "Normal Created", "Normal Started")
	if n := strings.Count(strings.Join(got, "\n"), "Warning Failed"); n != 1 {
		t.Errorf("%d Failed events for one unchanged error, want 1", n)
	}
}

func TestStartContainerErrors(t *testing.T) {
	for _, tc := range []struct {
		err    error
		reason string
	}{
		{fmt.Errorf("%w: module has no _start", provider.ErrCreateContainer), "CreateContainerError"},
		{fmt.Errorf("%w: instantiating: unknown import", provider.ErrStartContainer), "RunContainerError"},
	} {
		t.Run(tc.reason, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			pod := newPod("start", v1.RestartPolicyAlways)
			// The provider's lock is held: starts counts this one.
			h.prov.setStartErr(func(provider.ContainerConfig) error {
				if len(h.prov.starts) <= 2 {
					return tc.err
				}
				return nil
			})
			h.start(pod)
			cs := h.waitWaiting(pod.UID, "app", tc.reason)
			if cs.State.Waiting.Message != tc.err.Error() || cs.RestartCount != 0 {
				t.Errorf("app = %+v", cs)
			}
			h.waitEvents("Warning Failed Error: " + tc.err.Error())
			// The starts back off as restarts do, whatever wakes the
			// worker meanwhile (here the status echo from the API).
			h.waitAPIPhase(pod, v1.PodPending)
			h.clock.advance(t, 10*time.Second)
			waitFor(t, "the second start", func() error {
				if n := h.prov.startCount(); n != 2 {
					return fmt.Errorf("%d starts", n)
				}
				return nil
			})
			h.waitWaiting(pod.UID, "app", tc.reason)
			h.clock.advance(t, 20*time.Second)
			h.waitRunning(pod.UID, "app", 0)
		})
	}
}

func TestFailedMount(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	pod := newPod("mount", v1.RestartPolicyAlways)
	// The ConfigMap appears 5s from now.
	appears := h.clock.Now().Add(5 * time.Second)
	h.vols.setErr(func() error {
		if h.clock.Now().Before(appears) {
			return fmt.Errorf("configmap %q: %w", "settings", ErrVolumeSourceMissing)
		}
		return nil
	})
	h.start(pod)
	s := h.waitStatus(pod.UID, "a status", func(v1.PodStatus) error { return nil })
	if s.Phase != v1.PodPending {
		t.Errorf("phase = %s", s.Phase)
	}
	if c := condition(s, v1.PodReadyToStartContainers); c.Status != v1.ConditionFalse {
		t.Errorf("PodReadyToStartContainers = %+v", c)
	}
	if w := containerStatus(s, "app").State.Waiting; w == nil || w.Reason != "ContainerCreating" {
		t.Errorf("app = %s", stateOf(containerStatus(s, "app")))
	}
	h.waitEvents(`Warning FailedMount MountVolume.SetUp failed: configmap "settings": volume source missing`)
	h.clock.advance(t, 5*time.Second)
	h.waitRunning(pod.UID, "app", 0)
	if c := condition(h.current(pod), v1.PodReadyToStartContainers); c.Status != v1.ConditionTrue {
		t.Errorf("PodReadyToStartContainers = %+v", c)
	}
}

func TestContainerCreatingShownWhilePulling(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.prov.blockPulls = make(chan struct{})
	pod := newPod("slowpull", v1.RestartPolicyAlways)
	h.start(pod)
	// While the image downloads, the pod reports where it is, as the
	// kubelet does before it pulls.
	h.waitWaiting(pod.UID, "app", "ContainerCreating")
	if st := h.current(pod); st.Phase != v1.PodPending || st.HostIP == "" || st.StartTime == nil {
		t.Errorf("status while pulling = %s hostIP=%q startTime=%v", describe(st), st.HostIP, st.StartTime)
	}
	waitFor(t, "the status written while pulling", func() error {
		p, err := h.apiPod(pod)
		if err != nil {
			return err
		}
		if cs := containerStatus(p.Status, "app"); cs.State.Waiting == nil || cs.State.Waiting.Reason != "ContainerCreating" || p.Status.HostIP == "" {
			return fmt.Errorf("API status: %s", describe(p.Status))
		}
		return nil
	})
	close(h.prov.blockPulls)
	h.waitRunning(pod.UID, "app", 0)
}
