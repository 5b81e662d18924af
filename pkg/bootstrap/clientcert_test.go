package bootstrap

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/client-go/util/certificate"
	"k8s.io/klog/v2/ktesting"
)

const testServer = "https://127.0.0.1:6443"

// writeKubeconfig writes a kubeconfig for testServer with auth as its
// user; the CA is embedded, or named by caFile when that is set.
func writeKubeconfig(t *testing.T, path string, caPEM []byte, caFile string, auth *clientcmdapi.AuthInfo) {
	t.Helper()
	cfg := clientcmdapi.NewConfig()
	cluster := &clientcmdapi.Cluster{Server: testServer, CertificateAuthorityData: caPEM}
	if caFile != "" {
		cluster = &clientcmdapi.Cluster{Server: testServer, CertificateAuthority: caFile}
	}
	cfg.Clusters["c"] = cluster
	cfg.AuthInfos["u"] = auth
	cfg.Contexts["x"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "u"}
	cfg.CurrentContext = "x"
	b, err := clientcmd.Write(*cfg)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, b)
}

// nodeDirs are the paths of a node: a bootstrap kubeconfig under etc/,
// the kubeconfig and the cert dir under var/.
type nodeDirs struct {
	bootstrap, kubeconfig, certDir, pem string
}

func newNodeDirs(t *testing.T) nodeDirs {
	root := t.TempDir()
	certDir := filepath.Join(root, "var/lib/kubelet/pki")
	return nodeDirs{
		bootstrap:  filepath.Join(root, "etc/kubernetes/bootstrap-kubelet.conf"),
		kubeconfig: filepath.Join(root, "var/lib/kubelet/kubeconfig"),
		certDir:    certDir,
		pem:        filepath.Join(certDir, "kubelet-client-current.pem"),
	}
}

