package e2e

import (
	"context"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// A run-to-completion pod goes Pending → Running → Succeeded on the watch,
// with its output in the log file and its events telling the story.
func TestPodRunsToCompletion(t *testing.T) {
	t.Parallel()
	n := podNode(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	pod := createPod(ctx, t, wasmPod(n.Name, testmod(t), "echo", "hello from wasm", "stderr", "to stderr", "sleep", "2s", "echo", "done"))
	phases, final := watchPod(ctx, t, pod, 2*time.Minute, isPhase(v1.PodSucceeded, v1.PodFailed))
	if want := []v1.PodPhase{v1.PodPending, v1.PodRunning, v1.PodSucceeded}; !slices.Equal(phases, want) {
		t.Errorf("phases %v, want %v\n%s", phases, want, describeStatus(final))
	}
	cs := final.Status.ContainerStatuses[0]
	term := cs.State.Terminated
	if term == nil || term.ExitCode != 0 || term.Reason != "Completed" || term.StartedAt.IsZero() || term.FinishedAt.Before(&term.StartedAt) {
		t.Errorf("container state %+v", cs.State)
	}
	if cs.RestartCount != 0 || cs.Ready || !strings.HasPrefix(cs.ContainerID, "wasmtime://") || !strings.Contains(cs.ImageID, "sha256:") {
		t.Errorf("container status %+v", cs)
	}
	if final.Status.PodIP != "127.0.0.1" || final.Status.HostIP != "127.0.0.1" || final.Status.StartTime == nil {
		t.Errorf("pod IPs %q %q, start time %v", final.Status.PodIP, final.Status.HostIP, final.Status.StartTime)
	}
	for _, c := range final.Status.Conditions {
		if c.Type == v1.PodReady && (c.Status != v1.ConditionFalse || c.Reason != "PodCompleted") {
			t.Errorf("Ready condition %+v, want False/PodCompleted", c)
		}
	}
	// Each stream keeps its order; the two are separate pipes, as with
	// any container runtime.
	got := logText(containerLog(t, n, final, "main", 0))
	stdout := slices.DeleteFunc(slices.Clone(got), func(l string) bool { return !strings.HasPrefix(l, "stdout: ") })
	if want := []string{"stdout: hello from wasm", "stdout: done"}; !slices.Equal(stdout, want) || !slices.Contains(got, "stderr: to stderr") || len(got) != 3 {
		t.Errorf("log lines %q", got)
	}
	// Pulling appears only when the image is fetched: with pull policy
	// IfNotPresent and the module already on the node, Pulled says
	// "already present on machine", as with the kubelet.
	reasons := eventReasons(events(ctx, t, final))
	if !isSubsequence([]string{"Pulled", "Created", "Started"}, reasons) || !slices.Contains(reasons, "Scheduled") {
		t.Errorf("events %v", reasons)
	}
	out, err := exec.CommandContext(ctx, cluster.Binaries.Kubectl, "--kubeconfig", cluster.AdminKubeconfig, "describe", "pod", final.Name).CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl describe: %v\n%s", err, out)
	}
	text := string(out)
	last := -1
	for _, w := range []string{"Pulled", "Created", "Started"} {
		i := strings.Index(text, "  "+w+" ")
		if i < 0 || i < last {
			t.Errorf("kubectl describe does not show %s after the previous events:\n%s", w, text)
			break
		}
		last = i
	}
}

// Exit codes are kept exactly; restartPolicy Never fails the pod.
func TestPodExitCodeAndNever(t *testing.T) {
	t.Parallel()
	n := podNode(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	pod := createPod(ctx, t, wasmPod(n.Name, testmod(t), "stderr", "failing", "exit", "3"))
	_, final := watchPod(ctx, t, pod, 2*time.Minute, isPhase(v1.PodSucceeded, v1.PodFailed))
	if final.Status.Phase != v1.PodFailed {
		t.Fatalf("phase %s, want Failed", final.Status.Phase)
	}
	term := final.Status.ContainerStatuses[0].State.Terminated
	if term == nil || term.ExitCode != 3 || term.Reason != "Error" {
		t.Errorf("terminated %+v, want exit code 3, reason Error", term)
	}
}

// OnFailure restarts a failing container with a growing back-off and
// reports CrashLoopBackOff with the last termination.
func TestPodOnFailureCrashLoopBackOff(t *testing.T) {
	t.Parallel()
	n := podNode(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	spec := wasmPod(n.Name, testmod(t), "echo", "try", "exit", "1")
	spec.Spec.RestartPolicy = v1.RestartPolicyOnFailure
	pod := createPod(ctx, t, spec)
	var starts []time.Time
	_, final := watchPod(ctx, t, pod, 2*time.Minute, func(p *v1.Pod) bool {
		if len(p.Status.ContainerStatuses) == 0 {
			return false
		}
		cs := p.Status.ContainerStatuses[0]
		if t := cs.LastTerminationState.Terminated; t != nil && (len(starts) == 0 || !starts[len(starts)-1].Equal(t.StartedAt.Time)) {
			starts = append(starts, t.StartedAt.Time)
		}
		return cs.RestartCount >= 3 && cs.State.Waiting != nil && cs.State.Waiting.Reason == "CrashLoopBackOff"
	})
	cs := final.Status.ContainerStatuses[0]
	if final.Status.Phase != v1.PodRunning {
		t.Errorf("phase %s, want Running (restarting)", final.Status.Phase)
	}
	if last := cs.LastTerminationState.Terminated; last == nil || last.ExitCode != 1 {
		t.Errorf("last termination %+v, want exit code 1", last)
	}
	if !strings.Contains(cs.State.Waiting.Message, "back-off") {
		t.Errorf("waiting message %q", cs.State.Waiting.Message)
	}
	if len(starts) >= 3 {
		gap1, gap2 := starts[1].Sub(starts[0]), starts[2].Sub(starts[1])
		t.Logf("runs started at +0, +%v, +%v", gap1, gap1+gap2)
		if gap2 <= gap1 {
			t.Errorf("back-off did not grow: gaps %v then %v", gap1, gap2)
		}
	}
	if !slices.Contains(eventReasons(events(ctx, t, final)), "BackOff") {
		t.Errorf("no BackOff event")
	}
}

// Init containers run one after another before the app container; a
// failing init container fails a Never pod and its app never starts.
func TestPodInitContainers(t *testing.T) {
	t.Parallel()
	n := podNode(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	img := testmod(t)
	spec := wasmPod(n.Name, img, "echo", "app")
	spec.Spec.InitContainers = []v1.Container{
		{Name: "init-1", Image: img, Args: []string{"sleep", "1s", "echo", "one"}},
		{Name: "init-2", Image: img, Args: []string{"echo", "two"}},
	}
	pod := createPod(ctx, t, spec)
	_, final := watchPod(ctx, t, pod, 2*time.Minute, isPhase(v1.PodSucceeded, v1.PodFailed))
	if final.Status.Phase != v1.PodSucceeded {
		t.Fatalf("phase %s:\n%s", final.Status.Phase, describeStatus(final))
	}
	i1 := final.Status.InitContainerStatuses[0].State.Terminated
	i2 := final.Status.InitContainerStatuses[1].State.Terminated
	app := final.Status.ContainerStatuses[0].State.Terminated
	if i1 == nil || i2 == nil || app == nil || i2.StartedAt.Before(&i1.FinishedAt) || app.StartedAt.Before(&i2.FinishedAt) {
		t.Errorf("not in order: init-1 %+v, init-2 %+v, app %+v", i1, i2, app)
	}

	failing := wasmPod(n.Name, img, "echo", "app")
	failing.Spec.InitContainers = []v1.Container{{Name: "init", Image: img, Args: []string{"exit", "7"}}}
	pod = createPod(ctx, t, failing)
	_, final = watchPod(ctx, t, pod, 2*time.Minute, isPhase(v1.PodSucceeded, v1.PodFailed))
	if final.Status.Phase != v1.PodFailed {
		t.Fatalf("phase %s, want Failed:\n%s", final.Status.Phase, describeStatus(final))
	}
	if term := final.Status.InitContainerStatuses[0].State.Terminated; term == nil || term.ExitCode != 7 {
		t.Errorf("init container %+v", final.Status.InitContainerStatuses[0].State)
	}
	if w := final.Status.ContainerStatuses[0].State.Waiting; w == nil || w.Reason != "PodInitializing" {
		t.Errorf("app container %+v, want waiting PodInitializing", final.Status.ContainerStatuses[0].State)
	}
	for _, c := range final.Status.Conditions {
		if c.Type == v1.PodInitialized && (c.Status != v1.ConditionFalse || c.Reason != "ContainersNotInitialized") {
			t.Errorf("Initialized %+v", c)
		}
	}
}

// Deleting a running pod stops its module within the grace period, however
// long it sleeps, and the pod object goes.
func TestPodGracefulDelete(t *testing.T) {
	t.Parallel()
	n := podNode(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	for _, tc := range []struct{ name, action string }{{"sleep", "sleep"}, {"spin", "spin"}} {
		t.Run(tc.name, func(t *testing.T) {
			arg := "1h"
			if tc.action == "spin" {
				arg = "forever"
			}
			pod := createPod(ctx, t, wasmPod(n.Name, testmod(t), "echo", "up", tc.action, arg))
			_, running := watchPod(ctx, t, pod, 2*time.Minute, isPhase(v1.PodRunning))
			grace := int64(2)
			start := time.Now()
			if err := cluster.AdminClient().CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{GracePeriodSeconds: &grace}); err != nil {
				t.Fatal(err)
			}
			watchPod(ctx, t, running, time.Minute, func(*v1.Pod) bool { return false }) // until Deleted
			took := time.Since(start)
			t.Logf("%s pod with grace 2s gone after %v", tc.name, took.Round(10*time.Millisecond))
			if took > 15*time.Second {
				t.Errorf("deleting took %v with a 2 s grace period", took)
			}
			reasons := eventReasons(events(ctx, t, running))
			if !slices.Contains(reasons, "Killing") {
				t.Errorf("no Killing event: %v", reasons)
			}
		})
	}
}

// activeDeadlineSeconds fails a pod that runs too long.
func TestPodActiveDeadline(t *testing.T) {
	t.Parallel()
	n := podNode(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	spec := wasmPod(n.Name, testmod(t), "sleep", "1h")
	deadline := int64(3)
	spec.Spec.ActiveDeadlineSeconds = &deadline
	pod := createPod(ctx, t, spec)
	_, final := watchPod(ctx, t, pod, 2*time.Minute, isPhase(v1.PodSucceeded, v1.PodFailed))
	if final.Status.Phase != v1.PodFailed || final.Status.Reason != "DeadlineExceeded" {
		t.Errorf("phase %s reason %q, want Failed/DeadlineExceeded", final.Status.Phase, final.Status.Reason)
	}
}

// A pod that asks for more memory than the node has is rejected with the
// kubelet's reason.
func TestPodRejectedOutOfMemory(t *testing.T) {
	t.Parallel()
	n := podNode(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	spec := wasmPod(n.Name, testmod(t), "echo", "never")
	spec.Spec.NodeSelector = nil
	spec.Spec.NodeName = n.Name // bypass the scheduler, which would not bind it
	spec.Spec.Containers[0].Resources.Requests = v1.ResourceList{v1.ResourceMemory: resource.MustParse("1Ti")}
	pod := createPod(ctx, t, spec)
	_, final := watchPod(ctx, t, pod, time.Minute, isPhase(v1.PodFailed, v1.PodSucceeded))
	if final.Status.Phase != v1.PodFailed || final.Status.Reason != "OutOfmemory" || !strings.Contains(final.Status.Message, "Node didn't have enough resource: memory") {
		t.Errorf("status %q %q %q", final.Status.Phase, final.Status.Reason, final.Status.Message)
	}
	if !slices.Contains(eventReasons(events(ctx, t, final)), "OutOfmemory") {
		t.Errorf("no OutOfmemory event")
	}
}

// isSubsequence reports whether want appears in got in order.
func isSubsequence(want, got []string) bool {
	i := 0
	for _, g := range got {
		if i < len(want) && g == want[i] {
			i++
		}
	}
	return i == len(want)
}
