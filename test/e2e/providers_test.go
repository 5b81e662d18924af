package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
)

// runtimeClass creates a RuntimeClass for handler that schedules its pods
// onto the nodes serving it (the handler label) and tolerates the Wasm
// taints, and deletes it when the test ends.
func runtimeClass(ctx context.Context, t *testing.T, name, handler string) {
	t.Helper()
	rc := &nodev1.RuntimeClass{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Handler:    handler,
		Scheduling: &nodev1.Scheduling{
			NodeSelector: map[string]string{"handler.krustlet.dev/" + handler: "true"},
			Tolerations:  []v1.Toleration{{Key: v1.LabelArchStable, Operator: v1.TolerationOpEqual, Value: "wasm32-wasi"}},
		},
	}
	client := cluster.AdminClient().NodeV1().RuntimeClasses()
	if _, err := client.Create(ctx, rc, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating RuntimeClass %s: %v", name, err)
	}
	t.Cleanup(func() { _ = client.Delete(context.Background(), name, metav1.DeleteOptions{}) })
}

// A node serving two handlers runs one pod per RuntimeClass, reports its
// handlers, and leaves a pod whose handler it does not serve Pending with
// FailedCreatePodSandBox.
func TestRuntimeClassRouting(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	suffix := strconv.FormatInt(time.Now().UnixNano()%1e6, 10)
	fast, plain, unserved := "e2e-fast-"+suffix, "e2e-wasmtime-"+suffix, "e2e-unserved-"+suffix
	handlerFast := "fast" + suffix
	runtimeClass(ctx, t, fast, handlerFast)
	runtimeClass(ctx, t, plain, "wasmtime")
	n := joinNode(t, cluster, "e2e-handlers", "--x-allow-local-modules", "--provider=wasmtime", "--runtime-handlers="+handlerFast+"=wasmtime")
	node := waitForNodeReady(ctx, t, cluster.AdminClient(), n.Name, v1.ConditionTrue, 2*time.Minute)

	var handlers []string
	for _, h := range node.Status.RuntimeHandlers {
		handlers = append(handlers, h.Name)
	}
	if want := []string{handlerFast, "wasmtime"}; !slices.Equal(handlers, want) {
		t.Errorf("status.runtimeHandlers = %v, want %v", handlers, want)
	}
	for _, h := range []string{handlerFast, "wasmtime"} {
		if node.Labels["handler.krustlet.dev/"+h] != "true" {
			t.Errorf("label handler.krustlet.dev/%s missing: %v", h, node.Labels)
		}
	}
	if node.Labels[v1.LabelArchStable] != "wasm32-wasi" {
		t.Errorf("a Wasm-only node keeps arch wasm32-wasi, got %q", node.Labels[v1.LabelArchStable])
	}

	// One pod per class, scheduled by the class alone (its nodeSelector and
	// tolerations), pinned to this node so other nodes' wasmtime handler
	// does not take the second one.
	for _, class := range []string{fast, plain} {
		pod := wasmPod(n.Name, testmod(t), "echo", "via "+class)
		pod.Spec.Tolerations = nil
		pod.Spec.RuntimeClassName = ptr.To(class)
		final := runToEnd(ctx, t, pod)
		if final.Status.Phase != v1.PodSucceeded || final.Spec.NodeName != n.Name {
			t.Fatalf("pod of class %s: %s on %q", class, describeStatus(final), final.Spec.NodeName)
		}
		if got := logText(containerLog(t, n, final, "main", 0)); !slices.ContainsFunc(got, func(l string) bool { return strings.HasSuffix(l, "via "+class) }) {
			t.Errorf("pod of class %s logged %q", class, got)
		}
	}

	// A class whose handler this node does not serve: bound to the node by
	// name, the pod stays Pending with the kubelet's event, and is retried.
	rc := &nodev1.RuntimeClass{ObjectMeta: metav1.ObjectMeta{Name: unserved}, Handler: "gvisor"}
	if _, err := cluster.AdminClient().NodeV1().RuntimeClasses().Create(ctx, rc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cluster.AdminClient().NodeV1().RuntimeClasses().Delete(context.Background(), unserved, metav1.DeleteOptions{})
	})
	pod := wasmPod(n.Name, testmod(t), "echo", "never")
	pod.Spec.RuntimeClassName = ptr.To(unserved)
	pod = createPod(ctx, t, pod)
	var failed []v1.Event
	err := wait.PollUntilContextTimeout(ctx, time.Second, time.Minute, true, func(ctx context.Context) (bool, error) {
		failed = failed[:0]
		for _, e := range events(ctx, t, pod) {
			if e.Reason == "FailedCreatePodSandBox" {
				failed = append(failed, e)
			}
		}
		// The back-off starts at 10 s: a second attempt shows the retry.
		return len(failed) > 0 && (failed[0].Count >= 2 || len(failed) >= 2), nil
	})
	if err != nil {
		t.Fatalf("no retried FailedCreatePodSandBox event: %v (%d so far)", err, len(failed))
	}
	want := fmt.Sprintf(`Failed to create pod sandbox: runtime handler not served by this node: RuntimeClass %q has handler "gvisor"; this node serves %s, wasmtime`, unserved, handlerFast)
	if failed[0].Type != v1.EventTypeWarning || failed[0].Message != want {
		t.Errorf("event %s %q, want Warning %q", failed[0].Type, failed[0].Message, want)
	}
	got, err := cluster.AdminClient().CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Status.Phase != v1.PodPending || len(got.Status.ContainerStatuses) != 1 ||
		got.Status.ContainerStatuses[0].State.Waiting == nil || got.Status.ContainerStatuses[0].State.Waiting.Reason != "ContainerCreating" {
		t.Errorf("pod of an unserved handler: %s", describeStatus(got))
	}
}

