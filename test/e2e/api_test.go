package e2e

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	v1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/wait"
	statsv1alpha1 "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
	"k8s.io/utils/ptr"

	"github.com/krustlet/krustlet-go/test/framework/controlplane"
)

// kubectl runs the kubectl of the server's version against the cluster.
func kubectl(ctx context.Context, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, cluster.Binaries.Kubectl, append([]string{"--kubeconfig", cluster.AdminKubeconfig}, args...)...).CombinedOutput()
	return string(out), err
}

// nodeAPI gets path from a node's API as the API server does: over TLS
// verified with the cluster CA (the serving certificate comes from the
// kubelet-serving signer), authenticated with a client certificate of the
// API server's kubelet-client identity. The API server itself refuses to
// proxy /api/v1/nodes/NAME/proxy/... to a loopback address ("address not
// allowed"), so on this one-machine cluster the node API is reached
// directly; kubectl logs goes through the API server (pods/log is not
// subject to that check).
func nodeAPI(ctx context.Context, t *testing.T, port int, path string) (int, string) {
	t.Helper()
	certPEM, keyPEM, err := cluster.PKI.SignClientCert("kube-apiserver-kubelet-client", "system:masters")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(cluster.PKI.CACertPEM())
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{cert}}}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("https://127.0.0.1:%d%s", port, path), nil)
	resp, err := client.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// waitForNodeAPI waits until the node serves its API with a certificate
// from the cluster (its kubelet-serving CSR was approved and issued).
func waitForNodeAPI(ctx context.Context, t *testing.T, port int) {
	t.Helper()
	var last string
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		code, body := nodeAPI(ctx, t, port, "/healthz")
		last = body
		return code == http.StatusOK, nil
	})
	if err != nil {
		t.Fatalf("node API on port %d not serving: %s", port, last)
	}
}

// kubectl logs in its forms, through the API server and the node API.
func TestKubectlLogs(t *testing.T) {
	t.Parallel()
	n := podNode(t)
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	waitForNodeAPI(ctx, t, n.Port)
	img := testmod(t)

	spec := wasmPod(n.Name, img, "echo", "line one", "stderr", "line two", "echo", "line three")
	spec.Spec.Containers = append(spec.Spec.Containers, v1.Container{Name: "second", Image: img, Args: []string{"echo", "from the second container"}})
	pod := runToEnd(ctx, t, spec)
	check := func(want string, args ...string) {
		t.Helper()
		out, err := kubectl(ctx, append([]string{"logs", pod.Name}, args...)...)
		if err != nil {
			t.Fatalf("kubectl logs %v: %v\n%s", args, err, out)
		}
		if out != want {
			t.Errorf("kubectl logs %v = %q, want %q", args, out, want)
		}
	}
	out, err := kubectl(ctx, "logs", pod.Name, "-c", "main")
	if err != nil || !strings.Contains(out, "line one\n") || !strings.Contains(out, "line two\n") || !strings.Contains(out, "line three\n") {
		t.Errorf("kubectl logs -c main: %v\n%q", err, out)
	}
	check("from the second container\n", "-c", "second")
	check("", "-c", "main", "--tail=0")
	if out, _ := kubectl(ctx, "logs", pod.Name, "-c", "main", "--tail=1"); strings.Count(out, "\n") != 1 {
		t.Errorf("--tail=1 gave %q", out)
	}
	check("from", "-c", "second", "--limit-bytes=4")
	out, err = kubectl(ctx, "logs", pod.Name, "-c", "second", "--timestamps")
	if err != nil {
		t.Fatal(err)
	}
	ts, text, _ := strings.Cut(strings.TrimSpace(out), " ")
	if _, perr := time.Parse(time.RFC3339Nano, ts); perr != nil || text != "from the second container" {
		t.Errorf("--timestamps gave %q", out)
	}
	check("from the second container\n", "-c", "second", "--since=1h")
	check("from the second container\n", "-c", "second", "--since-time="+time.Now().Add(-time.Hour).UTC().Format(time.RFC3339))
	if out, err := kubectl(ctx, "logs", pod.Name, "-c", "nope"); err == nil || !strings.Contains(out, "nope") {
		t.Errorf("unknown container: %v %q", err, out)
	}
	if out, err := kubectl(ctx, "logs", pod.Name, "-c", "main", "--previous"); err == nil || !strings.Contains(out, "previous terminated container") {
		t.Errorf("--previous without a previous run: %v %q", err, out)
	}

	// --previous after a restart, and -f following lines as they come.
	restarting := wasmPod(n.Name, img, "echo", "run", "sleep", "1s", "exit", "1")
	restarting.Spec.RestartPolicy = v1.RestartPolicyOnFailure
	created := createPod(ctx, t, restarting)
	watchPod(ctx, t, created, 2*time.Minute, func(p *v1.Pod) bool {
		return len(p.Status.ContainerStatuses) == 1 && p.Status.ContainerStatuses[0].RestartCount >= 1
	})
	if out, err := kubectl(ctx, "logs", created.Name, "--previous"); err != nil || out != "run\n" {
		t.Errorf("--previous: %v %q", err, out)
	}

	follow := createPod(ctx, t, wasmPod(n.Name, img, "echo", "first", "sleep", "2s", "echo", "second", "sleep", "2s", "echo", "third"))
	watchPod(ctx, t, follow, 2*time.Minute, isPhase(v1.PodRunning, v1.PodSucceeded))
	cmd := exec.CommandContext(ctx, cluster.Binaries.Kubectl, "--kubeconfig", cluster.AdminKubeconfig, "logs", "-f", follow.Name)
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var arrivals []time.Time
	var lines []string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		arrivals = append(arrivals, time.Now())
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("kubectl logs -f: %v", err)
	}
	if strings.Join(lines, ",") != "first,second,third" {
		t.Errorf("kubectl logs -f gave %q", lines)
	} else if arrivals[2].Sub(arrivals[0]) < time.Second {
		t.Errorf("lines did not arrive as they were written: %v", arrivals)
	}
}

