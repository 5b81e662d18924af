package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/utils/ptr"

	"github.com/krustlet/krustlet-go/test/framework/containerd"
	"github.com/krustlet/krustlet-go/test/framework/images"
	"github.com/krustlet/krustlet-go/test/framework/krustlet"
	"github.com/krustlet/krustlet-go/test/framework/registry"
)

// criNode starts a registry with the test images, a containerd of the
// test's own, and a node running both providers (wasmtime the default, cri
// through RuntimeClass handler "cri"). It returns the node, the runtime
// and the ctrtest image reference.
func criNode(t *testing.T, name string) (*krustlet.Node, *containerd.Containerd, string) {
	t.Helper()
	if err := containerd.Check(); err != nil {
		if os.Getenv(containerd.RequireEnv) != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	reg, err := registry.Start(t.Context(), registry.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Stop() })
	ctrd := containerd.MustStart(t, containerd.Options{Dir: t.TempDir(), RegistryHost: reg.Host})
	image := images.MustPush(t, reg.Host, images.CtrTest)
	n := joinNode(t, cluster, name, "--x-allow-local-modules", "--provider=wasmtime,cri",
		"--container-runtime-endpoint="+ctrd.Endpoint())
	return n, ctrd, image
}

// containerPod is a pod of the ctrtest image running args, bound to node
// by name through RuntimeClass class.
func containerPod(node, class, image string, args ...string) *v1.Pod {
	pod := wasmPod(node, image)
	pod.Spec.Tolerations = nil
	pod.Spec.RuntimeClassName = ptr.To(class)
	pod.Spec.Containers[0].Args = args
	return pod
}

