package app

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/cluster-bootstrap/token/jws"
	"k8s.io/klog/v2/ktesting"

	"github.com/krustlet/krustlet-go/pkg/config"
)

const (
	joinToken  = "abcdef.0123456789abcdef"
	otherToken = "ghijkl.ghijklmnopqrstuv"
)

// fakeCluster is an API server that answers what krustlet join asks, as a
// kubeadm cluster does: kube-public/cluster-info, signed for the tokens in
// signed, and SelfSubjectReviews, accepted for the tokens in valid.
type fakeCluster struct {
	srv    *httptest.Server
	caPEM  []byte
	caHash string
	// kubeconfig is cluster-info's kubeconfig: the server and the CA.
	kubeconfig string

	mu     sync.Mutex
	signed map[string]bool // token ids
	valid  map[string]bool // whole tokens
}

// newFakeCluster starts a fakeCluster on listen (host:0), with a
// certificate for 127.0.0.1, ::1 and localhost.
func newFakeCluster(t *testing.T, listen string) *fakeCluster {
	t.Helper()
	l, err := net.Listen("tcp", listen)
	if err != nil {
		t.Skipf("cannot listen on %s: %v", listen, err)
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kubernetes"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "kube-apiserver"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}, DNSNames: []string{"localhost"},
	}, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(ca.RawSubjectPublicKeyInfo)
	fc := &fakeCluster{
		caPEM:  pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		caHash: "sha256:" + hex.EncodeToString(sum[:]),
		signed: map[string]bool{"abcdef": true},
		valid:  map[string]bool{joinToken: true},
	}
	fc.srv = httptest.NewUnstartedServer(fc)
	fc.srv.Listener.Close()
	fc.srv.Listener = l
	fc.srv.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	fc.srv.StartTLS()
	t.Cleanup(fc.srv.Close)
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[""] = &clientcmdapi.Cluster{Server: fc.srv.URL, CertificateAuthorityData: fc.caPEM}
	data, err := clientcmd.Write(*cfg)
	if err != nil {
		t.Fatal(err)
	}
	fc.kubeconfig = string(data)
	return fc
}

// hostPort is the endpoint as kubeadm prints it: no scheme.
func (fc *fakeCluster) hostPort() string { return strings.TrimPrefix(fc.srv.URL, "https://") }

func (fc *fakeCluster) port() string {
	_, port, _ := net.SplitHostPort(fc.hostPort())
	return port
}

