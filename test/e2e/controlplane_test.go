package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	certutil "k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/certificate/csr"
	bootstrapapi "k8s.io/cluster-bootstrap/token/api"
	"k8s.io/cluster-bootstrap/token/jws"

	"github.com/krustlet/krustlet-go/test/framework/controlplane"
	"github.com/krustlet/krustlet-go/test/framework/krustlet"
)

func TestControlPlaneReady(t *testing.T) {
	ctx := t.Context()
	for _, path := range []string{"/readyz", "/livez"} {
		body, err := cluster.AdminClient().Discovery().RESTClient().Get().AbsPath(path).DoRaw(ctx)
		if err != nil || strings.TrimSpace(string(body)) != "ok" {
			t.Fatalf("GET %s = %q, %v; want ok", path, body, err)
		}
	}
	v, err := cluster.AdminClient().Discovery().ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	if v.GitVersion != cluster.Binaries.KubernetesVersion {
		t.Errorf("server version %q, want %q (stamped at build)", v.GitVersion, cluster.Binaries.KubernetesVersion)
	}
}

// A node holding only the bootstrap token can have a client certificate
// issued: its CSR is approved by the controller-manager and signed.
func TestBootstrapTokenCSRIsApprovedAndSigned(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	client := tokenClient(t, cluster.Token)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	const node = "csr-test-node"
	der, err := certutil.MakeCSR(key, &pkix.Name{CommonName: "system:node:" + node, Organization: []string{"system:nodes"}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	name, uid, err := csr.RequestCertificateWithContext(ctx, client, der, "", certificatesv1.KubeAPIServerClientKubeletSignerName, nil,
		[]certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth}, key)
	if err != nil {
		t.Fatalf("creating CSR with the bootstrap token: %v", err)
	}
	start := time.Now()
	certPEM, err := csr.WaitForCertificate(ctx, client, name, uid)
	if err != nil {
		t.Fatalf("waiting for CSR %s: %v", name, err)
	}
	t.Logf("CSR %s approved and signed in %v", name, time.Since(start))
	certs, err := certutil.ParseCertsPEM(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	got := certs[0]
	if got.Subject.CommonName != "system:node:"+node || !slices.Equal(got.Subject.Organization, []string{"system:nodes"}) {
		t.Errorf("certificate subject %v, want CN=system:node:%s O=system:nodes", got.Subject, node)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(cluster.PKI.CACertPEM())
	if _, err := got.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("certificate does not chain to the cluster CA: %v", err)
	}
}

// cluster-info is readable without credentials and carries a JWS signature
// that verifies with the bootstrap token, as kubeadm-style discovery needs.
func TestClusterInfoSignedForToken(t *testing.T) {
	anon := kubernetes.NewForConfigOrDie(&rest.Config{
		Host:            cluster.APIServerURL,
		TLSClientConfig: rest.TLSClientConfig{CAData: cluster.PKI.CACertPEM()},
	})
	cm, err := anon.CoreV1().ConfigMaps(metav1.NamespacePublic).Get(t.Context(), bootstrapapi.ConfigMapClusterInfo, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("anonymous read of cluster-info: %v", err)
	}
	id, secret, _ := strings.Cut(cluster.Token, ".")
	sig := cm.Data[bootstrapapi.JWSSignatureKeyPrefix+id]
	if sig == "" {
		t.Fatalf("cluster-info has no signature for token %s: keys %v", id, keys(cm.Data))
	}
	if !jws.DetachedTokenIsValid(sig, cm.Data[bootstrapapi.KubeConfigKey], id, secret) {
		t.Errorf("cluster-info signature does not verify with the token")
	}
	if jws.DetachedTokenIsValid(sig, cm.Data[bootstrapapi.KubeConfigKey], id, "0123456789abcdef") {
		t.Errorf("cluster-info signature verifies with a wrong secret")
	}
	if !strings.Contains(cm.Data[bootstrapapi.KubeConfigKey], cluster.APIServerURL) {
		t.Errorf("cluster-info kubeconfig does not name the server %s", cluster.APIServerURL)
	}
}

// The serving approver approves a node's own kubelet-serving CSR and leaves
// one that a node did not send pending.
func TestServingApprover(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	go controlplane.RunServingApprover(ctx, cluster.AdminClient()) //nolint:errcheck

	nodeClient := func(node string) kubernetes.Interface {
		certPEM, keyPEM, err := cluster.PKI.SignClientCert("system:node:"+node, "system:nodes")
		if err != nil {
			t.Fatal(err)
		}
		cfg := &rest.Config{Host: cluster.APIServerURL, TLSClientConfig: rest.TLSClientConfig{
			CAData: cluster.PKI.CACertPEM(), CertData: certPEM, KeyData: keyPEM}}
		return kubernetes.NewForConfigOrDie(cfg)
	}
	request := func(client kubernetes.Interface, cn string) (string, error) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		der, err := certutil.MakeCSR(key, &pkix.Name{CommonName: cn, Organization: []string{"system:nodes"}}, []string{"localhost"}, nil)
		if err != nil {
			return "", err
		}
		name, _, err := csr.RequestCertificateWithContext(ctx, client, der, "", certificatesv1.KubeletServingSignerName, nil,
			[]certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageServerAuth}, key)
		return name, err
	}
	good, err := request(nodeClient("serving-a"), "system:node:serving-a")
	if err != nil {
		t.Fatal(err)
	}
	// The API server's CSR admission already stops a node from asking for
	// another node's name; a request for a node that comes from someone else
	// must not be approved either.
	bad, err := request(cluster.AdminClient(), "system:node:serving-b")
	if err != nil {
		t.Fatal(err)
	}
	admin := cluster.AdminClient()
	for {
		c, err := admin.CertificatesV1().CertificateSigningRequests().Get(ctx, good, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(c.Status.Certificate) > 0 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("serving CSR %s never issued", good)
		case <-time.After(100 * time.Millisecond):
		}
	}
	c, err := admin.CertificatesV1().CertificateSigningRequests().Get(ctx, bad, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Status.Conditions) != 0 {
		t.Errorf("CSR for another node got conditions %v; want it left pending", c.Status.Conditions)
	}
}