func TestLoadClientConfig(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	valid := ca.issue(t, leafOptions{cn: "system:node:edge-1"})
	expired := ca.issue(t, leafOptions{cn: "system:node:edge-1", notBefore: time.Now().Add(-48 * time.Hour), notAfter: time.Now().Add(-time.Hour)})
	notYet := ca.issue(t, leafOptions{cn: "system:node:edge-1", notBefore: time.Now().Add(time.Hour), notAfter: time.Now().Add(48 * time.Hour)})
	bootstrapAuth := &clientcmdapi.AuthInfo{Token: testToken}

	tests := []struct {
		name string
		// setup writes the files; it returns the bootstrap path to pass
		// ("" for none).
		setup         func(t *testing.T, d nodeDirs) string
		wantErr       string
		wantBootstrap bool
		// wantCertFile is the client certificate file the Client config
		// names, when not bootstrapping.
		wantCertFile func(d nodeDirs) string
		wantCertData []byte
	}{
		{
			name: "no bootstrap kubeconfig: kubeconfig as it is, relative paths resolved",
			setup: func(t *testing.T, d nodeDirs) string {
				dir := filepath.Dir(d.kubeconfig)
				writeFile(t, filepath.Join(dir, "client.pem"), append(valid.certPEM, valid.keyPEM...))
				writeKubeconfig(t, d.kubeconfig, ca.pem, "", &clientcmdapi.AuthInfo{ClientCertificate: "client.pem", ClientKey: "client.pem"})
				return ""
			},
			wantCertFile: func(d nodeDirs) string { return filepath.Join(filepath.Dir(d.kubeconfig), "client.pem") },
		},
		{
			name: "no bootstrap kubeconfig, even with an expired certificate",
			setup: func(t *testing.T, d nodeDirs) string {
				writeKubeconfig(t, d.kubeconfig, ca.pem, "", &clientcmdapi.AuthInfo{ClientCertificateData: expired.certPEM, ClientKeyData: expired.keyPEM})
				return ""
			},
			wantCertData: expired.certPEM,
		},
		{
			name:    "no bootstrap kubeconfig and no kubeconfig",
			setup:   func(*testing.T, nodeDirs) string { return "" },
			wantErr: "loading --kubeconfig",
		},
		{
			name: "valid embedded certificate: reused",
			setup: func(t *testing.T, d nodeDirs) string {
				writeKubeconfig(t, d.bootstrap, ca.pem, "", bootstrapAuth)
				writeKubeconfig(t, d.kubeconfig, ca.pem, "", &clientcmdapi.AuthInfo{ClientCertificateData: valid.certPEM, ClientKeyData: valid.keyPEM})
				return d.bootstrap
			},
			wantCertData: valid.certPEM,
		},
		{
			name: "valid certificate file: reused",
			setup: func(t *testing.T, d nodeDirs) string {
				writeKubeconfig(t, d.bootstrap, ca.pem, "", bootstrapAuth)
				writeFile(t, d.pem, append(valid.certPEM, valid.keyPEM...))
				writeKubeconfig(t, d.kubeconfig, ca.pem, "", &clientcmdapi.AuthInfo{ClientCertificate: d.pem, ClientKey: d.pem})
				return d.bootstrap
			},
			wantCertFile: func(d nodeDirs) string { return d.pem },
		},
		{
			name: "expired certificate: bootstrap",
			setup: func(t *testing.T, d nodeDirs) string {
				writeKubeconfig(t, d.bootstrap, ca.pem, "", bootstrapAuth)
				writeKubeconfig(t, d.kubeconfig, ca.pem, "", &clientcmdapi.AuthInfo{ClientCertificateData: expired.certPEM, ClientKeyData: expired.keyPEM})
				return d.bootstrap
			},
			wantBootstrap: true,
		},
		{
			name: "certificate not valid yet: bootstrap",
			setup: func(t *testing.T, d nodeDirs) string {
				writeKubeconfig(t, d.bootstrap, ca.pem, "", bootstrapAuth)
				writeKubeconfig(t, d.kubeconfig, ca.pem, "", &clientcmdapi.AuthInfo{ClientCertificateData: notYet.certPEM, ClientKeyData: notYet.keyPEM})
				return d.bootstrap
			},
			wantBootstrap: true,
		},
		{
			name: "kubeconfig without a client certificate: bootstrap",
			setup: func(t *testing.T, d nodeDirs) string {
				writeKubeconfig(t, d.bootstrap, ca.pem, "", bootstrapAuth)
				writeKubeconfig(t, d.kubeconfig, ca.pem, "", &clientcmdapi.AuthInfo{Token: "some-token"})
				return d.bootstrap
			},
			wantBootstrap: true,
		},
		{
			name: "kubeconfig naming a missing certificate file: bootstrap",
			setup: func(t *testing.T, d nodeDirs) string {
				writeKubeconfig(t, d.bootstrap, ca.pem, "", bootstrapAuth)
				writeKubeconfig(t, d.kubeconfig, ca.pem, "", &clientcmdapi.AuthInfo{ClientCertificate: d.pem, ClientKey: d.pem})
				return d.bootstrap
			},
			wantBootstrap: true,
		},
		{
			name: "unreadable kubeconfig: bootstrap",
			setup: func(t *testing.T, d nodeDirs) string {
				writeKubeconfig(t, d.bootstrap, ca.pem, "", bootstrapAuth)
				writeFile(t, d.kubeconfig, []byte("{not yaml"))
				return d.bootstrap
			},
			wantBootstrap: true,
		},
		{
			name: "no kubeconfig yet: bootstrap",
			setup: func(t *testing.T, d nodeDirs) string {
				writeKubeconfig(t, d.bootstrap, ca.pem, "", bootstrapAuth)
				return d.bootstrap
			},
			wantBootstrap: true,
		},
		{
			// The kubeconfig is written in another directory than the
			// bootstrap kubeconfig: a relative CA path must still lead to
			// the CA.
			name: "bootstrap kubeconfig with a relative CA path",
			setup: func(t *testing.T, d nodeDirs) string {
				writeFile(t, filepath.Join(filepath.Dir(d.bootstrap), "pki/ca.crt"), ca.pem)
				writeKubeconfig(t, d.bootstrap, nil, "pki/ca.crt", bootstrapAuth)
				return d.bootstrap
			},
			wantBootstrap: true,
		},
		{
			name: "missing bootstrap kubeconfig",
			setup: func(t *testing.T, d nodeDirs) string {
				return d.bootstrap
			},
			wantErr: "loading --bootstrap-kubeconfig",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, ctx := ktesting.NewTestContext(t)
			d := newNodeDirs(t)
			bootstrapPath := tc.setup(t, d)
			before, _ := os.ReadFile(d.kubeconfig)
			_, statErr := os.Stat(d.certDir)
			certDirBefore := statErr == nil

			cfgs, err := LoadClientConfig(ctx, d.kubeconfig, bootstrapPath, d.certDir)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("LoadClientConfig() error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("LoadClientConfig() error: %v", err)
			}
			if tc.wantBootstrap {
				assertBootstrapped(t, cfgs, d, ca.pem)
				return
			}
			if cfgs.Bootstrap != nil {
				t.Errorf("a bootstrap config %+v, want none", cfgs.Bootstrap)
			}
			if cfgs.Client.Host != testServer {
				t.Errorf("client host %q, want %q", cfgs.Client.Host, testServer)
			}
			if tc.wantCertFile != nil {
				want := tc.wantCertFile(d)
				if cfgs.Client.CertFile != want || cfgs.CertFile != want || cfgs.KeyFile != want {
					t.Errorf("cert file %q (%q, %q), want %q", cfgs.Client.CertFile, cfgs.CertFile, cfgs.KeyFile, want)
				}
			}
			if tc.wantCertData != nil && !bytes.Equal(cfgs.Client.CertData, tc.wantCertData) {
				t.Errorf("client certificate data is not the kubeconfig's")
			}
			if after, _ := os.ReadFile(d.kubeconfig); !bytes.Equal(before, after) {
				t.Errorf("the kubeconfig was rewritten:\n%s", after)
			}
			if _, err := os.Stat(d.certDir); !certDirBefore && !errors.Is(err, os.ErrNotExist) {
				t.Errorf("cert dir made (%v) though nothing is requested", err)
			}
		})
	}
}