func (fc *fakeCluster) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	switch r.Method + " " + r.URL.Path {
	case "GET /api/v1/namespaces/kube-public/configmaps/cluster-info":
		data := map[string]string{"kubeconfig": fc.kubeconfig}
		for _, token := range []string{joinToken, otherToken} {
			id, secret, _ := strings.Cut(token, ".")
			if fc.signed[id] {
				sig, err := jws.ComputeDetachedSignature(fc.kubeconfig, id, secret)
				if err != nil {
					panic(err)
				}
				data["jws-kubeconfig-"+id] = sig
			}
		}
		_ = json.NewEncoder(w).Encode(&v1.ConfigMap{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
			ObjectMeta: metav1.ObjectMeta{Name: "cluster-info", Namespace: "kube-public"},
			Data:       data,
		})
	case "POST /apis/authentication.k8s.io/v1/selfsubjectreviews":
		token := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !fc.valid[token] {
			w.WriteHeader(http.StatusUnauthorized)
			_ = json.NewEncoder(w).Encode(&metav1.Status{
				TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Status"},
				Status:   metav1.StatusFailure, Reason: metav1.StatusReasonUnauthorized, Code: http.StatusUnauthorized,
			})
			return
		}
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(&authenticationv1.SelfSubjectReview{
			TypeMeta: metav1.TypeMeta{APIVersion: "authentication.k8s.io/v1", Kind: "SelfSubjectReview"},
		})
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

// runJoin runs `krustlet join args` in process with a fresh data dir and
// --write-only, so that no agent starts; it returns the data dir.
func runJoin(t *testing.T, args ...string) (dataDir, stdout, stderr string, err error) {
	t.Helper()
	dataDir = filepath.Join(t.TempDir(), "data")
	var out, errOut bytes.Buffer
	cmd := NewKrustletCommand(func(context.Context, *config.Config) error {
		t.Error("the node agent was started")
		return nil
	})
	cmd.SetArgs(append(append([]string{"join"}, args...), "--write-only", "--node-name=n", "--data-dir="+dataDir, "--discovery-timeout=5s"))
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	_, ctx := ktesting.NewTestContext(t)
	err = cmd.ExecuteContext(ctx)
	return dataDir, out.String(), errOut.String(), err
}

// TestJoinForms joins with every form of the command line kubeadm join
// takes and checks the bootstrap kubeconfig written.
func TestJoinForms(t *testing.T) {
	v4 := newFakeCluster(t, "127.0.0.1:0")
	v4.valid[otherToken] = true
	discoveryFile := filepath.Join(t.TempDir(), "cluster-info.yaml")
	if err := os.WriteFile(discoveryFile, []byte(v4.kubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		// cluster is the server to join; v4 when nil.
		cluster func(t *testing.T) *fakeCluster
		args    func(fc *fakeCluster) []string
		env     map[string]string
		// wantServer is the bootstrap kubeconfig's server, from the
		// cluster's port.
		wantServer func(fc *fakeCluster) string
		wantToken  string
		// wantNotice is printed before the usual output.
		wantNotice string
	}{
		{
			name: "the line kubeadm prints: IPv4:port",
			args: func(fc *fakeCluster) []string {
				return []string{fc.hostPort(), "--token", joinToken, "--discovery-token-ca-cert-hash", fc.caHash}
			},
			wantServer: func(fc *fakeCluster) string { return fc.srv.URL },
			wantToken:  joinToken,
		},
		{
			name: "DNS name",
			args: func(fc *fakeCluster) []string {
				return []string{"localhost:" + fc.port(), "--token=" + joinToken, "--discovery-token-ca-cert-hash=" + fc.caHash}
			},
			wantServer: func(fc *fakeCluster) string { return "https://localhost:" + fc.port() },
			wantToken:  joinToken,
		},
		{
			name:    "[IPv6]:port",
			cluster: func(t *testing.T) *fakeCluster { return newFakeCluster(t, "[::1]:0") },
			args: func(fc *fakeCluster) []string {
				return []string{"[::1]:" + fc.port(), "--token", joinToken, "--discovery-token-ca-cert-hash", fc.caHash}
			},
			wantServer: func(fc *fakeCluster) string { return "https://[::1]:" + fc.port() },
			wantToken:  joinToken,
		},
		{
			name: "https URL as the argument",
			args: func(fc *fakeCluster) []string {
				return []string{fc.srv.URL + "/", "--token", joinToken, "--discovery-token-ca-cert-hash", fc.caHash}
			},
			wantServer: func(fc *fakeCluster) string { return fc.srv.URL },
			wantToken:  joinToken,
		},
		{
			name: "deprecated --server",
			args: func(fc *fakeCluster) []string {
				return []string{"--server", fc.srv.URL, "--token", joinToken, "--discovery-token-ca-cert-hash", fc.caHash}
			},
			wantServer: func(fc *fakeCluster) string { return fc.srv.URL },
			wantToken:  joinToken,
			wantNotice: "Flag --server has been deprecated, give the API server endpoint as the argument, HOST:PORT, as kubeadm join does\n",
		},
		{
			name: "several hashes, one of them the cluster's",
			args: func(fc *fakeCluster) []string {
				return []string{fc.hostPort(), "--token", joinToken, "--discovery-token-ca-cert-hash", "sha256:" + strings.Repeat("ab", 32),
					"--discovery-token-ca-cert-hash", strings.ToUpper(fc.caHash)}
			},
			wantServer: func(fc *fakeCluster) string { return fc.srv.URL },
			wantToken:  joinToken,
		},
		{
			name: "kubeadm's split: --discovery-token and --tls-bootstrap-token",
			args: func(fc *fakeCluster) []string {
				return []string{fc.hostPort(), "--discovery-token", joinToken, "--tls-bootstrap-token", otherToken, "--discovery-token-ca-cert-hash", fc.caHash}
			},
			wantServer: func(fc *fakeCluster) string { return fc.srv.URL },
			wantToken:  otherToken,
		},
		{
			name: "--tls-bootstrap-token beats --token",
			args: func(fc *fakeCluster) []string {
				return []string{fc.hostPort(), "--token", joinToken, "--tls-bootstrap-token", otherToken, "--discovery-token-ca-cert-hash", fc.caHash}
			},
			wantServer: func(fc *fakeCluster) string { return fc.srv.URL },
			wantToken:  otherToken,
		},
		{
			name: "unsafe skip of CA verification",
			args: func(fc *fakeCluster) []string {
				return []string{fc.hostPort(), "--token", joinToken, "--discovery-token-unsafe-skip-ca-verification"}
			},
			wantServer: func(fc *fakeCluster) string { return fc.srv.URL },
			wantToken:  joinToken,
		},
		{
			name: "--discovery-file and --tls-bootstrap-token",
			args: func(*fakeCluster) []string {
				return []string{"--discovery-file", discoveryFile, "--tls-bootstrap-token", joinToken}
			},
			wantServer: func(fc *fakeCluster) string { return fc.srv.URL },
			wantToken:  joinToken,
		},
		{
			name: "--discovery-file and --token",
			args: func(*fakeCluster) []string {
				return []string{"--discovery-file=" + discoveryFile, "--token=" + joinToken}
			},
			wantServer: func(fc *fakeCluster) string { return fc.srv.URL },
			wantToken:  joinToken,
		},
		{
			name: "join settings from the environment",
			args: func(fc *fakeCluster) []string { return []string{fc.hostPort()} },
			env: map[string]string{
				"KRUSTLET_TOKEN":                        joinToken,
				"KRUSTLET_DISCOVERY_TOKEN_CA_CERT_HASH": "placeholder", // replaced below
			},
			wantServer: func(fc *fakeCluster) string { return fc.srv.URL },
			wantToken:  joinToken,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fc := v4
			if tt.cluster != nil {
				fc = tt.cluster(t)
			}
			for k, v := range tt.env {
				if v == "placeholder" {
					v = fc.caHash
				}
				t.Setenv(k, v)
			}
			dataDir, stdout, stderr, err := runJoin(t, tt.args(fc)...)
			if err != nil {
				t.Fatalf("join: %v", err)
			}
			if stderr != "" {
				t.Errorf("stderr %q", stderr)
			}
			// cobra prints flag notices to the command's output, which
			// is stderr unless a test sets it.
			path := filepath.Join(dataDir, "bootstrap-kubeconfig")
			if !strings.HasPrefix(stdout, tt.wantNotice+"Wrote the bootstrap kubeconfig to "+path+".\n") {
				t.Errorf("stdout %q", stdout)
			}
			cfg, err := clientcmd.LoadFromFile(path)
			if err != nil {
				t.Fatal(err)
			}
			ctx := cfg.Contexts[cfg.CurrentContext]
			cluster, auth := cfg.Clusters[ctx.Cluster], cfg.AuthInfos[ctx.AuthInfo]
			if want := tt.wantServer(fc); cluster.Server != want || !bytes.Equal(cluster.CertificateAuthorityData, fc.caPEM) {
				t.Errorf("server %q with CA %q; want %q with the cluster CA", cluster.Server, cluster.CertificateAuthorityData, want)
			}
			if auth.Token != tt.wantToken {
				t.Errorf("token %q, want %q", auth.Token, tt.wantToken)
			}
			if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("bootstrap kubeconfig mode %v (%v), want 0600", fi.Mode(), err)
			}
		})
	}
}