// Stats and metrics through the API server parse and show a busy pod.
func TestNodeStatsAndMetrics(t *testing.T) {
	t.Parallel()
	n := podNode(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	waitForNodeAPI(ctx, t, n.Port)
	spec := wasmPod(n.Name, testmod(t), "alloc", "20", "spin", "forever")
	pod := createPod(ctx, t, spec)
	watchPod(ctx, t, pod, 2*time.Minute, isPhase(v1.PodRunning))

	var sum statsv1alpha1.Summary
	var podStats *statsv1alpha1.PodStats
	err := wait.PollUntilContextTimeout(ctx, time.Second, time.Minute, true, func(ctx context.Context) (bool, error) {
		code, out := nodeAPI(ctx, t, n.Port, "/stats/summary")
		if code != http.StatusOK {
			return false, nil
		}
		if err := json.Unmarshal([]byte(out), &sum); err != nil {
			return false, err
		}
		for i := range sum.Pods {
			p := &sum.Pods[i]
			if p.PodRef.Name == pod.Name && len(p.Containers) == 1 && p.Containers[0].CPU.UsageNanoCores != nil && *p.Containers[0].CPU.UsageCoreNanoSeconds > 0 {
				podStats = p
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("summary never showed the busy pod: %v\n%+v", err, sum)
	}
	c := podStats.Containers[0]
	t.Logf("busy pod: %d nanocores, %d core-ns, %d bytes working set", *c.CPU.UsageNanoCores, *c.CPU.UsageCoreNanoSeconds, *c.Memory.WorkingSetBytes)
	if *c.Memory.WorkingSetBytes < 20<<20 {
		t.Errorf("working set %d, the module allocated 20 MiB", *c.Memory.WorkingSetBytes)
	}
	if sum.Node.CPU == nil || sum.Node.Memory == nil || *sum.Node.Memory.WorkingSetBytes == 0 {
		t.Errorf("node stats %+v", sum.Node)
	}

	code, out := nodeAPI(ctx, t, n.Port, "/metrics/resource")
	if code != http.StatusOK {
		t.Fatalf("/metrics/resource: %d %s", code, out)
	}
	for _, want := range []string{"node_cpu_usage_seconds_total", "node_memory_working_set_bytes", `container_cpu_usage_seconds_total{container="main",namespace="default",pod="` + pod.Name + `"}`, "container_memory_working_set_bytes", "pod_cpu_usage_seconds_total", "resource_scrape_error 0"} {
		if !strings.Contains(out, want) {
			t.Errorf("/metrics/resource lacks %s:\n%s", want, out)
		}
	}
	code, out = nodeAPI(ctx, t, n.Port, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d %s", code, out)
	}
	for _, want := range []string{"kubelet_pod_start_duration_seconds_bucket", "kubelet_running_containers", "krustlet_api_request_duration_seconds_bucket{client=\"heartbeat\"", "go_goroutines"} {
		if !strings.Contains(out, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if code, out := nodeAPI(ctx, t, n.Port, "/pods"); code != http.StatusOK || !strings.Contains(out, pod.Name) {
		t.Errorf("/pods: %d", code)
	}
}

// Direct requests to the node API: no credentials → 401; a token without
// rights → 403; with nodes/proxy → 200; a certificate of another CA → 401;
// exec in an unknown pod → 404, in a Wasm pod → 501 naming the provider.
func TestNodeAPIAuth(t *testing.T) {
	t.Parallel()
	n := podNode(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	waitForNodeAPI(ctx, t, n.Port)
	client := cluster.AdminClient()
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(cluster.PKI.CACertPEM())
	url := fmt.Sprintf("https://127.0.0.1:%d", n.Port)
	get := func(path, token string, cert *tls.Certificate) (int, string) {
		t.Helper()
		cfg := &tls.Config{RootCAs: roots}
		if cert != nil {
			cfg.Certificates = []tls.Certificate{*cert}
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := (&http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, _ := get("/pods", "", nil); code != http.StatusUnauthorized {
		t.Errorf("no credentials: %d, want 401", code)
	}

	ns := metav1.NamespaceDefault
	mkSA := func(name string) string {
		if _, err := client.CoreV1().ServiceAccounts(ns).Create(ctx, &v1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		tr, err := client.CoreV1().ServiceAccounts(ns).CreateToken(ctx, name, &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](600)}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return tr.Status.Token
	}
	suffix := rand.String(5)
	weak := mkSA("weak-" + suffix)
	strong := mkSA("strong-" + suffix)
	if _, err := client.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "node-proxy-" + suffix},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"nodes/proxy", "nodes/stats"}, Verbs: []string{"get"}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "node-proxy-" + suffix},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "node-proxy-" + suffix},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "strong-" + suffix, Namespace: ns}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// RBAC takes effect within a moment; wait until the API server agrees.
	_ = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		r, err := client.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User: "system:serviceaccount:" + ns + ":strong-" + suffix, ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: "get", Resource: "nodes", Subresource: "proxy", Name: n.Name},
		}}, metav1.CreateOptions{})
		return err == nil && r.Status.Allowed, nil
	})
	if code, body := get("/pods", weak, nil); code != http.StatusForbidden || !strings.Contains(body, "subresource=proxy") {
		t.Errorf("token without rights: %d %q, want 403", code, body)
	}
	if code, body := get("/pods", strong, nil); code != http.StatusOK || !strings.Contains(body, "PodList") {
		t.Errorf("token with nodes/proxy: %d %q, want 200", code, body)
	}
	if code, _ := get("/stats/summary", strong, nil); code != http.StatusOK {
		t.Errorf("token with nodes/stats on /stats/summary: %d, want 200", code)
	}
	if code, _ := get("/exec/default/no-such-pod/main?command=sh", strong, nil); code != http.StatusNotFound {
		t.Errorf("exec in an unknown pod: %d, want 404", code)
	}
	sleeper := createPod(ctx, t, wasmPod(n.Name, testmod(t), "sleep", "1h"))
	watchPod(ctx, t, sleeper, 2*time.Minute, isPhase(v1.PodRunning))
	want := "exec is not supported by the wasmtime provider, which runs pod default/" + sleeper.Name
	if code, body := get("/exec/default/"+sleeper.Name+"/main?command=sh", strong, nil); code != http.StatusNotImplemented ||
		!strings.Contains(body, want) || !strings.Contains(body, "no shell") {
		t.Errorf("exec: %d %q, want 501 %q", code, body, want)
	}
	if code, _ := get("/containerLogs/default/no-such-pod/main", strong, nil); code != http.StatusNotFound {
		t.Errorf("logs of an unknown pod: %d, want 404", code)
	}
	if code, _ := get("/containerLogs/default/no-such-pod/main?tailLines=x", strong, nil); code != http.StatusBadRequest {
		t.Errorf("bad tailLines: %d, want 400", code)
	}

	// A client certificate from the cluster CA authenticates; one from
	// another CA does not.
	if code, _ := nodeAPI(ctx, t, n.Port, "/pods"); code != http.StatusOK {
		t.Errorf("cluster CA client certificate: %d, want 200", code)
	}
	other, err := controlplane.NewTestCA()
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := other.SignClientCert("kube-apiserver-kubelet-client", "system:masters")
	if err != nil {
		t.Fatal(err)
	}
	bad, _ := tls.X509KeyPair(certPEM, keyPEM)
	if code, _ := get("/pods", "", &bad); code != http.StatusUnauthorized {
		t.Errorf("client certificate of another CA: %d, want 401", code)
	}
}
