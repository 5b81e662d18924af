package bootstrap

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	certutil "k8s.io/client-go/util/cert"
	"k8s.io/cluster-bootstrap/token/jws"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/ktesting"
)

const (
	tokenID     = "abcdef"
	tokenSecret = "0123456789abcdef"
	testToken   = tokenID + "." + tokenSecret
)

// clusterInfoKubeconfig is what kubeadm puts in cluster-info: a kubeconfig
// with one cluster, named "", holding the server and the CA.
func clusterInfoKubeconfig(t *testing.T, server string, caPEM []byte) string {
	t.Helper()
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[""] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: caPEM}
	b, err := clientcmd.Write(*cfg)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// signedData is cluster-info's data: the kubeconfig and its signature with
// the token, as the controller-manager's bootstrapsigner makes it.
func signedData(t *testing.T, kubeconfig, id, secret string) map[string]string {
	t.Helper()
	sig, err := jws.ComputeDetachedSignature(kubeconfig, id, secret)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{"kubeconfig": kubeconfig, "jws-kubeconfig-" + id: sig}
}

// clusterInfoServer answers GET kube-public/configmaps/cluster-info.
type clusterInfoServer struct {
	mu sync.Mutex
	// respond answers the n-th read (from 0) with a status code and, for
	// 200, the ConfigMap's data.
	respond    func(n int) (int, map[string]string)
	reads      int
	withCreds  int
	otherPaths []string
}

func (s *clusterInfoServer) setRespond(f func(n int) (int, map[string]string)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.respond = f
}

func (s *clusterInfoServer) counts() (reads, withCreds int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reads, s.withCreds
}

func (s *clusterInfoServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if r.Method != http.MethodGet || r.URL.Path != "/api/v1/namespaces/kube-public/configmaps/cluster-info" {
		s.otherPaths = append(s.otherPaths, r.Method+" "+r.URL.Path)
		s.mu.Unlock()
		writeStatus(w, http.StatusNotFound)
		return
	}
	n := s.reads
	s.reads++
	if r.Header.Get("Authorization") != "" {
		s.withCreds++
	}
	respond := s.respond
	s.mu.Unlock()

	code, data := respond(n)
	if code != http.StatusOK {
		writeStatus(w, code)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(&v1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Name: "cluster-info", Namespace: "kube-public"},
		Data:       data,
	})
}