// TestJoinRefusals shows each refusal of the command line, before any
// network access: its message, and that nothing is written or started.
func TestJoinRefusals(t *testing.T) {
	const hash = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	ok := []string{"--token", joinToken, "--discovery-token-ca-cert-hash", hash}
	kubeadmConfig := filepath.Join(t.TempDir(), "join.yaml")
	if err := os.WriteFile(kubeadmConfig, []byte("apiVersion: kubeadm.k8s.io/v1beta4\nkind: JoinConfiguration\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	refused := func(flag, why string) string {
		return "--" + flag + " is a kubeadm join flag that krustlet join does not support: " + why
	}
	const workerOnly = "krustlet joins worker nodes only"
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"--control-plane", append([]string{"10.0.0.1:6443", "--control-plane"}, ok...), nil,
			refused("control-plane", workerOnly+"; it cannot host a control plane instance")},
		{"--certificate-key", append([]string{"10.0.0.1:6443", "--certificate-key", "0123abcd"}, ok...), nil,
			refused("certificate-key", "it decrypts the control-plane certificates of --control-plane, and "+workerOnly)},
		{"--apiserver-advertise-address", append([]string{"10.0.0.1:6443", "--apiserver-advertise-address=10.0.0.2"}, ok...), nil,
			refused("apiserver-advertise-address", "it configures the API server of a new control plane instance (--control-plane), and "+workerOnly)},
		{"--apiserver-bind-port", append([]string{"10.0.0.1:6443", "--apiserver-bind-port", "6444"}, ok...), nil,
			refused("apiserver-bind-port", "it configures the API server of a new control plane instance (--control-plane), and "+workerOnly)},
		{"--cri-socket with its value", append([]string{"--cri-socket", "unix:///run/containerd/containerd.sock", "10.0.0.1:6443"}, ok...), nil,
			refused("cri-socket", "krustlet runs pods with its own runtime providers (--provider), not through a CRI socket")},
		{"--ignore-preflight-errors", append([]string{"10.0.0.1:6443", "--ignore-preflight-errors=all"}, ok...), nil,
			refused("ignore-preflight-errors", "krustlet join runs no kubeadm preflight checks; every check it makes is needed to join")},
		{"--skip-phases", append([]string{"10.0.0.1:6443", "--skip-phases", "preflight"}, ok...), nil,
			refused("skip-phases", "krustlet join has no kubeadm phases")},
		{"--dry-run", append([]string{"10.0.0.1:6443", "--dry-run"}, ok...), nil,
			refused("dry-run", "krustlet join has no dry-run mode (--write-only stops after writing the bootstrap kubeconfig)")},
		{"--patches", append([]string{"10.0.0.1:6443", "--patches", "/etc/patches"}, ok...), nil,
			refused("patches", "krustlet has no kubeadm component manifests or kubelet configuration to patch (node settings go in --config or flags)")},
		{"two kubeadm-only flags", append([]string{"10.0.0.1:6443", "--dry-run", "--control-plane"}, ok...), nil,
			refused("control-plane", workerOnly+"; it cannot host a control plane instance") + "\n" +
				refused("dry-run", "krustlet join has no dry-run mode (--write-only stops after writing the bootstrap kubeconfig)")},
		{"kubeadm-only flag from the environment", append([]string{"10.0.0.1:6443"}, ok...), map[string]string{"KRUSTLET_CONTROL_PLANE": "true"},
			refused("control-plane", workerOnly+"; it cannot host a control plane instance")},
		{"kubeadm's --config", append([]string{"10.0.0.1:6443", "--config", kubeadmConfig}, ok...), nil,
			"--config " + kubeadmConfig + " is a kubeadm configuration: krustlet join reads its --config as the node agent's KubeletConfiguration, " +
				"not as a kubeadm JoinConfiguration; give the join settings as flags (HOST:PORT, --token, --discovery-token-ca-cert-hash or --discovery-file)"},
		{"kubeadm's config file in KRUSTLET_CONFIG", append([]string{"10.0.0.1:6443"}, ok...), map[string]string{"KRUSTLET_CONFIG": kubeadmConfig},
			"--config " + kubeadmConfig + " is a kubeadm configuration: krustlet join reads its --config as the node agent's KubeletConfiguration, " +
				"not as a kubeadm JoinConfiguration; give the join settings as flags (HOST:PORT, --token, --discovery-token-ca-cert-hash or --discovery-file)"},
		{"two endpoints", append([]string{"10.0.0.1:6443", "10.0.0.2:6443"}, ok...), nil,
			"join takes one API server endpoint, HOST:PORT, and got 2 arguments: 10.0.0.1:6443 10.0.0.2:6443"},
		{"no port", append([]string{"10.0.0.1"}, ok...), nil,
			`invalid value "10.0.0.1" for the API server endpoint: address 10.0.0.1: missing port in address: want HOST:PORT, e.g. 10.0.0.1:6443, [fd00::1]:6443 or cp.example.com:6443`},
		{"IPv6 without brackets", append([]string{"fd00::1:6443"}, ok...), nil,
			`invalid value "fd00::1:6443" for the API server endpoint: address fd00::1:6443: too many colons in address: want HOST:PORT, e.g. 10.0.0.1:6443, [fd00::1]:6443 or cp.example.com:6443`},
		{"port out of range", append([]string{"10.0.0.1:70000"}, ok...), nil,
			`invalid value "10.0.0.1:70000" for the API server endpoint: port "70000" must be a number between 1 and 65535`},
		{"named port", append([]string{"cp.example.com:https"}, ok...), nil,
			`invalid value "cp.example.com:https" for the API server endpoint: port "https" must be a number between 1 and 65535`},
		{"no host", append([]string{":6443"}, ok...), nil,
			`invalid value ":6443" for the API server endpoint: no host: want HOST:PORT`},
		{"not a DNS name", append([]string{"cp_1.example.com:6443"}, ok...), nil,
			`invalid value "cp_1.example.com:6443" for the API server endpoint: host "cp_1.example.com" is neither an IP address nor a DNS name: ` +
				`a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')`},
		{"http URL", append([]string{"http://10.0.0.1:6443"}, ok...), nil,
			`invalid value "http://10.0.0.1:6443" for the API server endpoint: the scheme must be https`},
		{"URL with a path", append([]string{"https://10.0.0.1:6443/api"}, ok...), nil,
			`invalid value "https://10.0.0.1:6443/api" for the API server endpoint: want https://HOST:PORT, without a path, query or user`},
		{"--server that is not https", append([]string{"--server", "http://10.0.0.1:6443"}, ok...), nil,
			`invalid value "http://10.0.0.1:6443" for --server: the scheme must be https`},
		{"the endpoint and --server", append([]string{"10.0.0.1:6443", "--server", "https://10.0.0.1:6443"}, ok...), nil,
			`the API server endpoint is given twice, as the argument "10.0.0.1:6443" and as --server "https://10.0.0.1:6443": give it once, as the argument`},
		{"no endpoint", ok, nil,
			"the API server endpoint is required: give HOST:PORT as the argument (as kubeadm join prints it; --server is deprecated), or --discovery-file"},
		{"the endpoint and --discovery-file", []string{"10.0.0.1:6443", "--discovery-file", "/etc/cluster-info.yaml", "--token", joinToken}, nil,
			`the API server endpoint "10.0.0.1:6443" and --discovery-file cannot both be given: file discovery takes the API server from the file`},
		{"--discovery-file with token discovery flags", []string{"--discovery-file", "/etc/cluster-info.yaml", "--discovery-token", otherToken, "--tls-bootstrap-token", joinToken,
			"--discovery-token-ca-cert-hash", hash, "--discovery-token-unsafe-skip-ca-verification"}, nil,
			"--discovery-token is for token discovery and cannot be used with --discovery-file\n" +
				"--discovery-token-ca-cert-hash is for token discovery and cannot be used with --discovery-file\n" +
				"--discovery-token-unsafe-skip-ca-verification is for token discovery and cannot be used with --discovery-file"},
		{"no token", []string{"10.0.0.1:6443", "--discovery-token-ca-cert-hash", hash}, nil,
			"--token is required (or --discovery-token and --tls-bootstrap-token)"},
		{"--discovery-token alone", []string{"10.0.0.1:6443", "--discovery-token", joinToken, "--discovery-token-ca-cert-hash", hash}, nil,
			"--tls-bootstrap-token is required with --discovery-token (or give --token for both)"},
		{"no hash", []string{"10.0.0.1:6443", "--token", joinToken}, nil,
			"--discovery-token-ca-cert-hash is required: using token-based discovery without caCertHashes can be unsafe; pass --discovery-token-unsafe-skip-ca-verification to continue without"},
		{"malformed hash", []string{"10.0.0.1:6443", "--token", joinToken, "--discovery-token-ca-cert-hash", "sha256:abc"}, nil,
			`invalid value for --discovery-token-ca-cert-hash: invalid hash "sha256:abc", expected a 32 byte SHA-256 hash, found 1 bytes`},
		{"malformed tokens", []string{"10.0.0.1:6443", "--token", "abcdef.SECRET", "--tls-bootstrap-token", "nodot", "--discovery-token-ca-cert-hash", hash}, nil,
			"invalid value for --token: the bootstrap token is invalid: want ID.SECRET, [a-z0-9]{6}.[a-z0-9]{16}\n" +
				"invalid value for --discovery-token: the bootstrap token is invalid: want ID.SECRET, [a-z0-9]{6}.[a-z0-9]{16}\n" +
				"invalid value for --tls-bootstrap-token: the bootstrap token is invalid: want ID.SECRET, [a-z0-9]{6}.[a-z0-9]{16}"},
		{"no discovery timeout", append([]string{"10.0.0.1:6443", "--discovery-timeout=0s"}, ok...), nil,
			`invalid value "0s" for --discovery-timeout: must be positive`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			dataDir := filepath.Join(t.TempDir(), "data")
			var out, errOut bytes.Buffer
			cmd := NewKrustletCommand(func(context.Context, *config.Config) error {
				t.Error("the node agent was started")
				return nil
			})
			// No --discovery-timeout here: the table's own must count.
			cmd.SetArgs(append(append([]string{"join"}, tt.args...), "--node-name=n", "--data-dir="+dataDir))
			cmd.SetOut(&out)
			cmd.SetErr(&errOut)
			_, ctx := ktesting.NewTestContext(t)
			err := cmd.ExecuteContext(ctx)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("error:\n%v\nwant:\n%s", err, tt.want)
			}
			if strings.Contains(err.Error(), "0123456789abcdef") || strings.Contains(err.Error(), "abcdef.SECRET") {
				t.Errorf("error shows a token secret: %v", err)
			}
			if notice := "Flag --server has been deprecated, give the API server endpoint as the argument, HOST:PORT, as kubeadm join does\n"; (out.Len() > 0 && out.String() != notice) || errOut.Len() > 0 {
				t.Errorf("printed output: stdout %q, stderr %q", out.String(), errOut.String())
			}
			if _, err := os.Stat(dataDir); !os.IsNotExist(err) {
				t.Errorf("the data dir was created: %v", err)
			}
		})
	}
}

