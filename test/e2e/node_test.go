package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/krustlet/krustlet-go/test/framework/controlplane"
	"github.com/krustlet/krustlet-go/test/framework/wasmbuild"
)

// A node joins from nothing with a token and registers as the real kubelet
// would: labels, taints, addresses, nodeInfo, capacity from the machine,
// conditions, and a Lease it renews.
func TestJoinRegistersNode(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	client := cluster.AdminClient()
	go controlplane.RunServingApprover(ctx, client) //nolint:errcheck
	start := time.Now()
	n := joinNode(t, cluster, "e2e-join", "--node-labels=example.com/pool=wasm", "--register-with-taints=example.com/dedicated=wasm:NoSchedule")
	node := waitForNodeReady(ctx, t, client, n.Name, v1.ConditionTrue, 2*time.Minute)
	t.Logf("node Ready %v after starting krustlet join", time.Since(start).Round(time.Millisecond))

	wantLabels := map[string]string{
		"kubernetes.io/hostname": n.Name,
		"kubernetes.io/arch":     "wasm32-wasi",
		"kubernetes.io/os":       "wasm32-wasi",
		"example.com/pool":       "wasm",
	}
	for k, v := range wantLabels {
		if node.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, node.Labels[k], v)
		}
	}
	for _, want := range []v1.Taint{
		{Key: "kubernetes.io/arch", Value: "wasm32-wasi", Effect: v1.TaintEffectNoSchedule},
		{Key: "kubernetes.io/arch", Value: "wasm32-wasi", Effect: v1.TaintEffectNoExecute},
		{Key: "example.com/dedicated", Value: "wasm", Effect: v1.TaintEffectNoSchedule},
	} {
		if !slices.ContainsFunc(node.Spec.Taints, func(t v1.Taint) bool { return t.MatchTaint(&want) && t.Value == want.Value }) {
			t.Errorf("taint %v missing from %v", want, node.Spec.Taints)
		}
	}
	wantAddrs := []v1.NodeAddress{{Type: v1.NodeInternalIP, Address: "127.0.0.1"}, {Type: v1.NodeHostName, Address: n.Name}}
	if !slices.Equal(node.Status.Addresses, wantAddrs) {
		t.Errorf("addresses %v, want %v", node.Status.Addresses, wantAddrs)
	}
	if got := node.Status.DaemonEndpoints.KubeletEndpoint.Port; got != int32(n.Port) {
		t.Errorf("kubelet endpoint port %d, want %d", got, n.Port)
	}
	info := node.Status.NodeInfo
	if info.Architecture != "wasm-wasi" || info.OperatingSystem != "linux" || !strings.HasPrefix(info.ContainerRuntimeVersion, "wasmtime://") || info.KubeletVersion == "" || info.BootID == "" || info.KernelVersion == "" {
		t.Errorf("nodeInfo %+v", info)
	}

	// Capacity as the machine reports it, read here independently.
	capacity := node.Status.Capacity
	if got, want := capacity.Cpu().MilliValue(), int64(runtime.NumCPU())*1000; got > want || got <= 0 {
		t.Errorf("cpu capacity %dm, machine has %dm", got, want)
	}
	if got, want := capacity.Memory().Value(), memTotal(t); got > want || got < want/16 {
		t.Errorf("memory capacity %d, machine has %d", got, want)
	}
	var fs syscall.Statfs_t
	if err := syscall.Statfs(n.DataDir, &fs); err != nil {
		t.Fatal(err)
	}
	if got, want := capacity.StorageEphemeral().Value(), int64(fs.Blocks)*fs.Bsize; got != want {
		t.Errorf("ephemeral-storage capacity %d, filesystem has %d", got, want)
	}
	if got := capacity.Pods().Value(); got != 110 {
		t.Errorf("pods capacity %d, want 110 (--max-pods default)", got)
	}
	alloc := node.Status.Allocatable
	mem := capacity.Memory().DeepCopy()
	mem.Sub(resource.MustParse("100Mi"))
	if alloc.Memory().Cmp(mem) != 0 {
		t.Errorf("allocatable memory %s, want capacity − 100Mi hard eviction = %s", alloc.Memory(), &mem)
	}
	for _, c := range []v1.NodeConditionType{v1.NodeMemoryPressure, v1.NodeDiskPressure, v1.NodePIDPressure} {
		if !slices.ContainsFunc(node.Status.Conditions, func(x v1.NodeCondition) bool { return x.Type == c && x.Reason != "" }) {
			t.Errorf("condition %s missing: %v", c, node.Status.Conditions)
		}
	}

	// Key files are private.
	pemPath := filepath.Join(n.DataDir, "pki", "kubelet-client-current.pem")
	if fi, err := os.Stat(pemPath); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("client certificate file %s: %v, mode %v; want 0600", pemPath, err, fi)
	}

	// The Lease: 40 s, owned by the Node, renewed about every 10 s. Its
	// controller starts beside the status controller, so the Node may be
	// Ready a moment before the Lease exists.
	var lease *coordinationv1.Lease
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		var err error
		lease, err = client.CoordinationV1().Leases(v1.NamespaceNodeLease).Get(ctx, n.Name, metav1.GetOptions{})
		return err == nil, nil
	})
	if err != nil {
		t.Fatalf("no Lease for the node: %v", err)
	}
	if *lease.Spec.LeaseDurationSeconds != 40 || *lease.Spec.HolderIdentity != n.Name {
		t.Errorf("lease spec %+v", lease.Spec)
	}
	if len(lease.OwnerReferences) != 1 || lease.OwnerReferences[0].UID != node.UID {
		t.Errorf("lease owners %v, want the Node %s", lease.OwnerReferences, node.UID)
	}
	first := lease.Spec.RenewTime.Time
	err = wait.PollUntilContextTimeout(ctx, time.Second, 30*time.Second, false, func(ctx context.Context) (bool, error) {
		l, err := client.CoordinationV1().Leases(v1.NamespaceNodeLease).Get(ctx, n.Name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		if d := l.Spec.RenewTime.Sub(first); d > 0 {
			t.Logf("lease renewed %v after the previous renewal", d.Round(100*time.Millisecond))
			return true, nil
		}
		return false, nil
	})
	if err != nil {
		t.Errorf("lease renewTime did not advance in 30 s")
	}

	// The serving certificate, approved by the cluster's approver.
	servingPath := filepath.Join(n.DataDir, "pki", "kubelet-server-current.pem")
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		_, err := os.Stat(servingPath)
		return err == nil, nil
	})
	if err != nil {
		t.Fatalf("no serving certificate at %s", servingPath)
	}
	cert := firstCert(t, servingPath)
	if cert.Subject.CommonName != "system:node:"+n.Name || !slices.Contains(cert.DNSNames, n.Name) || len(cert.IPAddresses) != 1 || cert.IPAddresses[0].String() != "127.0.0.1" {
		t.Errorf("serving certificate subject %v, DNS %v, IPs %v", cert.Subject, cert.DNSNames, cert.IPAddresses)
	}

	// An administrator deletes the Node: the agent registers it again.
	if err := client.CoreV1().Nodes().Delete(ctx, n.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, false, func(ctx context.Context) (bool, error) {
		again, err := client.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
		return err == nil && again.UID != node.UID, nil
	})
	if err != nil {
		t.Errorf("node was not registered again after deletion: %v", err)
	}
}