// A node that runs both kinds: container pods through containerd chosen by
// RuntimeClass, Wasm pods by default; exact exit codes, logs, pod IPs from
// CNI that serve HTTP; a container that outlives an agent crash is
// adopted, not restarted.
func TestCRIProviderBesideWasm(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 6*time.Minute)
	defer cancel()
	n, ctrd, image := criNode(t, "e2e-cri")
	class := runtimeClassFor(ctx, t, "e2e-cri-"+strconv.FormatInt(time.Now().UnixNano()%1e6, 10), "cri")
	node := waitForNodeReady(ctx, t, cluster.AdminClient(), n.Name, v1.ConditionTrue, 2*time.Minute)

	// A node with a provider of ordinary containers registers as the
	// machine it is, without the Wasm taints.
	wasmTaint := slices.ContainsFunc(node.Spec.Taints, func(t v1.Taint) bool { return t.Key == v1.LabelArchStable })
	if node.Labels[v1.LabelArchStable] != runtime.GOARCH || node.Labels[v1.LabelOSStable] != "linux" || wasmTaint {
		t.Errorf("labels %v taints %v", node.Labels, node.Spec.Taints)
	}
	if !strings.HasPrefix(node.Status.NodeInfo.ContainerRuntimeVersion, "wasmtime://") {
		t.Errorf("containerRuntimeVersion %q: the default provider's", node.Status.NodeInfo.ContainerRuntimeVersion)
	}
	var handlers []string
	for _, h := range node.Status.RuntimeHandlers {
		handlers = append(handlers, h.Name)
	}
	if !slices.Equal(handlers, []string{"cri", "wasmtime"}) {
		t.Errorf("runtimeHandlers = %v", handlers)
	}

	// A container pod and a Wasm pod side by side.
	echo := runToEnd(ctx, t, containerPod(n.Name, class, image, "echo", "hello from a container"))
	if echo.Status.Phase != v1.PodSucceeded {
		t.Fatalf("container pod: %s", describeStatus(echo))
	}
	cs := echo.Status.ContainerStatuses[0]
	// The runtime's own container ID, as crictl shows it.
	if id, ok := strings.CutPrefix(cs.ContainerID, "containerd://"); !ok || len(id) != 64 || !strings.Contains(cs.ImageID, "@sha256:") {
		t.Errorf("containerID %q imageID %q", cs.ContainerID, cs.ImageID)
	}
	if got := logText(containerLog(t, n, echo, "main", 0)); !slices.ContainsFunc(got, func(l string) bool { return strings.HasSuffix(l, "hello from a container") }) {
		t.Errorf("container log %q", got)
	}
	wasm := runToEnd(ctx, t, wasmPod(n.Name, testmod(t), "echo", "hello from wasm"))
	if wasm.Status.Phase != v1.PodSucceeded || wasm.Status.ContainerStatuses[0].ContainerID[:11] != "wasmtime://" {
		t.Errorf("Wasm pod on the mixed node: %s %s", describeStatus(wasm), wasm.Status.ContainerStatuses[0].ContainerID)
	}

	// Exit codes are the container's.
	failed := runToEnd(ctx, t, containerPod(n.Name, class, image, "exit", "3"))
	if t3 := failed.Status.ContainerStatuses[0].State.Terminated; failed.Status.Phase != v1.PodFailed || t3 == nil || t3.ExitCode != 3 || t3.Reason != "Error" {
		t.Errorf("exit 3: %s", describeStatus(failed))
	}

	// A server: its pod IP comes from CNI and answers HTTP.
	server := containerPod(n.Name, class, image, "serve", "8080")
	server.Spec.RestartPolicy = v1.RestartPolicyAlways
	server = createPod(ctx, t, server)
	_, running := watchPod(ctx, t, server, 2*time.Minute, isPhase(v1.PodRunning))
	ip := net.ParseIP(running.Status.PodIP)
	if ip == nil || !ctrd.Subnet().Contains(mustAddr(t, ip)) || running.Status.HostIP != "127.0.0.1" {
		t.Fatalf("podIP %q (subnet %s), hostIP %q", running.Status.PodIP, ctrd.Subnet(), running.Status.HostIP)
	}
	body := httpGet(ctx, t, fmt.Sprintf("http://%s/hello", net.JoinHostPort(ip.String(), "8080")))
	if !strings.Contains(body, "/hello") {
		t.Errorf("the pod answered %q", body)
	}
	before := running.Status.ContainerStatuses[0]

	// kubectl exec through the API server, the node API and the runtime's
	// streaming server, with the command's output and exit code.
	out, err := kubectl(ctx, "exec", server.Name, "--", "/bin/ctrtest", "echo", "inside")
	if err != nil || strings.TrimSpace(out) != "inside" {
		t.Errorf("kubectl exec: %v %q", err, out)
	}
	// With -i, standard input streams into the command.
	stdinExec := exec.CommandContext(ctx, cluster.Binaries.Kubectl, "--kubeconfig", cluster.AdminKubeconfig,
		"exec", "-i", server.Name, "--", "/bin/ctrtest", "cat", "/dev/stdin")
	stdinExec.Stdin = strings.NewReader("sent through stdin\n")
	if b, err := stdinExec.CombinedOutput(); err != nil || strings.TrimSpace(string(b)) != "sent through stdin" {
		t.Errorf("kubectl exec -i: %v %q", err, b)
	}
	out, err = kubectl(ctx, "exec", server.Name, "--", "/bin/ctrtest", "exit", "7")
	if ee, ok := err.(interface{ ExitCode() int }); !ok || ee.ExitCode() != 7 {
		t.Errorf("kubectl exec of exit 7: %v %q", err, out)
	}

	// kubectl port-forward to the pod's port.
	if body := portForwardGet(ctx, t, server.Name, 8080, "/forwarded"); !strings.Contains(body, "/forwarded") {
		t.Errorf("through port-forward the pod answered %q", body)
	}

	// The agent dies; the container keeps running and is adopted.
	if err := n.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := n.Restart(); err != nil {
		t.Fatal(err)
	}
	waitForNodeReady(ctx, t, cluster.AdminClient(), n.Name, v1.ConditionTrue, 2*time.Minute)
	time.Sleep(3 * time.Second) // let the restarted agent sync the pod once
	after, err := cluster.AdminClient().CoreV1().Pods(server.Namespace).Get(ctx, server.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cs = after.Status.ContainerStatuses[0]
	if after.Status.Phase != v1.PodRunning || cs.ContainerID != before.ContainerID || cs.RestartCount != 0 || cs.State.Running == nil {
		t.Errorf("after the agent's restart: %s, containerID %s (was %s), restarts %d", describeStatus(after), cs.ContainerID, before.ContainerID, cs.RestartCount)
	}
	if body := httpGet(ctx, t, fmt.Sprintf("http://%s/again", net.JoinHostPort(ip.String(), "8080"))); !strings.Contains(body, "/again") {
		t.Errorf("the adopted pod answered %q", body)
	}

	// The pod is deleted while the agent is down: its sandbox and
	// container go when the agent is back.
	if err := n.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := cluster.AdminClient().CoreV1().Pods(server.Namespace).Delete(ctx, server.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
		t.Fatal(err)
	}
	if err := n.Restart(); err != nil {
		t.Fatal(err)
	}
	err = wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		resp, err := ctrd.RuntimeService().ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{Filter: &runtimeapi.PodSandboxFilter{
			LabelSelector: map[string]string{"io.kubernetes.pod.uid": string(server.UID)}}})
		return err == nil && len(resp.Items) == 0, nil
	})
	if err != nil {
		t.Errorf("the sandbox of a pod deleted while the agent was down is still there: %v", err)
	}
	t.Logf("container %s adopted across an agent crash; its sandbox removed after the pod was deleted while the agent was down", cs.ContainerID)
}