// TestJoinDiscoveryErrors shows the messages of refused discoveries as the
// user reads them: kubeadm's words first, krustlet's detail after.
func TestJoinDiscoveryErrors(t *testing.T) {
	fc := newFakeCluster(t, "127.0.0.1:0")
	fc.signed["ghijkl"] = true // signed, but the API server refuses it
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	unreachable := closed.Addr().String()
	closed.Close()
	wrongHash := "sha256:" + strings.Repeat("ab", 32)
	tests := []struct {
		name string
		args []string
		want string // the whole message, or its start when it ends in "…"
	}{
		{
			name: "wrong CA hash",
			args: []string{fc.hostPort(), "--token", joinToken, "--discovery-token-ca-cert-hash", wrongHash},
			want: `couldn't validate the identity of the API Server: cluster CA found in cluster-info ConfigMap is invalid: none of the public keys "` + fc.caHash +
				`" are pinned (the cluster CA does not match --discovery-token-ca-cert-hash: expected ` + wrongHash + `, found ` + fc.caHash + `)`,
		},
		{
			name: "unknown or expired token",
			args: []string{fc.hostPort(), "--token", "zzzzzz.0123456789abcdef", "--discovery-token-ca-cert-hash", fc.caHash},
			want: `couldn't validate the identity of the API Server: token id "zzzzzz" is invalid for this cluster or it has expired. ` +
				`Use "kubeadm token create" on the control-plane node to create a new valid token ` +
				`(cluster-info carries no signature for token "zzzzzz": the token does not exist in this cluster, has expired, or is not marked for signing)`,
		},
		{
			name: "wrong token secret",
			args: []string{fc.hostPort(), "--token", "abcdef.ffffffffffffffff", "--discovery-token-ca-cert-hash", fc.caHash},
			want: `couldn't validate the identity of the API Server: failed to verify JWS signature of received cluster info object, can't trust this API Server ` +
				`(the cluster-info signature for token "abcdef" does not verify: the token secret is wrong, or someone else answered at ` + fc.srv.URL + `)`,
		},
		{
			name: "token the API server refuses",
			args: []string{fc.hostPort(), "--token", otherToken, "--discovery-token-ca-cert-hash", fc.caHash},
			want: `the API server refused bootstrap token "ghijkl" (401 Unauthorized): token id "ghijkl" is invalid for this cluster or it has expired. ` +
				`Use "kubeadm token create" on the control-plane node to create a new valid token`,
		},
		{
			name: "unreachable endpoint",
			args: []string{unreachable, "--token", joinToken, "--discovery-token-ca-cert-hash", fc.caHash, "--discovery-timeout=300ms"},
			want: `couldn't validate the identity of the API Server: failed to request the cluster-info ConfigMap: Get "https://` + unreachable +
				`/api/v1/namespaces/kube-public/configmaps/cluster-info?timeout=10s": dial tcp ` + unreachable + `: connect: connection refused ` +
				`(gave up after the discovery timeout of 300ms: context deadline exceeded)`,
		},
		{
			name: "discovery file without credentials",
			args: []string{"--discovery-file", writeTemp(t, "cluster-info.yaml", fc.kubeconfig)},
			want: "--tls-bootstrap-token (or --token) is required: the discovery file …",
		},
		{
			name: "discovery file naming another CA",
			args: []string{"--discovery-file", writeTemp(t, "other.yaml", strings.Replace(fc.kubeconfig, fc.srv.URL, "https://"+unreachable, 1)),
				"--token", joinToken, "--discovery-timeout=300ms"},
			want: `couldn't validate the identity of the API Server: failed to request the cluster-info ConfigMap: Get "https://` + unreachable + `/…`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dataDir := filepath.Join(t.TempDir(), "data")
			var out bytes.Buffer
			cmd := NewKrustletCommand(func(context.Context, *config.Config) error {
				t.Error("the node agent was started")
				return nil
			})
			cmd.SetArgs(append(append([]string{"join"}, tt.args...), "--node-name=n", "--data-dir="+dataDir))
			cmd.SetOut(&out)
			cmd.SetErr(&out)
			_, ctx := ktesting.NewTestContext(t)
			err := cmd.ExecuteContext(ctx)
			switch prefix, cut := strings.CutSuffix(tt.want, "…"); {
			case err == nil:
				t.Fatal("join succeeded")
			case cut && !strings.HasPrefix(err.Error(), prefix), !cut && err.Error() != tt.want:
				t.Fatalf("error:\n%v\nwant:\n%s", err, tt.want)
			}
			if _, err := os.Stat(dataDir); !os.IsNotExist(err) {
				t.Errorf("the data dir was created: %v", err)
			}
		})
	}
}