// assertBootstrapped checks the configs and files of the bootstrap path.
func assertBootstrapped(t *testing.T, cfgs *ClientConfigs, d nodeDirs, caPEM []byte) {
	t.Helper()
	if cfgs.Bootstrap == nil {
		t.Fatal("no bootstrap config")
	}
	if cfgs.Bootstrap.BearerToken != testToken || cfgs.Bootstrap.Host != testServer {
		t.Errorf("bootstrap config host %q token %q, want the bootstrap kubeconfig's", cfgs.Bootstrap.Host, cfgs.Bootstrap.BearerToken)
	}
	c := cfgs.Client
	if c.CertFile != d.pem || c.KeyFile != d.pem || cfgs.CertFile != d.pem || cfgs.KeyFile != d.pem {
		t.Errorf("client cert %q key %q (%q, %q), want %q", c.CertFile, c.KeyFile, cfgs.CertFile, cfgs.KeyFile, d.pem)
	}
	if c.BearerToken != "" || c.Host != testServer {
		t.Errorf("client config host %q token %q, want the server and no token", c.Host, c.BearerToken)
	}
	assertCA(t, "client config", c, caPEM)

	fi, err := os.Stat(d.kubeconfig)
	if err != nil {
		t.Fatalf("kubeconfig not written: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("kubeconfig mode %o, want 600", fi.Mode().Perm())
	}
	if fi, err := os.Stat(d.certDir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("cert dir: %v, mode %o, want 700", err, fi.Mode().Perm())
	}
	written, err := clientcmd.LoadFromFile(d.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	kctx := written.Contexts[written.CurrentContext]
	if kctx == nil {
		t.Fatalf("written kubeconfig has no current context: %+v", written)
	}
	auth, cluster := written.AuthInfos[kctx.AuthInfo], written.Clusters[kctx.Cluster]
	if auth.ClientCertificate != d.pem || auth.ClientKey != d.pem || auth.Token != "" {
		t.Errorf("written kubeconfig user %+v, want certificate and key %s", auth, d.pem)
	}
	if cluster.Server != testServer {
		t.Errorf("written kubeconfig server %q, want %q", cluster.Server, testServer)
	}
	// Loaded as the next start loads it, once the store wrote the
	// certificate, it reaches the same CA.
	if _, err := os.Stat(d.pem); err == nil {
		t.Fatalf("%s exists before any certificate was signed", d.pem)
	}
	writeFile(t, d.pem, []byte("placeholder"))
	defer os.Remove(d.pem)
	rc, err := loadRESTConfig(d.kubeconfig)
	if err != nil {
		t.Fatalf("written kubeconfig does not load: %v", err)
	}
	assertCA(t, "written kubeconfig", rc, caPEM)
}

// assertCA checks that cfg trusts the CA in caPEM, embedded or by file.
func assertCA(t *testing.T, what string, cfg *rest.Config, caPEM []byte) {
	t.Helper()
	data := cfg.CAData
	if len(data) == 0 && cfg.CAFile != "" {
		var err error
		if data, err = os.ReadFile(cfg.CAFile); err != nil {
			t.Errorf("%s: CA file: %v", what, err)
			return
		}
	}
	if !bytes.Equal(data, caPEM) {
		t.Errorf("%s: CA %q (file %q), want the cluster CA", what, data, cfg.CAFile)
	}
}

// After bootstrapping, the certificate store writes the signed
// certificate; the next start uses it and does not bootstrap again.
func TestLoadClientConfigAfterBootstrap(t *testing.T) {
	t.Parallel()
	_, ctx := ktesting.NewTestContext(t)
	ca := newTestCA(t)
	d := newNodeDirs(t)
	writeKubeconfig(t, d.bootstrap, ca.pem, "", &clientcmdapi.AuthInfo{Token: testToken})
	if _, err := LoadClientConfig(ctx, d.kubeconfig, d.bootstrap, d.certDir); err != nil {
		t.Fatal(err)
	}
	signed := ca.issue(t, leafOptions{cn: "system:node:edge-1"})
	writeFile(t, d.pem, append(signed.certPEM, signed.keyPEM...))

	cfgs, err := LoadClientConfig(ctx, d.kubeconfig, d.bootstrap, d.certDir)
	if err != nil {
		t.Fatal(err)
	}
	if cfgs.Bootstrap != nil {
		t.Error("bootstrapping again with a valid certificate")
	}
	if cfgs.Client.CertFile != d.pem || cfgs.Client.Host != testServer {
		t.Errorf("client cert %q host %q, want %q and %q", cfgs.Client.CertFile, cfgs.Client.Host, d.pem, testServer)
	}
}

// reviewServer answers SelfSubjectReview creation with codes in turn (the
// last repeats) and records the credentials it was sent.
type reviewServer struct {
	mu     sync.Mutex
	codes  []int
	calls  int
	tokens []string
	paths  []string
}

func (s *reviewServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.paths = append(s.paths, r.Method+" "+r.URL.Path)
	s.tokens = append(s.tokens, strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
	code := s.codes[min(s.calls, len(s.codes)-1)]
	s.calls++
	s.mu.Unlock()
	if code != http.StatusCreated {
		writeStatus(w, code)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(&authenticationv1.SelfSubjectReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "authentication.k8s.io/v1", Kind: "SelfSubjectReview"},
		Status: authenticationv1.SelfSubjectReviewStatus{UserInfo: authenticationv1.UserInfo{
			Username: "system:bootstrap:" + tokenID, Groups: []string{"system:bootstrappers"},
		}},
	})
}

func TestCheckBootstrapCredentials(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	tests := []struct {
		name      string
		codes     []int
		token     string
		timeout   time.Duration
		wantErr   []string
		wantToken bool // error wraps ErrBootstrapToken
		wantCalls int
	}{
		{name: "accepted", codes: []int{http.StatusCreated}, wantCalls: 1},
		{name: "authenticated, review not allowed", codes: []int{http.StatusForbidden}, wantCalls: 1},
		{name: "authenticated, review API missing", codes: []int{http.StatusNotFound}, wantCalls: 1},
		{
			name: "refused", codes: []int{http.StatusUnauthorized},
			wantErr: []string{`bootstrap token "abcdef"`, "401", "kubeadm token create"}, wantToken: true, wantCalls: 1,
		},
		{
			name: "refused, credentials that are not a token", codes: []int{http.StatusUnauthorized}, token: "opaque",
			wantErr: []string{"the bootstrap credentials"}, wantToken: true, wantCalls: 1,
		},
		{name: "server error, then accepted", codes: []int{http.StatusInternalServerError, http.StatusCreated}, wantCalls: 2},
		{
			name: "server errors until the context ends", codes: []int{http.StatusInternalServerError}, timeout: 300 * time.Millisecond,
			wantErr: []string{`checking bootstrap token "abcdef"`, "last error"}, wantCalls: 1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, ctx := ktesting.NewTestContext(t)
			if tc.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.timeout)
				defer cancel()
			}
			rs := &reviewServer{codes: tc.codes}
			srv := startTLSServer(t, ca, rs, nil)
			token := testToken
			if tc.token != "" {
				token = tc.token
			}
			err := CheckBootstrapCredentials(ctx, &rest.Config{Host: srv.URL, BearerToken: token, TLSClientConfig: rest.TLSClientConfig{CAData: ca.pem}})
			switch {
			case len(tc.wantErr) == 0 && err != nil:
				t.Fatalf("CheckBootstrapCredentials() = %v, want nil", err)
			case len(tc.wantErr) > 0 && err == nil:
				t.Fatal("CheckBootstrapCredentials() = nil, want an error")
			case err != nil:
				if errors.Is(err, ErrBootstrapToken) != tc.wantToken {
					t.Errorf("error %v: wraps ErrBootstrapToken %v, want %v", err, errors.Is(err, ErrBootstrapToken), tc.wantToken)
				}
				for _, s := range tc.wantErr {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not contain %q", err, s)
					}
				}
				if strings.Contains(err.Error(), tokenSecret) {
					t.Errorf("error %q shows the token secret", err)
				}
			}
			rs.mu.Lock()
			defer rs.mu.Unlock()
			if rs.calls != tc.wantCalls {
				t.Errorf("%d reviews, want %d", rs.calls, tc.wantCalls)
			}
			for i := range rs.calls {
				if rs.paths[i] != "POST /apis/authentication.k8s.io/v1/selfsubjectreviews" || rs.tokens[i] != token {
					t.Errorf("request %d: %s with token %q, want a SelfSubjectReview with the bootstrap token", i, rs.paths[i], rs.tokens[i])
				}
			}
		})
	}
}