// A provider that cannot run pods turns the node NotReady with its reason,
// and Ready again once it can.
func TestProviderHealthDrivesNodeReady(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	n := joinNode(t, cluster, "e2e-health")
	waitForNodeReady(ctx, t, cluster.AdminClient(), n.Name, v1.ConditionTrue, 2*time.Minute)

	// The compiled-module cache replaced by a file, as a broken disk
	// would leave it (root ignores permission bits).
	cache := filepath.Join(n.DataDir, "providers", "wasmtime", "compiled")
	if err := os.Rename(cache, cache+".away"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cache, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	node := waitForNodeReady(ctx, t, cluster.AdminClient(), n.Name, v1.ConditionFalse, time.Minute)
	ready := nodeCondition(node, v1.NodeReady)
	if ready.Reason != "KubeletNotReady" || !strings.Contains(ready.Message, "provider wasmtime is not ready: compiled-module cache "+cache+" is not usable") {
		t.Errorf("Ready = %s %q", ready.Reason, ready.Message)
	}

	if err := os.Remove(cache); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(cache+".away", cache); err != nil {
		t.Fatal(err)
	}
	node = waitForNodeReady(ctx, t, cluster.AdminClient(), n.Name, v1.ConditionTrue, time.Minute)
	if ready := nodeCondition(node, v1.NodeReady); ready.Reason != "KubeletReady" {
		t.Errorf("Ready again = %s %q", ready.Reason, ready.Message)
	}
}

func nodeCondition(n *v1.Node, t v1.NodeConditionType) v1.NodeCondition {
	for _, c := range n.Status.Conditions {
		if c.Type == t {
			return c
		}
	}
	return v1.NodeCondition{}
}

// An agent whose node API port is taken exits non-zero with the cause,
// instead of running on without its API.
func TestAgentExitsWhenPortTaken(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	n := joinNode(t, cluster, "e2e-port-taken")
	waitForNodeReady(ctx, t, cluster.AdminClient(), n.Name, v1.ConditionTrue, 2*time.Minute)
	if err := n.Stop(); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(n.Port)))
	if err != nil {
		t.Fatalf("taking the node's port: %v", err)
	}
	defer l.Close()
	logStart := fileSize(n.LogPath())
	start := time.Now()
	if err := n.Restart(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-n.Proc.Done():
	case <-time.After(time.Minute):
		t.Fatalf("the agent still runs %v after starting on a taken port", time.Since(start))
	}
	took := time.Since(start)
	_, exitErr := n.Proc.Exited()
	var ee interface{ ExitCode() int }
	if !errors.As(exitErr, &ee) || ee.ExitCode() == 0 {
		t.Fatalf("exit: %v, want a non-zero exit code", exitErr)
	}
	out := readFrom(n.LogPath(), logStart)
	if !strings.Contains(out, "Error: ") || !strings.Contains(out, "address already in use") {
		t.Errorf("the agent's output does not say why it stopped:\n%s", out)
	}
	t.Logf("the agent exited with code %d %v after it started on a taken port", ee.ExitCode(), took.Round(time.Millisecond))
}

func fileSize(path string) int64 {
	if st, err := os.Stat(path); err == nil {
		return st.Size()
	}
	return 0
}

// readFrom returns a file's content from offset on.
func readFrom(path string, offset int64) string {
	b, err := os.ReadFile(path)
	if err != nil || offset > int64(len(b)) {
		return ""
	}
	return string(b[offset:])
}