// join refuses a wrong CA pin, a wrong secret, an unknown token and an
// expired one, exits non-zero with a clear message and writes nothing.
func TestJoinRefusals(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	expired, err := controlplane.CreateBootstrapToken(ctx, cluster.AdminClient(), 0)
	if err != nil {
		t.Fatal(err)
	}
	id, _, _ := strings.Cut(cluster.Token, ".")
	wrongHash := "sha256:" + strings.Repeat("ab", 32)
	cases := []struct {
		name, token, hash string
		want              []string
	}{
		{"wrong CA hash", cluster.Token, wrongHash, []string{"does not match --discovery-token-ca-cert-hash", wrongHash, cluster.PKI.CAHash()}},
		{"wrong secret", id + ".0123456789abcdef", cluster.PKI.CAHash(), []string{"signature for token \"" + id + "\" does not verify"}},
		{"unknown token", "zzzzzz.0123456789abcdef", cluster.PKI.CAHash(), []string{"no signature for token \"zzzzzz\""}},
		{"expired token", expired, cluster.PKI.CAHash(), []string{"token \"" + strings.Split(expired, ".")[0] + "\""}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dataDir := filepath.Join(t.TempDir(), "data")
			cmd := exec.CommandContext(ctx, krustletBin, "join", "--server="+cluster.APIServerURL, "--token="+tc.token,
				"--discovery-token-ca-cert-hash="+tc.hash, "--node-name=refused", "--data-dir="+dataDir, "--healthz-port=0")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			if err == nil {
				t.Fatalf("join succeeded; stderr:\n%s", stderr.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr does not say %q:\n%s", w, stderr.String())
				}
			}
			if strings.Contains(stderr.String(), "goroutine ") {
				t.Errorf("stderr has a stack trace:\n%s", stderr.String())
			}
			if entries, _ := os.ReadDir(dataDir); len(entries) > 0 {
				t.Errorf("join left files in the data dir: %v", entries)
			}
		})
	}
}