// fakeManager is a certificate.Manager whose certificate the test sets.
type fakeManager struct {
	cert atomic.Pointer[tls.Certificate]
}

var _ certificate.Manager = (*fakeManager)(nil)

func (m *fakeManager) Start()                    {}
func (m *fakeManager) Stop()                     {}
func (m *fakeManager) ServerHealthy() bool       { return true }
func (m *fakeManager) Current() *tls.Certificate { return m.cert.Load() }

// cnServer answers every request with the common name of the client
// certificate presented in the TLS handshake, and reports each closed
// connection on closed.
func cnServer(t *testing.T, ca *testCA) (srv *httptest.Server, closed <-chan struct{}, newConns *atomic.Int32) {
	t.Helper()
	ch := make(chan struct{}, 16)
	newConns = &atomic.Int32{}
	srv = startTLSServer(t, ca, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.TLS.PeerCertificates) == 0 {
			http.Error(w, "no client certificate", http.StatusUnauthorized)
			return
		}
		_, _ = io.WriteString(w, r.TLS.PeerCertificates[0].Subject.CommonName)
	}), func(s *httptest.Server) {
		s.TLS.ClientAuth = tls.RequestClientCert
		s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
			switch st {
			case http.StateNew:
				newConns.Add(1)
			case http.StateClosed, http.StateHijacked:
				select {
				case ch <- struct{}{}:
				default:
				}
			}
		}
	})
	return srv, ch, newConns
}