// writeStatus answers as the API server does when it refuses.
func writeStatus(w http.ResponseWriter, code int) {
	reasons := map[int]metav1.StatusReason{
		http.StatusUnauthorized:        metav1.StatusReasonUnauthorized,
		http.StatusForbidden:           metav1.StatusReasonForbidden,
		http.StatusNotFound:            metav1.StatusReasonNotFound,
		http.StatusInternalServerError: metav1.StatusReasonInternalError,
		http.StatusServiceUnavailable:  metav1.StatusReasonServiceUnavailable,
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(&metav1.Status{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Status"},
		Status:   metav1.StatusFailure,
		Message:  "refused by the test server",
		Reason:   reasons[code],
		Code:     int32(code),
	})
}

// discoveryEnv is an API server with a signed cluster-info.
type discoveryEnv struct {
	ca         *testCA
	srv        *httptest.Server
	info       *clusterInfoServer
	kubeconfig string
}

func newDiscoveryEnv(t *testing.T) *discoveryEnv {
	t.Helper()
	env := &discoveryEnv{ca: newTestCA(t), info: &clusterInfoServer{}}
	env.srv = startTLSServer(t, env.ca, env.info, nil)
	env.kubeconfig = clusterInfoKubeconfig(t, env.srv.URL, env.ca.pem)
	data := signedData(t, env.kubeconfig, tokenID, tokenSecret)
	env.info.setRespond(func(int) (int, map[string]string) { return http.StatusOK, data })
	return env
}

func TestDiscover(t *testing.T) {
	t.Parallel()
	otherCA := newTestCA(t)
	tests := []struct {
		name string
		// opts adjusts the options, which name the test server, the
		// token and the CA's hash.
		opts func(o *DiscoveryOptions, env *discoveryEnv)
		// respond replaces the server's answers.
		respond   func(t *testing.T, env *discoveryEnv) func(n int) (int, map[string]string)
		wantErr   []string // substrings; none for success
		wantReads int
	}{
		{
			name:      "success",
			wantReads: 2,
		},
		{
			name: "one of several hashes matches",
			opts: func(o *DiscoveryOptions, env *discoveryEnv) {
				o.CACertHashes = []string{CAHash(otherCA.cert), CAHash(env.ca.cert)}
			},
			wantReads: 2,
		},
		{
			name: "unsafe skip of CA verification",
			opts: func(o *DiscoveryOptions, _ *discoveryEnv) {
				o.CACertHashes = nil
				o.UnsafeSkipCAVerification = true
			},
			wantReads: 2,
		},
		{
			name: "CA hash mismatch",
			opts: func(o *DiscoveryOptions, _ *discoveryEnv) {
				o.CACertHashes = []string{CAHash(otherCA.cert)}
			},
			wantErr: []string{
				// kubeadm's words (token.go validateClusterCA, pubkeypin.Set.CheckAny).
				`cluster CA found in cluster-info ConfigMap is invalid: none of the public keys "sha256:`, `" are pinned`,
				"does not match", "expected " + CAHash(otherCA.cert), "found "},
			wantReads: 1,
		},
		{
			name: "wrong token secret",
			opts: func(o *DiscoveryOptions, _ *discoveryEnv) {
				o.Token = tokenID + ".ffffffffffffffff"
			},
			wantErr:   []string{"failed to verify JWS signature of received cluster info object, can't trust this API Server", `token "abcdef"`, "does not verify"},
			wantReads: 1,
		},
		{
			name: "missing signature for the token",
			respond: func(t *testing.T, env *discoveryEnv) func(int) (int, map[string]string) {
				data := signedData(t, env.kubeconfig, "zzzzzz", tokenSecret)
				return func(int) (int, map[string]string) { return http.StatusOK, data }
			},
			wantErr: []string{
				`token id "abcdef" is invalid for this cluster or it has expired. Use "kubeadm token create" on the control-plane node to create a new valid token`,
				"no signature", `token "abcdef"`},
			wantReads: 1,
		},
		{
			name: "no kubeconfig in cluster-info",
			respond: func(*testing.T, *discoveryEnv) func(int) (int, map[string]string) {
				return func(int) (int, map[string]string) {
					return http.StatusOK, map[string]string{"jws-kubeconfig-abcdef": "x"}
				}
			},
			wantErr:   []string{"there is no kubeconfig key in the cluster-info ConfigMap. This API Server isn't set up for token bootstrapping, can't connect", `no "kubeconfig" key`},
			wantReads: 1,
		},
		{
			name: "signed kubeconfig without a CA",
			respond: func(t *testing.T, env *discoveryEnv) func(int) (int, map[string]string) {
				data := signedData(t, clusterInfoKubeconfig(t, env.srv.URL, nil), tokenID, tokenSecret)
				return func(int) (int, map[string]string) { return http.StatusOK, data }
			},
			wantErr:   []string{"names no cluster CA"},
			wantReads: 1,
		},
		{
			name: "signed garbage",
			respond: func(t *testing.T, _ *discoveryEnv) func(int) (int, map[string]string) {
				data := signedData(t, "{not a kubeconfig", tokenID, tokenSecret)
				return func(int) (int, map[string]string) { return http.StatusOK, data }
			},
			wantErr:   []string{"couldn't parse the kubeconfig file in the cluster-info ConfigMap: "},
			wantReads: 1,
		},
		{
			name: "malformed token",
			opts: func(o *DiscoveryOptions, _ *discoveryEnv) {
				o.Token = "abcdef.0123456789ABCDEF"
			},
			wantErr: []string{"abcdef.<secret>", "not of the form"},
		},
		{
			name: "token without a dot",
			opts: func(o *DiscoveryOptions, _ *discoveryEnv) {
				o.Token = "abcdef0123456789abcdef"
			},
			wantErr: []string{"<invalid>"},
		},
		{
			name: "no hash and no unsafe skip",
			opts: func(o *DiscoveryOptions, _ *discoveryEnv) {
				o.CACertHashes = nil
			},
			wantErr: []string{"no --discovery-token-ca-cert-hash"},
		},
		{
			name: "hash in upper case",
			opts: func(o *DiscoveryOptions, env *discoveryEnv) {
				o.CACertHashes = []string{"SHA256:" + strings.ToUpper(strings.TrimPrefix(CAHash(env.ca.cert), "sha256:"))}
			},
			wantReads: 2,
		},
		{
			name: "unknown hash format",
			opts: func(o *DiscoveryOptions, _ *discoveryEnv) {
				o.CACertHashes = []string{"md5:0123"}
			},
			wantErr: []string{`invalid discovery token CA certificate hash: unknown hash format "md5". Known format(s) are: sha256`},
		},
		{
			name: "hash without its format",
			opts: func(o *DiscoveryOptions, env *discoveryEnv) {
				o.CACertHashes = []string{strings.TrimPrefix(CAHash(env.ca.cert), "sha256:")}
			},
			wantErr: []string{`invalid discovery token CA certificate hash: invalid hash, expected "format:hex-value". Known format(s) are: sha256`},
		},
		{
			name: "hash that is not hex",
			opts: func(o *DiscoveryOptions, _ *discoveryEnv) {
				o.CACertHashes = []string{"sha256:" + strings.Repeat("zz", 32)}
			},
			wantErr: []string{`invalid hash "sha256:` + strings.Repeat("zz", 32) + `", could not decode SHA-256 from hex`},
		},
		{
			name: "malformed TLS bootstrap token",
			opts: func(o *DiscoveryOptions, _ *discoveryEnv) {
				o.TLSBootstrapToken = "short.0123456789abcdef"
			},
			wantErr: []string{`token "short.<secret>" is not of the form`},
		},
		{
			name: "malformed hash",
			opts: func(o *DiscoveryOptions, _ *discoveryEnv) {
				o.CACertHashes = []string{"sha256:abc"}
			},
			wantErr: []string{`invalid discovery token CA certificate hash: invalid hash "sha256:abc", expected a 32 byte SHA-256 hash, found 1 bytes`},
		},
		{
			name: "anonymous reads forbidden",
			respond: func(*testing.T, *discoveryEnv) func(int) (int, map[string]string) {
				return func(int) (int, map[string]string) { return http.StatusForbidden, nil }
			},
			wantErr:   []string{"refuses anonymous reads", "kube-public/cluster-info", "RBAC"},
			wantReads: 1,
		},
		{
			name: "anonymous auth off",
			respond: func(*testing.T, *discoveryEnv) func(int) (int, map[string]string) {
				return func(int) (int, map[string]string) { return http.StatusUnauthorized, nil }
			},
			wantErr:   []string{"refuses anonymous reads"},
			wantReads: 1,
		},
		{
			name: "no cluster-info",
			respond: func(*testing.T, *discoveryEnv) func(int) (int, map[string]string) {
				return func(int) (int, map[string]string) { return http.StatusNotFound, nil }
			},
			wantErr:   []string{"no kube-public/cluster-info ConfigMap"},
			wantReads: 1,
		},
		{
			name: "content changes between the two reads",
			respond: func(t *testing.T, env *discoveryEnv) func(int) (int, map[string]string) {
				first := signedData(t, env.kubeconfig, tokenID, tokenSecret)
				second := signedData(t, clusterInfoKubeconfig(t, "https://elsewhere.example:6443", env.ca.pem), tokenID, tokenSecret)
				return func(n int) (int, map[string]string) {
					if n == 0 {
						return http.StatusOK, first
					}
					return http.StatusOK, second
				}
			},
			wantErr:   []string{"the second kubeconfig from the cluster-info ConfigMap (using validated TLS) was different from the first"},
			wantReads: 2,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, ctx := ktesting.NewTestContext(t)
			env := newDiscoveryEnv(t)
			if tc.respond != nil {
				env.info.setRespond(tc.respond(t, env))
			}
			o := DiscoveryOptions{Server: env.srv.URL, Token: testToken, CACertHashes: []string{CAHash(env.ca.cert)}, Timeout: 5 * time.Second}
			if tc.opts != nil {
				tc.opts(&o, env)
			}
			cfg, err := Discover(ctx, o)
			reads, withCreds := env.info.counts()
			if reads != tc.wantReads {
				t.Errorf("%d cluster-info reads, want %d", reads, tc.wantReads)
			}
			if withCreds != 0 {
				t.Errorf("%d cluster-info reads carried credentials, want anonymous reads", withCreds)
			}
			if len(tc.wantErr) > 0 {
				if !errors.Is(err, ErrDiscovery) {
					t.Fatalf("Discover() error = %v, want one wrapping ErrDiscovery", err)
				}
				// kubeadm's wrapper (discovery.go, For) opens every error.
				if !strings.HasPrefix(err.Error(), "couldn't validate the identity of the API Server: ") {
					t.Errorf("error %q does not open with kubeadm's wording", err)
				}
				if strings.Contains(err.Error(), ErrDiscovery.Error()) {
					t.Errorf("error %q shows the sentinel's text", err)
				}
				for _, s := range tc.wantErr {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not contain %q", err, s)
					}
				}
				if strings.Contains(err.Error(), tokenSecret) || strings.Contains(strings.ToLower(err.Error()), strings.ToLower(tokenSecret)) {
					t.Errorf("error %q shows the token secret", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Discover() error: %v", err)
			}
			assertBootstrapKubeconfig(t, cfg, env.srv.URL, env.ca.pem, o.Token)
		})
	}
}

func TestDiscoverHashMismatchNamesBothHashes(t *testing.T) {
	t.Parallel()
	_, ctx := ktesting.NewTestContext(t)
	env := newDiscoveryEnv(t)
	want1, want2 := CAHash(newTestCA(t).cert), CAHash(newTestCA(t).cert)
	_, err := Discover(ctx, DiscoveryOptions{Server: env.srv.URL, Token: testToken, CACertHashes: []string{want1, want2}, Timeout: 5 * time.Second})
	if !errors.Is(err, ErrDiscovery) {
		t.Fatalf("Discover() error = %v, want ErrDiscovery", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "expected "+want1+" or "+want2) || !strings.Contains(msg, "found "+CAHash(env.ca.cert)) {
		t.Errorf("error %q does not name the expected hashes and the CA's", msg)
	}
	// kubeadm's message, word for word, before krustlet's detail.
	want := `couldn't validate the identity of the API Server: cluster CA found in cluster-info ConfigMap is invalid: none of the public keys "` +
		CAHash(env.ca.cert) + `" are pinned (`
	if !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error %q does not start with %q", err, want)
	}
}

// kubeadm's split: the discovery token checks cluster-info's signature, the
// TLS bootstrap token is what the kubeconfig authenticates with.
func TestDiscoverSplitTokens(t *testing.T) {
	t.Parallel()
	_, ctx := ktesting.NewTestContext(t)
	env := newDiscoveryEnv(t)
	const tlsToken = "ghijkl.ghijklmnopqrstuv"
	cfg, err := Discover(ctx, DiscoveryOptions{Server: env.srv.URL, Token: testToken, TLSBootstrapToken: tlsToken, CACertHashes: []string{CAHash(env.ca.cert)}, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	assertBootstrapKubeconfig(t, cfg, env.srv.URL, env.ca.pem, tlsToken)

	// The signature is checked with the discovery token, not the other.
	_, err = Discover(ctx, DiscoveryOptions{Server: env.srv.URL, Token: tlsToken, TLSBootstrapToken: testToken, CACertHashes: []string{CAHash(env.ca.cert)}, Timeout: 5 * time.Second})
	if !errors.Is(err, ErrDiscovery) || !strings.Contains(err.Error(), `token id "ghijkl" is invalid for this cluster`) {
		t.Errorf("Discover() with the tokens swapped: %v, want the discovery token refused", err)
	}
}

func assertBootstrapKubeconfig(t *testing.T, cfg *clientcmdapi.Config, server string, caPEM []byte, token string) {
	t.Helper()
	if err := clientcmd.Validate(*cfg); err != nil {
		t.Fatalf("returned kubeconfig is not valid: %v", err)
	}
	ctx := cfg.Contexts[cfg.CurrentContext]
	cluster, auth := cfg.Clusters[ctx.Cluster], cfg.AuthInfos[ctx.AuthInfo]
	if cluster.Server != server {
		t.Errorf("server %q, want %q", cluster.Server, server)
	}
	if !bytes.Equal(cluster.CertificateAuthorityData, caPEM) {
		t.Errorf("CA data %q, want the cluster CA", cluster.CertificateAuthorityData)
	}
	if auth.Token != token || ctx.AuthInfo != "tls-bootstrap-token-user" {
		t.Errorf("user %q with token %q, want tls-bootstrap-token-user with the token", ctx.AuthInfo, auth.Token)
	}
	// It round-trips as a file the kubelet loads.
	b, err := clientcmd.Write(*cfg)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := clientcmd.RESTConfigFromKubeConfig(b)
	if err != nil {
		t.Fatal(err)
	}
	if rc.Host != server || rc.BearerToken != token || !bytes.Equal(rc.CAData, caPEM) {
		t.Errorf("rest config host %q token %q, want %q and the token", rc.Host, rc.BearerToken, server)
	}
}

// The server's certificate is not from the CA cluster-info names: the
// verified read fails and discovery does not succeed.
func TestDiscoverServerNotFromPinnedCA(t *testing.T) {
	t.Parallel()
	_, ctx := ktesting.NewTestContext(t)
	env := newDiscoveryEnv(t)
	claimed := newTestCA(t) // cluster-info names this CA; the server's is env.ca
	data := signedData(t, clusterInfoKubeconfig(t, env.srv.URL, claimed.pem), tokenID, tokenSecret)
	env.info.setRespond(func(int) (int, map[string]string) { return http.StatusOK, data })
	_, err := Discover(ctx, DiscoveryOptions{Server: env.srv.URL, Token: testToken, CACertHashes: []string{CAHash(claimed.cert)}, Timeout: 300 * time.Millisecond})
	if err == nil {
		t.Fatal("Discover() succeeded against a server whose certificate the pinned CA did not sign")
	}
	if !strings.Contains(err.Error(), "certificate") {
		t.Errorf("error %q does not name the certificate problem", err)
	}
	if reads, _ := env.info.counts(); reads != 1 {
		t.Errorf("%d reads answered, want 1: the verified read never reaches the handler", reads)
	}
}

// signalSink is a logger that closes a channel when a message containing
// want is logged.
func signalSink(want string) (logr.Logger, <-chan struct{}) {
	ch := make(chan struct{})
	var once sync.Once
	return funcr.New(func(_, args string) {
		if strings.Contains(args, want) {
			once.Do(func() { close(ch) })
		}
	}, funcr.Options{}), ch
}

func TestDiscoverRetriesUntilServerIsUp(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	// Take a free port and release it: nothing listens there yet.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	server := "https://" + addr
	info := &clusterInfoServer{}
	data := signedData(t, clusterInfoKubeconfig(t, server, ca.pem), tokenID, tokenSecret)
	info.setRespond(func(int) (int, map[string]string) { return http.StatusOK, data })

	logger, waiting := signalSink("Waiting for the API server to answer token discovery")
	ctx := klog.NewContext(context.Background(), logger)
	type result struct {
		cfg *clientcmdapi.Config
		err error
	}
	done := make(chan result, 1)
	go func() {
		cfg, err := Discover(ctx, DiscoveryOptions{Server: server, Token: testToken, CACertHashes: []string{CAHash(ca.cert)}, Timeout: 5 * time.Second})
		done <- result{cfg, err}
	}()
	select {
	case <-waiting:
	case r := <-done:
		t.Fatalf("Discover() returned %v before the server was up", r.err)
	case <-time.After(5 * time.Second):
		t.Fatal("Discover() did not report waiting for the server")
	}

	// Now the API server comes up at that address.
	l, err = net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("the port was taken meanwhile: %v", err)
	}
	startTLSServer(t, ca, info, func(s *httptest.Server) {
		s.Listener.Close()
		s.Listener = l
	})
	r := <-done
	if r.err != nil {
		t.Fatalf("Discover() error = %v, want success once the server is up", r.err)
	}
	assertBootstrapKubeconfig(t, r.cfg, server, ca.pem, testToken)
}

func TestDiscoverGivesUpAtTimeout(t *testing.T) {
	t.Parallel()
	_, ctx := ktesting.NewTestContext(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	server := "https://" + l.Addr().String()
	l.Close()
	start := time.Now()
	_, err = Discover(ctx, DiscoveryOptions{Server: server, Token: testToken, CACertHashes: []string{CAHash(newTestCA(t).cert)}, Timeout: 200 * time.Millisecond})
	if err == nil || errors.Is(err, ErrDiscovery) {
		t.Fatalf("Discover() error = %v, want a timeout that is not a refusal", err)
	}
	// kubeadm's wording (discovery.go For, token.go getClusterInfo), with
	// the last error and the timeout.
	want := `couldn't validate the identity of the API Server: failed to request the cluster-info ConfigMap: Get "` + server + `/api/v1/namespaces/kube-public/configmaps/cluster-info?timeout=10s": dial tcp `
	if !errors.Is(err, context.DeadlineExceeded) || !strings.HasPrefix(err.Error(), want) ||
		!strings.Contains(err.Error(), "connection refused") || !strings.Contains(err.Error(), "gave up after the discovery timeout of 200ms") {
		t.Errorf("error %q does not say it timed out and why", err)
	}
	if elapsed := time.Since(start); elapsed > 3*time.Second {
		t.Errorf("gave up after %v, want about the 200 ms timeout", elapsed)
	}
}

func TestDiscoverRetriesServerErrors(t *testing.T) {
	t.Parallel()
	_, ctx := ktesting.NewTestContext(t)
	env := newDiscoveryEnv(t)
	data := signedData(t, env.kubeconfig, tokenID, tokenSecret)
	env.info.setRespond(func(n int) (int, map[string]string) {
		if n == 0 {
			return http.StatusServiceUnavailable, nil
		}
		return http.StatusOK, data
	})
	cfg, err := Discover(ctx, DiscoveryOptions{Server: env.srv.URL, Token: testToken, CACertHashes: []string{CAHash(env.ca.cert)}, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("Discover() error = %v, want success after a 503", err)
	}
	assertBootstrapKubeconfig(t, cfg, env.srv.URL, env.ca.pem, testToken)
	if reads, _ := env.info.counts(); reads != 3 {
		t.Errorf("%d reads, want 3 (one 503, then the two reads)", reads)
	}
}

func TestCAHash(t *testing.T) {
	t.Run("known value", func(t *testing.T) {
		// testdata/ca.crt was made with openssl; its hash as kubeadm's
		// documentation computes it:
		//   openssl x509 -pubkey -in ca.crt -noout | openssl pkey -pubin -outform der |
		//     openssl dgst -sha256 -hex
		const want = "sha256:81f5c38d244c55bb2cdacd01786436e06c92d3230a417d682f1bc32c910e7fae"
		data, err := os.ReadFile("testdata/ca.crt")
		if err != nil {
			t.Fatal(err)
		}
		certs, err := certutil.ParseCertsPEM(data)
		if err != nil {
			t.Fatal(err)
		}
		if got := CAHash(certs[0]); got != want {
			t.Errorf("CAHash() = %s, want %s", got, want)
		}
	})
	t.Run("hash of the public key, not of the certificate", func(t *testing.T) {
		ca := newTestCA(t)
		der, err := x509.MarshalPKIXPublicKey(&ca.key.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(der)
		if got, want := CAHash(ca.cert), "sha256:"+hex.EncodeToString(sum[:]); got != want {
			t.Errorf("CAHash() = %s, want %s", got, want)
		}
		// A certificate re-issued for the same key has the same hash.
		tmpl := *ca.cert
		tmpl.SerialNumber = big.NewInt(999)
		tmpl.Subject.CommonName = "renewed-ca"
		der, err = x509.CreateCertificate(rand.Reader, &tmpl, &tmpl, &ca.key.PublicKey, ca.key)
		if err != nil {
			t.Fatal(err)
		}
		reissued, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		if CAHash(reissued) != CAHash(ca.cert) {
			t.Error("a certificate for the same key has another hash")
		}
		if CAHash(newTestCA(t).cert) == CAHash(ca.cert) {
			t.Error("two keys have the same hash")
		}
	})
}
