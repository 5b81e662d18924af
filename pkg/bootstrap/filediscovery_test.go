package bootstrap

import (
	"bytes"
	"crypto/x509"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/klog/v2/ktesting"
)

// writeConfig writes cfg to dir/name and returns the path.
func writeConfig(t *testing.T, dir, name string, cfg *clientcmdapi.Config) string {
	t.Helper()
	data, err := clientcmd.Write(*cfg)
	if err != nil {
		t.Fatal(err)
	}
	return writeFile(t, filepath.Join(dir, name), data)
}

// userKubeconfig is a kubeconfig whose current context has cluster and user.
func userKubeconfig(cluster *clientcmdapi.Cluster, user *clientcmdapi.AuthInfo) *clientcmdapi.Config {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["c"] = cluster
	cfg.AuthInfos["u"] = user
	cfg.Contexts["u@c"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "u"}
	cfg.CurrentContext = "u@c"
	return cfg
}

func TestDiscoverFromFile(t *testing.T) {
	t.Parallel()
	otherCA := newTestCA(t)
	tests := []struct {
		name string
		// file writes what --discovery-file names, under dir, and returns
		// the flag's value.
		file func(t *testing.T, env *discoveryEnv, dir string) string
		// token is --tls-bootstrap-token.
		token string
		// respond replaces the API server's answers.
		respond func(n int) (int, map[string]string)
		// roots verify an https:// file's server; the test CA when nil.
		roots   func(env *discoveryEnv) *x509.CertPool
		timeout time.Duration
		// check looks at the returned kubeconfig.
		check     func(t *testing.T, cfg *clientcmdapi.Config, env *discoveryEnv, dir string)
		wantErr   []string // substrings; none for success
		noCreds   bool     // the error is ErrNoCredentials
		wantReads int
	}{
		{
			name: "cluster-info's kubeconfig and a TLS bootstrap token",
			file: func(t *testing.T, env *discoveryEnv, dir string) string {
				return writeFile(t, filepath.Join(dir, "cluster-info.yaml"), []byte(env.kubeconfig))
			},
			token: testToken,
			check: func(t *testing.T, cfg *clientcmdapi.Config, env *discoveryEnv, _ string) {
				assertBootstrapKubeconfig(t, cfg, env.srv.URL, env.ca.pem, testToken)
			},
			wantReads: 1,
		},
		{
			name: "CA in a file next to the kubeconfig",
			file: func(t *testing.T, env *discoveryEnv, dir string) string {
				writeFile(t, filepath.Join(dir, "pki", "ca.crt"), env.ca.pem)
				cfg := clientcmdapi.NewConfig()
				cfg.Clusters[""] = &clientcmdapi.Cluster{Server: env.srv.URL, CertificateAuthority: "pki/ca.crt"}
				return writeConfig(t, dir, "discovery.yaml", cfg)
			},
			token: testToken,
			check: func(t *testing.T, cfg *clientcmdapi.Config, env *discoveryEnv, _ string) {
				assertBootstrapKubeconfig(t, cfg, env.srv.URL, env.ca.pem, testToken)
			},
			wantReads: 1,
		},
		{
			name: "the file's own client certificate",
			file: func(t *testing.T, env *discoveryEnv, dir string) string {
				client := env.ca.issue(t, leafOptions{cn: "bootstrapper"})
				writeFile(t, filepath.Join(dir, "client.crt"), client.certPEM)
				writeFile(t, filepath.Join(dir, "client.key"), client.keyPEM)
				return writeConfig(t, dir, "discovery.yaml", userKubeconfig(
					&clientcmdapi.Cluster{Server: env.srv.URL, CertificateAuthorityData: env.ca.pem},
					&clientcmdapi.AuthInfo{ClientCertificate: "client.crt", ClientKey: "client.key"}))
			},
			check: func(t *testing.T, cfg *clientcmdapi.Config, env *discoveryEnv, dir string) {
				auth := cfg.AuthInfos[cfg.Contexts[cfg.CurrentContext].AuthInfo]
				if auth.Token != "" || len(auth.ClientCertificateData) == 0 || len(auth.ClientKeyData) == 0 || auth.ClientCertificate != "" || auth.ClientKey != "" {
					t.Errorf("user %+v, want the client certificate and key embedded", auth)
				}
				rc, err := clientcmd.NewDefaultClientConfig(*cfg, nil).ClientConfig()
				if err != nil {
					t.Fatal(err)
				}
				if rc.Host != env.srv.URL || !bytes.Equal(rc.CAData, env.ca.pem) {
					t.Errorf("rest config host %q, CA %q", rc.Host, rc.CAData)
				}
			},
			wantReads: 1,
		},
		{
			name: "the file's own token file",
			file: func(t *testing.T, env *discoveryEnv, dir string) string {
				writeFile(t, filepath.Join(dir, "token"), []byte(testToken+"\n"))
				return writeConfig(t, dir, "discovery.yaml", userKubeconfig(
					&clientcmdapi.Cluster{Server: env.srv.URL, CertificateAuthorityData: env.ca.pem},
					&clientcmdapi.AuthInfo{TokenFile: "token"}))
			},
			check: func(t *testing.T, cfg *clientcmdapi.Config, env *discoveryEnv, _ string) {
				auth := cfg.AuthInfos[cfg.Contexts[cfg.CurrentContext].AuthInfo]
				if auth.Token != testToken || auth.TokenFile != "" {
					t.Errorf("user %+v, want the token embedded", auth)
				}
			},
			wantReads: 1,
		},
		{
			name: "a TLS bootstrap token replaces the file's credentials",
			file: func(t *testing.T, env *discoveryEnv, dir string) string {
				return writeConfig(t, dir, "discovery.yaml", userKubeconfig(
					&clientcmdapi.Cluster{Server: env.srv.URL, CertificateAuthorityData: env.ca.pem},
					&clientcmdapi.AuthInfo{Token: "other.credentials"}))
			},
			token: testToken,
			check: func(t *testing.T, cfg *clientcmdapi.Config, env *discoveryEnv, _ string) {
				assertBootstrapKubeconfig(t, cfg, env.srv.URL, env.ca.pem, testToken)
			},
			wantReads: 1,
		},
		{
			name: "no credentials and no TLS bootstrap token",
			file: func(t *testing.T, env *discoveryEnv, dir string) string {
				return writeFile(t, filepath.Join(dir, "cluster-info.yaml"), []byte(env.kubeconfig))
			},
			wantErr: []string{"--tls-bootstrap-token (or --token) is required: the discovery file ", "cluster-info.yaml carries no credentials"},
			noCreds: true,
		},
		{
			name: "anonymous reads refused: the TLS answer is enough",
			file: func(t *testing.T, env *discoveryEnv, dir string) string {
				return writeFile(t, filepath.Join(dir, "cluster-info.yaml"), []byte(env.kubeconfig))
			},
			token:   testToken,
			respond: func(int) (int, map[string]string) { return http.StatusForbidden, nil },
			check: func(t *testing.T, cfg *clientcmdapi.Config, env *discoveryEnv, _ string) {
				assertBootstrapKubeconfig(t, cfg, env.srv.URL, env.ca.pem, testToken)
			},
			wantReads: 1,
		},
		{
			name: "server answering with a 503 first",
			file: func(t *testing.T, env *discoveryEnv, dir string) string {
				return writeFile(t, filepath.Join(dir, "cluster-info.yaml"), []byte(env.kubeconfig))
			},
			token: testToken,
			respond: func(n int) (int, map[string]string) {
				if n == 0 {
					return http.StatusServiceUnavailable, nil
				}
				return http.StatusOK, map[string]string{"kubeconfig": "{not a kubeconfig"}
			},
			check: func(t *testing.T, cfg *clientcmdapi.Config, env *discoveryEnv, _ string) {
				assertBootstrapKubeconfig(t, cfg, env.srv.URL, env.ca.pem, testToken)
			},
			wantReads: 2,
		},
		{
			name: "CA of another cluster",
			file: func(t *testing.T, env *discoveryEnv, dir string) string {
				return writeFile(t, filepath.Join(dir, "cluster-info.yaml"), []byte(clusterInfoKubeconfig(t, env.srv.URL, otherCA.pem)))
			},
			token:   testToken,
			timeout: 300 * time.Millisecond,
			wantErr: []string{"couldn't validate the identity of the API Server: failed to request the cluster-info ConfigMap: ", "certificate", "gave up after the discovery timeout of 300ms"},
		},
		{
			name:    "no such file",
			file:    func(_ *testing.T, _ *discoveryEnv, dir string) string { return filepath.Join(dir, "missing.yaml") },
			token:   testToken,
			wantErr: []string{`couldn't validate the identity of the API Server: invalid --discovery-file "`, `missing.yaml": not a valid HTTPS URL or a file on disk`},
		},
		{
			name:    "plain http URL",
			file:    func(*testing.T, *discoveryEnv, string) string { return "http://127.0.0.1:1/cluster-info.yaml" },
			token:   testToken,
			wantErr: []string{`invalid --discovery-file "http://127.0.0.1:1/cluster-info.yaml": if a URL is used, the scheme must be https`},
		},
		{
			name: "not a kubeconfig",
			file: func(t *testing.T, _ *discoveryEnv, dir string) string {
				return writeFile(t, filepath.Join(dir, "garbage.yaml"), []byte("{not yaml"))
			},
			token:   testToken,
			wantErr: []string{"garbage.yaml holds no valid kubeconfig"},
		},
		{
			name: "no cluster",
			file: func(t *testing.T, _ *discoveryEnv, dir string) string {
				return writeConfig(t, dir, "empty.yaml", clientcmdapi.NewConfig())
			},
			token:   testToken,
			wantErr: []string{"the provided kubeconfig file must have at least one Cluster defined"},
		},
		{
			name: "several clusters and no current context",
			file: func(t *testing.T, env *discoveryEnv, dir string) string {
				cfg := clientcmdapi.NewConfig()
				cfg.Clusters["a"] = &clientcmdapi.Cluster{Server: env.srv.URL, CertificateAuthorityData: env.ca.pem}
				cfg.Clusters["b"] = &clientcmdapi.Cluster{Server: env.srv.URL, CertificateAuthorityData: env.ca.pem}
				return writeConfig(t, dir, "two.yaml", cfg)
			},
			token:   testToken,
			wantErr: []string{"the provided kubeconfig file must have a unnamed Cluster or a CurrentContext that specifies a non-nil Cluster"},
		},
		{
			name: "server without TLS",
			file: func(t *testing.T, env *discoveryEnv, dir string) string {
				return writeFile(t, filepath.Join(dir, "cluster-info.yaml"), []byte(clusterInfoKubeconfig(t, "http://127.0.0.1:1", env.ca.pem)))
			},
			token:   testToken,
			wantErr: []string{`the cluster's server "http://127.0.0.1:1" is not an https:// URL`},
		},
		{
			name: "malformed TLS bootstrap token",
			file: func(t *testing.T, env *discoveryEnv, dir string) string {
				return writeFile(t, filepath.Join(dir, "cluster-info.yaml"), []byte(env.kubeconfig))
			},
			token:   "abcdef.NOT-A-SECRET",
			wantErr: []string{`token "abcdef.<secret>" is not of the form`},
		},
		{
			name: "https URL",
			file: func(t *testing.T, env *discoveryEnv, _ string) string {
				return serveFile(t, env, http.StatusOK, env.kubeconfig) + "/cluster-info.yaml"
			},
			token: testToken,
			check: func(t *testing.T, cfg *clientcmdapi.Config, env *discoveryEnv, _ string) {
				assertBootstrapKubeconfig(t, cfg, env.srv.URL, env.ca.pem, testToken)
			},
			wantReads: 1,
		},
		{
			name: "https URL answering 404",
			file: func(t *testing.T, env *discoveryEnv, _ string) string {
				return serveFile(t, env, http.StatusNotFound, "") + "/cluster-info.yaml"
			},
			token:   testToken,
			wantErr: []string{"fetching the discovery file https://127.0.0.1:", "404 Not Found"},
		},
		{
			name: "https URL whose server the roots do not trust",
			file: func(t *testing.T, env *discoveryEnv, _ string) string {
				return serveFile(t, env, http.StatusOK, env.kubeconfig) + "/cluster-info.yaml"
			},
			roots: func(*discoveryEnv) *x509.CertPool {
				pool := x509.NewCertPool()
				pool.AddCert(otherCA.cert)
				return pool
			},
			token:   testToken,
			wantErr: []string{"fetching the discovery file: ", "certificate"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, ctx := ktesting.NewTestContext(t)
			env := newDiscoveryEnv(t)
			if tc.respond != nil {
				env.info.setRespond(tc.respond)
			}
			dir := t.TempDir()
			roots := x509.NewCertPool()
			roots.AddCert(env.ca.cert)
			if tc.roots != nil {
				roots = tc.roots(env)
			}
			timeout := tc.timeout
			if timeout == 0 {
				timeout = 5 * time.Second
			}
			cfg, err := DiscoverFromFile(ctx, FileDiscoveryOptions{File: tc.file(t, env, dir), TLSBootstrapToken: tc.token, Timeout: timeout, RootCAs: roots})
			if reads, withCreds := env.info.counts(); reads != tc.wantReads || withCreds != 0 {
				t.Errorf("%d cluster-info reads, %d with credentials; want %d anonymous ones", reads, withCreds, tc.wantReads)
			}
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Fatalf("DiscoverFromFile() error: %v", err)
				}
				if err := clientcmd.Validate(*cfg); err != nil {
					t.Errorf("returned kubeconfig is not valid: %v", err)
				}
				tc.check(t, cfg, env, dir)
				return
			}
			if err == nil {
				t.Fatal("DiscoverFromFile() succeeded, want an error")
			}
			if errors.Is(err, ErrNoCredentials) != tc.noCreds {
				t.Errorf("error %q: ErrNoCredentials %v, want %v", err, errors.Is(err, ErrNoCredentials), tc.noCreds)
			}
			if !tc.noCreds && !strings.HasPrefix(err.Error(), "couldn't validate the identity of the API Server: ") {
				t.Errorf("error %q does not open with kubeadm's wording", err)
			}
			for _, s := range tc.wantErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
			if strings.Contains(err.Error(), tokenSecret) {
				t.Errorf("error %q shows the token secret", err)
			}
		})
	}
}

// serveFile serves body with code at /cluster-info.yaml over TLS from the
// test CA and returns the server's URL.
func serveFile(t *testing.T, env *discoveryEnv, code int, body string) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /cluster-info.yaml", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(code)
		_, _ = w.Write([]byte(body))
	})
	return startTLSServer(t, env.ca, mux, nil).URL
}
