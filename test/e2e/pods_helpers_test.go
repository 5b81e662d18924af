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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/krustlet/krustlet-go/test/framework/krustlet"
	"github.com/krustlet/krustlet-go/test/framework/wasmbuild"
)

var (
	podNodeOnce sync.Once
	podNodeErr  error
	sharedNode  *krustlet.Node
)

// podNode is a krustlet node shared by the pod tests, joined on first use
// and stopped by TestMain.
func podNode(t *testing.T) *krustlet.Node {
	t.Helper()
	podNodeOnce.Do(func() {
		dir, err := os.MkdirTemp("", "krustlet-e2e-node-")
		if err != nil {
			podNodeErr = err
			return
		}
		sharedNode, podNodeErr = krustlet.Join(krustletBin, cluster, krustlet.Options{
			Name:    "e2e-pods",
			DataDir: filepath.Join(dir, "data"),
			LogDir:  filepath.Join(dir, "logs"),
			Extra:   []string{"--x-allow-local-modules", "--max-pods=400", "--kube-api-qps=100", "--kube-api-burst=200"},
		})
		if podNodeErr == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			waitForNodeReady(ctx, t, cluster.AdminClient(), sharedNode.Name, v1.ConditionTrue, 2*time.Minute)
		}
	})
	if podNodeErr != nil {
		t.Fatal(podNodeErr)
	}
	return sharedNode
}

// stopSharedNode stops the shared pod node, if one was started.
func stopSharedNode() error {
	if sharedNode == nil {
		return nil
	}
	return sharedNode.Cleanup()
}

// testmod returns the image reference of the general-purpose test module.
func testmod(t *testing.T) string {
	return "fs/" + wasmbuild.MustBuild(t, "testmod")
}

// wasmPod is a pod for node that runs image with args in one container
// named "main". It tolerates the Wasm taints and selects the node by host
// name, so the scheduler binds it.
func wasmPod(node, image string, args ...string) *v1.Pod {
	f := false
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p-" + rand.String(8), Namespace: metav1.NamespaceDefault},
		Spec: v1.PodSpec{
			NodeSelector:                 map[string]string{v1.LabelHostname: node},
			Tolerations:                  []v1.Toleration{{Key: "kubernetes.io/arch", Operator: v1.TolerationOpEqual, Value: "wasm32-wasi"}},
			AutomountServiceAccountToken: &f,
			RestartPolicy:                v1.RestartPolicyNever,
			Containers:                   []v1.Container{{Name: "main", Image: image, Args: args}},
		},
	}
}

// createPod creates pod and deletes it (at once) when the test ends.
func createPod(ctx context.Context, t *testing.T, pod *v1.Pod) *v1.Pod {
	t.Helper()
	created, err := cluster.AdminClient().CoreV1().Pods(pod.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating pod: %v", err)
	}
	t.Cleanup(func() {
		zero := int64(0)
		_ = cluster.AdminClient().CoreV1().Pods(pod.Namespace).Delete(context.Background(), pod.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
	})
	return created
}

// watchPod follows a pod until done says so, returning the phases it went
// through in order (each once) and the last version.
func watchPod(ctx context.Context, t *testing.T, pod *v1.Pod, timeout time.Duration, done func(*v1.Pod) bool) ([]v1.PodPhase, *v1.Pod) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := cluster.AdminClient()
	w, err := client.CoreV1().Pods(pod.Namespace).Watch(ctx, metav1.ListOptions{
		FieldSelector:   fields.OneTermEqualSelector("metadata.name", pod.Name).String(),
		ResourceVersion: pod.ResourceVersion,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	var phases []v1.PodPhase
	last := pod
	note := func(p *v1.Pod) {
		last = p
		if len(phases) == 0 || phases[len(phases)-1] != p.Status.Phase {
			phases = append(phases, p.Status.Phase)
		}
	}
	note(pod)
	if done(pod) {
		return phases, pod
	}
	for {
		select {
		case <-ctx.Done():
			t.Fatalf("pod %s: condition not reached in %v; phases %v; last status:\n%s", pod.Name, timeout, phases, describeStatus(last))
		case ev, ok := <-w.ResultChan():
			if !ok {
				t.Fatalf("watch of pod %s ended; phases %v; last status:\n%s", pod.Name, phases, describeStatus(last))
			}
			if ev.Type == watch.Deleted {
				return phases, last
			}
			p, ok := ev.Object.(*v1.Pod)
			if !ok {
				continue
			}
			note(p)
			if done(p) {
				return phases, p
			}
		}
	}
}

func isPhase(phases ...v1.PodPhase) func(*v1.Pod) bool {
	return func(p *v1.Pod) bool {
		for _, ph := range phases {
			if p.Status.Phase == ph {
				return true
			}
		}
		return false
	}
}

func describeStatus(p *v1.Pod) string {
	var b strings.Builder
	fmt.Fprintf(&b, "phase=%s reason=%q message=%q\n", p.Status.Phase, p.Status.Reason, p.Status.Message)
	for _, list := range [][]v1.ContainerStatus{p.Status.InitContainerStatuses, p.Status.ContainerStatuses} {
		for _, c := range list {
			fmt.Fprintf(&b, "  %s: restarts=%d state=%+v last=%+v\n", c.Name, c.RestartCount, c.State, c.LastTerminationState)
		}
	}
	return b.String()
}

// containerLog reads a container's current log file from the node's data
// dir: lines in the CRI format.
func containerLog(t *testing.T, n *krustlet.Node, pod *v1.Pod, container string, run int) string {
	t.Helper()
	path := filepath.Join(n.DataDir, "logs", "pods", fmt.Sprintf("%s_%s_%s", pod.Namespace, pod.Name, pod.UID), container, fmt.Sprintf("%d.log", run))
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading container log: %v", err)
	}
	return string(data)
}

// logText strips the CRI prefix (time, stream, tag) from log lines.
func logText(cri string) []string {
	var out []string
	for _, line := range strings.Split(strings.TrimRight(cri, "\n"), "\n") {
		parts := strings.SplitN(line, " ", 4)
		if len(parts) == 4 {
			out = append(out, parts[1]+": "+parts[3])
		}
	}
	return out
}

func events(ctx context.Context, t *testing.T, pod *v1.Pod) []v1.Event {
	t.Helper()
	list, err := cluster.AdminClient().CoreV1().Events(pod.Namespace).List(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("involvedObject.uid", string(pod.UID)).String(),
	})
	if err != nil {
		t.Fatal(err)
	}
	return list.Items
}

func eventReasons(evs []v1.Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Reason)
	}
	return out
}