func TestUpdateTransportRotatesWithoutRestart(t *testing.T) {
	t.Parallel()
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ca := newTestCA(t)
	srv, closed, newConns := cnServer(t, ca)
	first := ca.issue(t, leafOptions{cn: "system:node:first"})
	second := ca.issue(t, leafOptions{cn: "system:node:second"})
	static := ca.issue(t, leafOptions{cn: "static"})

	m := &fakeManager{}
	m.cert.Store(&first.tls)
	// A static client certificate in the config is replaced by the
	// manager's.
	cfg := &rest.Config{Host: srv.URL, TLSClientConfig: rest.TLSClientConfig{CAData: ca.pem, CertData: static.certPEM, KeyData: static.keyPEM}}
	closeAll, err := UpdateTransport(ctx, cfg, m, 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Transport == nil || len(cfg.TLSClientConfig.CAData) != 0 || len(cfg.TLSClientConfig.CertData) != 0 {
		t.Fatalf("config not switched to the transport: %+v", cfg.TLSClientConfig)
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	whoami := func() string {
		t.Helper()
		b, err := client.Discovery().RESTClient().Get().AbsPath("/whoami").DoRaw(ctx)
		if err != nil {
			t.Fatalf("request: %v", err)
		}
		return string(b)
	}

	if got := whoami(); got != "system:node:first" {
		t.Fatalf("presented %q, want system:node:first", got)
	}
	if got := whoami(); got != "system:node:first" || newConns.Load() != 1 {
		t.Fatalf("presented %q over %d connections, want system:node:first over the one kept alive", got, newConns.Load())
	}

	// The manager rotates: the open connection is closed, and the next
	// request handshakes again with the new certificate.
	m.cert.Store(&second.tls)
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("the connection with the old certificate was not closed")
	}
	if got := whoami(); got != "system:node:second" {
		t.Fatalf("after rotation presented %q, want system:node:second", got)
	}
	if n := newConns.Load(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}

	// The returned function closes the connections too.
	closeAll()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("closeAll did not close the connection")
	}
	if got := whoami(); got != "system:node:second" || newConns.Load() != 3 {
		t.Errorf("after closeAll presented %q over %d connections, want system:node:second over 3", got, newConns.Load())
	}
}