// `make up` and `make down` go through the devcluster command: up detaches
// the cluster, a second up says it runs already, down stops every process.
func TestDevClusterUpDown(t *testing.T) {
	root, err := controlplane.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "devcluster")
	build := exec.Command("go", "build", "-o", bin, "./hack/devcluster")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building devcluster: %v\n%s", err, out)
	}
	dir := filepath.Join(t.TempDir(), "dev")
	run := func(args ...string) string {
		out, err := exec.Command(bin, append(args, "--dir", dir)...).CombinedOutput()
		if err != nil {
			t.Fatalf("devcluster %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	t.Cleanup(func() {
		controlplane.StopDir(dir) //nolint:errcheck
		// A failed check skips "down": unmount what the node's pods left.
		krustlet.UnmountAll(dir) //nolint:errcheck
	})
	out := run("up", "--krustlet", krustletBin)
	if !strings.Contains(out, "The local cluster is up") || !strings.Contains(out, "Node krustlet-dev joined") {
		t.Fatalf("up said:\n%s", out)
	}
	if !regexp.MustCompile(`krustlet-dev\s+Ready`).MatchString(out) {
		t.Errorf("up did not show the node Ready:\n%s", out)
	}
	if !regexp.MustCompile(`hello-wasm\s+0/1\s+Completed`).MatchString(out) || !strings.Contains(out, "Hello from WebAssembly on krustlet!\nhello-wasm\nhello\n") {
		t.Errorf("up did not show the sample pod and its logs:\n%s", out)
	}
	env, err := os.ReadFile(filepath.Join(dir, "env"))
	if err != nil || !strings.Contains(string(env), "export KUBECONFIG=") || !strings.Contains(string(env), "export NODE_NAME=krustlet-dev") || !strings.Contains(string(env), "export REGISTRY=127.0.0.1:") || !strings.Contains(string(env), "krustlet join 127.0.0.1:") {
		t.Fatalf("env file: %v\n%s", err, env)
	}
	kubectl := exec.Command("kubectl", "get", "--raw", "/readyz")
	kubectl.Env = append(os.Environ(), "KUBECONFIG="+filepath.Join(dir, "kubeconfig"))
	if out, err := kubectl.CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "ok" {
		t.Fatalf("kubectl against the dev cluster: %v\n%s", err, out)
	}
	if out := run("up", "--krustlet", krustletBin); !strings.Contains(out, "already running") {
		t.Errorf("second up said:\n%s", out)
	}
	if out := run("down"); !strings.Contains(out, "Stopped the local cluster") {
		t.Errorf("down said:\n%s", out)
	}
	if _, _, _, _, running, err := controlplane.Describe(dir); err != nil || running {
		t.Errorf("after down: running=%v err=%v", running, err)
	}
	if out := run("down"); !strings.Contains(out, "No local cluster is running") {
		t.Errorf("second down said:\n%s", out)
	}
}

func tokenClient(t *testing.T, token string) kubernetes.Interface {
	t.Helper()
	return kubernetes.NewForConfigOrDie(&rest.Config{
		Host:            cluster.APIServerURL,
		BearerToken:     token,
		TLSClientConfig: rest.TLSClientConfig{CAData: cluster.PKI.CACertPEM()},
	})
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