func writeTemp(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestServerURL(t *testing.T) {
	tests := []struct {
		endpoint, want string
	}{
		{"10.0.0.1:6443", "https://10.0.0.1:6443"},
		{"[fd00::1]:6443", "https://[fd00::1]:6443"},
		{"[::ffff:10.0.0.1]:6443", "https://[::ffff:10.0.0.1]:6443"},
		{"cp.example.com:6443", "https://cp.example.com:6443"},
		{"CP.Example.com:6443", "https://CP.Example.com:6443"},
		{"localhost:6443", "https://localhost:6443"},
		{"https://10.0.0.1:6443", "https://10.0.0.1:6443"},
		{"https://[fd00::1]:6443/", "https://[fd00::1]:6443"},
		{"https://cp.example.com", "https://cp.example.com"},
	}
	for _, tt := range tests {
		t.Run(tt.endpoint, func(t *testing.T) {
			got, err := serverURL(tt.endpoint)
			if err != nil || got != tt.want {
				t.Errorf("serverURL(%q) = %q, %v; want %q", tt.endpoint, got, err, tt.want)
			}
		})
	}
}

// TestFlagsMarkdownJoin: `krustlet flags --markdown join` generates the
// README's table of the flags join adds to the node flags.
func TestFlagsMarkdownJoin(t *testing.T) {
	_, out, _, err := execute(t, "flags", "--markdown", "join")
	if err != nil {
		t.Fatal(err)
	}
	var flags []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n")[2:] {
		flags = append(flags, strings.Trim(strings.Fields(l)[1], "`"))
	}
	want := []string{"--discovery-file", "--discovery-timeout", "--discovery-token", "--discovery-token-ca-cert-hash",
		"--discovery-token-unsafe-skip-ca-verification", "--tls-bootstrap-token", "--token", "--write-only"}
	if strings.Join(flags, " ") != strings.Join(want, " ") {
		t.Errorf("rows for %v, want %v (no node flag, no hidden or deprecated flag)", flags, want)
	}
	if !strings.Contains(out, "| `--discovery-timeout` |  | `KRUSTLET_DISCOVERY_TIMEOUT` | `5m0s` | ") {
		t.Errorf("no --discovery-timeout row with its variable and default:\n%s", out)
	}
	if _, _, _, err := execute(t, "flags", "version"); err == nil || err.Error() != `invalid argument "version" for "krustlet flags"` {
		t.Errorf("flags version: %v", err)
	}
}