func TestUpdateTransportWithoutCertificateYet(t *testing.T) {
	t.Parallel()
	_, ctx := ktesting.NewTestContext(t)
	ca := newTestCA(t)
	srv, _, _ := cnServer(t, ca)
	cfg := &rest.Config{Host: srv.URL, TLSClientConfig: rest.TLSClientConfig{CAData: ca.pem}}
	if _, err := UpdateTransport(ctx, cfg, &fakeManager{}, time.Hour); err != nil {
		t.Fatal(err)
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, err = client.Discovery().RESTClient().Get().AbsPath("/whoami").DoRaw(ctx)
	if !apierrors.IsUnauthorized(err) {
		t.Errorf("request without a certificate: %v, want the server's refusal", err)
	}
}

func TestUpdateTransportRefusesConfiguredTransport(t *testing.T) {
	t.Parallel()
	_, ctx := ktesting.NewTestContext(t)
	tests := []struct {
		name string
		cfg  *rest.Config
	}{
		{name: "transport", cfg: &rest.Config{Host: testServer, Transport: http.DefaultTransport}},
		{name: "dialer", cfg: &rest.Config{Host: testServer, Dial: (&net.Dialer{}).DialContext}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			closeAll, err := UpdateTransport(ctx, tc.cfg, &fakeManager{}, time.Hour)
			if err == nil || closeAll != nil {
				t.Fatalf("UpdateTransport() = %v, want an error", err)
			}
			if !strings.Contains(err.Error(), "already a transport") {
				t.Errorf("error %q does not say why", err)
			}
		})
	}
}