// An agent that stops is marked NotReady by the node controller; started
// again, it is Ready with the same certificate and no new CSR. An idle
// node writes at most about 7 times a minute.
func TestAgentRestartAndIdleWrites(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 6*time.Minute)
	defer cancel()
	client := cluster.AdminClient()
	n := joinNode(t, cluster, "e2e-restart")
	waitForNodeReady(ctx, t, client, n.Name, v1.ConditionTrue, 2*time.Minute)

	// Idle writes, after the start-up writes settled.
	time.Sleep(15 * time.Second)
	from := time.Now()
	time.Sleep(60 * time.Second)
	writes := writesBy(t, cluster, "system:node:"+n.Name, from, time.Now())
	var kinds []string
	for _, w := range writes {
		kinds = append(kinds, w.Verb+" "+w.ObjectRef.Resource+"/"+w.ObjectRef.Subresource)
	}
	t.Logf("idle node wrote %d times in 60 s: %v", len(writes), kinds)
	if len(writes) > 7 {
		t.Errorf("idle node wrote %d times in a minute, want at most 7", len(writes))
	}

	before := csrsFor(t, n.Name)
	serial := firstCert(t, filepath.Join(n.DataDir, "pki", "kubelet-client-current.pem")).SerialNumber
	if err := n.Stop(); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	waitForNodeReady(ctx, t, client, n.Name, v1.ConditionUnknown, 3*time.Minute)
	t.Logf("node controller marked the stopped node NotReady (Unknown) after %v", time.Since(stopped).Round(time.Second))
	if _, err := client.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{}); err != nil {
		t.Errorf("the Node is gone after the agent stopped: %v", err)
	}

	if err := n.Restart(); err != nil {
		t.Fatal(err)
	}
	waitForNodeReady(ctx, t, client, n.Name, v1.ConditionTrue, 2*time.Minute)
	if after := csrsFor(t, n.Name); after != before {
		t.Errorf("restart made new client CSRs: %d before, %d after", before, after)
	}
	if got := firstCert(t, filepath.Join(n.DataDir, "pki", "kubelet-client-current.pem")).SerialNumber; got.Cmp(serial) != 0 {
		t.Errorf("restart changed the client certificate")
	}
}

// Two nodes with their own names, ports and data dirs on one machine.
func TestTwoNodesOnOneMachine(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	client := cluster.AdminClient()
	a := joinNode(t, cluster, "e2e-twin-a")
	b := joinNode(t, cluster, "e2e-twin-b")
	if a.Port == b.Port {
		t.Fatalf("both nodes on port %d", a.Port)
	}
	waitForNodeReady(ctx, t, client, a.Name, v1.ConditionTrue, 2*time.Minute)
	waitForNodeReady(ctx, t, client, b.Name, v1.ConditionTrue, 2*time.Minute)
	time.Sleep(25 * time.Second)
	for _, name := range []string{a.Name, b.Name} {
		l, err := client.CoordinationV1().Leases(v1.NamespaceNodeLease).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if age := time.Since(l.Spec.RenewTime.Time); age > 15*time.Second {
			t.Errorf("lease of %s last renewed %v ago", name, age)
		}
		waitForNodeReady(ctx, t, client, name, v1.ConditionTrue, time.Second)
	}
}