// runtimeClassFor creates a RuntimeClass of handler without scheduling
// constraints and deletes it when the test ends.
func runtimeClassFor(ctx context.Context, t *testing.T, name, handler string) string {
	t.Helper()
	client := cluster.AdminClient().NodeV1().RuntimeClasses()
	rc := runtimeClassObject(name, handler)
	if _, err := client.Create(ctx, rc, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating RuntimeClass %s: %v", name, err)
	}
	t.Cleanup(func() { _ = client.Delete(context.Background(), name, metav1.DeleteOptions{}) })
	return name
}

func mustAddr(t *testing.T, ip net.IP) netip.Addr {
	t.Helper()
	a, ok := netip.AddrFromSlice(ip.To4())
	if !ok {
		t.Fatalf("not an IPv4 address: %s", ip)
	}
	return a
}

// httpGet fetches url, retrying briefly while the server starts.
func httpGet(ctx context.Context, t *testing.T, url string) string {
	t.Helper()
	var last error
	for range 50 {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			return string(b)
		}
		last = err
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("GET %s: %v", url, last)
	return ""
}

func runtimeClassObject(name, handler string) *nodev1.RuntimeClass {
	return &nodev1.RuntimeClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Handler: handler}
}

// portForwardGet runs kubectl port-forward to pod's port and GETs path
// through it.
func portForwardGet(ctx context.Context, t *testing.T, pod string, port int, path string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd := exec.CommandContext(ctx, cluster.Binaries.Kubectl, "--kubeconfig", cluster.AdminKubeconfig,
		"port-forward", "pod/"+pod, "--address=127.0.0.1", fmt.Sprintf(":%d", port))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); _ = cmd.Wait() }()
	// "Forwarding from 127.0.0.1:41234 -> 8080"
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("kubectl port-forward: %v; stderr: %s", err, stderr.String())
	}
	local, _, ok := strings.Cut(strings.TrimPrefix(strings.TrimSpace(line), "Forwarding from "), " ->")
	if !ok {
		t.Fatalf("kubectl port-forward said %q", line)
	}
	return httpGet(ctx, t, "http://"+local+path)
}
