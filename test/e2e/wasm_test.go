package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/krustlet/krustlet-go/test/framework/wasmbuild"
)

// runToEnd runs a pod to a terminal phase and returns it.
func runToEnd(ctx context.Context, t *testing.T, pod *v1.Pod) *v1.Pod {
	t.Helper()
	_, final := watchPod(ctx, t, createPod(ctx, t, pod), 2*time.Minute, isPhase(v1.PodSucceeded, v1.PodFailed))
	return final
}

// The module sees its argv and environment; argv[0] is the container
// name when the pod gives no command.
func TestWasmArgsAndEnv(t *testing.T) {
	t.Parallel()
	n := podNode(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	spec := wasmPod(n.Name, testmod(t), "args", "assert-env", "GREETING=hello wasm", "env", "GREETING")
	spec.Spec.Containers[0].Env = []v1.EnvVar{{Name: "GREETING", Value: "hello wasm"}}
	final := runToEnd(ctx, t, spec)
	if final.Status.Phase != v1.PodSucceeded {
		t.Fatalf("pod %s:\n%s", final.Status.Phase, describeStatus(final))
	}
	got := logText(containerLog(t, n, final, "main", 0))
	want := []string{"stdout: main", "stdout: args", "stdout: assert-env", "stdout: GREETING=hello wasm", "stdout: env", "stdout: GREETING", "stdout: hello wasm"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("output %q, want %q", got, want)
	}
}

// A trap ends the container with an error whose message is the trap text
// and the Wasm backtrace, without wasmtime's Rust backtrace.
func TestWasmTrap(t *testing.T) {
	t.Parallel()
	n := podNode(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	final := runToEnd(ctx, t, wasmPod(n.Name, testmod(t), "trap"))
	term := final.Status.ContainerStatuses[0].State.Terminated
	if final.Status.Phase != v1.PodFailed || term == nil || term.ExitCode == 0 || term.Reason != "Error" ||
		!strings.Contains(strings.ToLower(term.Message), "out of bounds") || strings.Contains(strings.ToLower(term.Message), "stack backtrace") {
		t.Errorf("phase %s, terminated %+v", final.Status.Phase, term)
	}
}

// A module that allocates past its memory limit is OOMKilled; the node is
// fine and runs the next pod.
func TestWasmMemoryLimit(t *testing.T) {
	t.Parallel()
	n := podNode(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	spec := wasmPod(n.Name, testmod(t), "alloc", "512")
	spec.Spec.Containers[0].Resources.Limits = v1.ResourceList{v1.ResourceMemory: resource.MustParse("64Mi")}
	final := runToEnd(ctx, t, spec)
	term := final.Status.ContainerStatuses[0].State.Terminated
	if term == nil || term.Reason != "OOMKilled" || term.ExitCode != 137 {
		t.Errorf("terminated %+v, want OOMKilled 137", term)
	}
	if after := runToEnd(ctx, t, wasmPod(n.Name, testmod(t), "echo", "still fine")); after.Status.Phase != v1.PodSucceeded {
		t.Errorf("next pod %s", after.Status.Phase)
	}
	waitForNodeReady(ctx, t, cluster.AdminClient(), n.Name, v1.ConditionTrue, time.Second)
}

// A read-only mount refuses writes, a writable one takes them, and nothing
// outside the mounts is reachable.
func TestWasmMountsAndSandbox(t *testing.T) {
	t.Parallel()
	n := podNode(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	img := testmod(t)
	withVolume := func(readOnly bool, args ...string) *v1.Pod {
		p := wasmPod(n.Name, img, args...)
		p.Spec.Volumes = []v1.Volume{{Name: "data", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}}}
		p.Spec.Containers[0].VolumeMounts = []v1.VolumeMount{{Name: "data", MountPath: "/data", ReadOnly: readOnly}}
		return p
	}
	cases := []struct {
		name string
		pod  *v1.Pod
		code int32
	}{
		{"writable mount", withVolume(false, "write", "/data/f", "x", "assert-file", "/data/f", "x"), 0},
		{"read-only mount", withVolume(true, "write", "/data/f", "x"), 11},
		{"host file outside the mounts", withVolume(false, "read", "/etc/hostname"), 1},
		{"parent of a mount", withVolume(false, "read", "/data/../../etc/hostname"), 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			final := runToEnd(ctx, t, tc.pod)
			term := final.Status.ContainerStatuses[0].State.Terminated
			if term == nil || term.ExitCode != tc.code {
				t.Errorf("exit %+v, want code %d; log:\n%s", term, tc.code, containerLog(t, n, final, "main", 0))
			}
		})
	}
}

// Many pods at once: all run to completion.
func TestWasmConcurrentPods(t *testing.T) {
	t.Parallel()
	n := podNode(t)
	const count = 200
	ctx, cancel := context.WithTimeout(t.Context(), 8*time.Minute)
	defer cancel()
	img := testmod(t)
	client := cluster.AdminClient()
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, count)
	names := make([]string, count)
	for i := range count {
		p := wasmPod(n.Name, img, "sleep", "500ms", "echo", fmt.Sprint(i))
		p.Name = fmt.Sprintf("many-%03d-%s", i, p.Name[2:])
		names[i] = p.Name
		wg.Go(func() {
			if _, err := client.CoreV1().Pods(p.Namespace).Create(ctx, p, metav1.CreateOptions{}); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		zero := int64(0)
		for _, name := range names {
			_ = client.CoreV1().Pods(metav1.NamespaceDefault).Delete(context.Background(), name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
		}
	})
	err := wait.PollUntilContextTimeout(ctx, time.Second, 6*time.Minute, true, func(ctx context.Context) (bool, error) {
		list, err := client.CoreV1().Pods(metav1.NamespaceDefault).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil
		}
		done := 0
		for _, p := range list.Items {
			if strings.HasPrefix(p.Name, "many-") {
				if p.Status.Phase == v1.PodFailed {
					return false, fmt.Errorf("pod %s failed:\n%s", p.Name, describeStatus(&p))
				}
				if p.Status.Phase == v1.PodSucceeded {
					done++
				}
			}
		}
		return done == count, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d pods created and run to completion in %v", count, time.Since(start).Round(time.Millisecond))
}

// The agent dies with pods in every phase and starts again: terminal pods
// stay terminal, running containers count as ended by the crash and restart
// by policy, nothing runs twice, and files of a pod deleted meanwhile go.
func TestAgentCrashWithPods(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	client := cluster.AdminClient()
	n := joinNode(t, cluster, "e2e-crash", "--x-allow-local-modules")
	waitForNodeReady(ctx, t, client, n.Name, v1.ConditionTrue, 2*time.Minute)
	img := "fs/" + wasmbuild.MustBuild(t, "testmod")
	succeeded := runToEnd(ctx, t, wasmPod(n.Name, img, "echo", "done"))
	failed := runToEnd(ctx, t, wasmPod(n.Name, img, "exit", "3"))
	gone := runToEnd(ctx, t, wasmPod(n.Name, img, "echo", "deleted while the agent is down"))
	always := wasmPod(n.Name, img, "echo", "up", "sleep", "1h")
	always.Spec.RestartPolicy = v1.RestartPolicyAlways
	_, always = watchPod(ctx, t, createPod(ctx, t, always), 2*time.Minute, isPhase(v1.PodRunning))
	never := wasmPod(n.Name, img, "sleep", "1h")
	_, never = watchPod(ctx, t, createPod(ctx, t, never), 2*time.Minute, isPhase(v1.PodRunning))

	if err := n.Kill(); err != nil {
		t.Fatal(err)
	}
	zero := int64(0)
	if err := client.CoreV1().Pods(gone.Namespace).Delete(ctx, gone.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		t.Fatal(err)
	}
	goneLogs := filepath.Join(n.DataDir, "logs", "pods", fmt.Sprintf("%s_%s_%s", gone.Namespace, gone.Name, gone.UID))
	if _, err := os.Stat(goneLogs); err != nil {
		t.Fatalf("expected logs of the pod before the restart: %v", err)
	}
	if err := n.Restart(); err != nil {
		t.Fatal(err)
	}
	waitForNodeReady(ctx, t, client, n.Name, v1.ConditionTrue, 2*time.Minute)

	_, a := watchPod(ctx, t, always, 2*time.Minute, func(p *v1.Pod) bool {
		cs := p.Status.ContainerStatuses
		return len(cs) == 1 && cs[0].RestartCount == 1 && cs[0].State.Running != nil
	})
	if last := a.Status.ContainerStatuses[0].LastTerminationState.Terminated; last == nil || !strings.Contains(last.Message, "agent restarted") {
		t.Errorf("restarted container's last state %+v", last)
	}
	_, nv := watchPod(ctx, t, never, 2*time.Minute, isPhase(v1.PodFailed, v1.PodSucceeded))
	if nv.Status.Phase != v1.PodFailed {
		t.Errorf("Never pod that was running: %s", nv.Status.Phase)
	}
	for _, p := range []*v1.Pod{succeeded, failed} {
		got, err := client.CoreV1().Pods(p.Namespace).Get(ctx, p.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got.Status.Phase != p.Status.Phase || got.Status.ContainerStatuses[0].RestartCount != 0 {
			t.Errorf("terminal pod %s changed: %s → %s\n%s", p.Name, p.Status.Phase, got.Status.Phase, describeStatus(got))
		}
	}
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		_, err := os.Stat(goneLogs)
		return os.IsNotExist(err), nil
	})
	if err != nil {
		t.Errorf("logs of the pod deleted while the agent was down are still there")
	}
	// One run of the restarted container at a time: its first run's log
	// and the current one, nothing more.
	runs, _ := filepath.Glob(filepath.Join(n.DataDir, "logs", "pods", fmt.Sprintf("%s_%s_%s", a.Namespace, a.Name, a.UID), "main", "*.log"))
	if len(runs) != 2 {
		t.Errorf("log files of the restarted container: %v", runs)
	}
}