// The client certificate is rotated before it expires, with a CSR the node
// sends with its own certificate, and the agent keeps working across the
// rotation. A control plane of its own signs certificates for 3 minutes.
func TestClientCertificateRotation(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 8*time.Minute)
	defer cancel()
	cp, err := controlplane.Start(ctx, controlplane.Options{Dir: t.TempDir(), ClusterSigningDuration: 3 * time.Minute, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Stop()
	client := cp.AdminClient()
	n := joinNode(t, cp, "e2e-rotate")
	waitForNodeReady(ctx, t, client, n.Name, v1.ConditionTrue, 2*time.Minute)
	pemPath := filepath.Join(n.DataDir, "pki", "kubelet-client-current.pem")
	first := firstCert(t, pemPath)
	t.Logf("first client certificate valid %v → %v", first.NotBefore, first.NotAfter)
	err = wait.PollUntilContextTimeout(ctx, 2*time.Second, 6*time.Minute, false, func(context.Context) (bool, error) {
		return firstCert(t, pemPath).SerialNumber.Cmp(first.SerialNumber) != 0, nil
	})
	if err != nil {
		t.Fatalf("client certificate not rotated before %v", first.NotAfter)
	}
	second := firstCert(t, pemPath)
	t.Logf("rotated at %v, new certificate valid to %v", time.Now().Format(time.TimeOnly), second.NotAfter)
	if time.Now().After(first.NotAfter) {
		t.Errorf("rotated only after the old certificate expired")
	}
	csrs, err := client.CertificatesV1().CertificateSigningRequests().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	selfRenewed := slices.ContainsFunc(csrs.Items, func(c certificatesv1.CertificateSigningRequest) bool {
		return c.Spec.Username == "system:node:"+n.Name && c.Spec.SignerName == certificatesv1.KubeAPIServerClientKubeletSignerName
	})
	if !selfRenewed {
		t.Errorf("no client CSR sent by the node itself")
	}
	// Working across the rotation: the lease keeps being renewed with the
	// new certificate.
	rotated := time.Now()
	err = wait.PollUntilContextTimeout(ctx, time.Second, 40*time.Second, false, func(ctx context.Context) (bool, error) {
		l, err := client.CoordinationV1().Leases(v1.NamespaceNodeLease).Get(ctx, n.Name, metav1.GetOptions{})
		return err == nil && l.Spec.RenewTime.After(rotated), nil
	})
	if err != nil {
		t.Errorf("lease not renewed after the rotation")
	}
	waitForNodeReady(ctx, t, client, n.Name, v1.ConditionTrue, time.Second)
}

// csrsFor counts the client-certificate CSRs for node (serving CSRs left
// pending are requested again on restart, as by the kubelet).
func csrsFor(t *testing.T, node string) int {
	t.Helper()
	csrs, err := cluster.AdminClient().CertificatesV1().CertificateSigningRequests().List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	count := 0
	for _, c := range csrs.Items {
		if c.Spec.SignerName != certificatesv1.KubeAPIServerClientKubeletSignerName {
			continue
		}
		block, _ := pem.Decode(c.Spec.Request)
		if block == nil {
			continue
		}
		if req, err := x509.ParseCertificateRequest(block.Bytes); err == nil && req.Subject.CommonName == "system:node:"+node {
			count++
		}
	}
	return count
}

func firstCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			t.Fatalf("no certificate in %s", path)
		}
		if block.Type == "CERTIFICATE" {
			c, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			return c
		}
	}
}

func memTotal(t *testing.T) int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "MemTotal:"); ok {
			kb, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			return kb * 1024
		}
	}
	t.Fatal("no MemTotal")
	return 0
}

// The API server goes away for a while: the agent keeps running, retries,
// and recovers by itself once it is back; its pods keep running.
func TestAPIServerOutage(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 6*time.Minute)
	defer cancel()
	cp, err := controlplane.Start(ctx, controlplane.Options{Dir: t.TempDir(), Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Stop()
	client := cp.AdminClient()
	n := joinNode(t, cp, "e2e-outage", "--x-allow-local-modules")
	waitForNodeReady(ctx, t, client, n.Name, v1.ConditionTrue, 2*time.Minute)
	img := "fs/" + wasmbuild.MustBuild(t, "testmod")
	pod := wasmPod(n.Name, img, "sleep", "1h")
	created, err := client.CoreV1().Pods(pod.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		p, err := client.CoreV1().Pods(created.Namespace).Get(ctx, created.Name, metav1.GetOptions{})
		return err == nil && p.Status.Phase == v1.PodRunning, nil
	})
	if err != nil {
		t.Fatal("pod did not run")
	}

	if err := cp.StopProcess("kube-apiserver"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(30 * time.Second)
	if !n.Proc.Alive() {
		t.Fatalf("the agent exited while the API server was away:\n%s", readTail(n.LogPath(), 30))
	}
	if err := cp.StartProcess("kube-apiserver"); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	err = wait.PollUntilContextTimeout(ctx, time.Second, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		l, err := client.CoordinationV1().Leases(v1.NamespaceNodeLease).Get(ctx, n.Name, metav1.GetOptions{})
		return err == nil && l.Spec.RenewTime.After(back), nil
	})
	if err != nil {
		t.Fatalf("the agent did not renew its lease after the API server came back:\n%s", readTail(n.LogPath(), 30))
	}
	t.Logf("lease renewed %v after the API server came back", time.Since(back).Round(100*time.Millisecond))
	waitForNodeReady(ctx, t, client, n.Name, v1.ConditionTrue, time.Minute)
	p, err := client.CoreV1().Pods(created.Namespace).Get(ctx, created.Name, metav1.GetOptions{})
	if err != nil || p.Status.Phase != v1.PodRunning || p.Status.ContainerStatuses[0].RestartCount != 0 {
		t.Errorf("the pod did not keep running: %v\n%s", err, describeStatus(p))
	}
}
