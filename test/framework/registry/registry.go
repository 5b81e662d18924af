// Package registry runs a real OCI registry on loopback for tests: the CNCF
// distribution registry (Debian's docker-registry package, 2.8), with its
// own configuration bound to 127.0.0.1 and its storage in a test directory.
// Clients reach it through an in-process reverse proxy, also on loopback,
// that records every request (to count blob downloads) and can serve other
// bytes for a blob (to test digest checks).
//
// The registry is anonymous, asks for basic auth against an htpasswd file
// (bcrypt), or asks for bearer tokens from a small token server in this
// process that issues JWTs signed with a key whose certificate the registry
// trusts (the distribution token auth flow).
//
// The binary is $KRUSTLET_REGISTRY_BIN, or docker-registry from PATH. This
// package installs nothing: `apt-get install docker-registry` does (the
// package's own service is not started where no init system runs it).
//
//	reg, err := registry.Start(ctx, registry.Options{Dir: t.TempDir(), Auth: registry.Htpasswd, Users: map[string]string{"alice": "secret"}})
//	defer reg.Stop()
//	ref := reg.Host + "/app:v1"
package registry

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/krustlet/krustlet-go/test/framework/controlplane"
)

// AuthMode is how the registry authenticates clients.
type AuthMode int

const (
	// Anonymous lets anyone pull and push.
	Anonymous AuthMode = iota
	// Htpasswd asks for basic auth against Options.Users.
	Htpasswd
	// Token asks for bearer tokens from the token server, which grants
	// pull and push to Options.Users (basic auth on the token request) and
	// nothing to anonymous clients.
	Token
)

func (m AuthMode) String() string {
	switch m {
	case Anonymous:
		return "anonymous"
	case Htpasswd:
		return "htpasswd"
	case Token:
		return "token"
	}
	return "AuthMode(" + strconv.Itoa(int(m)) + ")"
}

// Options describe a registry to start.
type Options struct {
	// Dir holds the configuration, storage and log. Required.
	Dir  string
	Auth AuthMode
	// Users are user name → password for Htpasswd and Token.
	Users map[string]string
	// Bin is the registry binary. Default: FindBinary().
	Bin string
}

// Request is one request the proxy passed on (or answered itself).
type Request struct {
	Method string
	Path   string
	Status int
}

// Registry is a running registry.
type Registry struct {
	// Host is host:port of the proxy, where clients reach the registry.
	Host string
	// Backend is host:port of the registry process itself.
	Backend string
	// TokenURL is the token server's realm (Token mode).
	TokenURL string

	proc   *controlplane.Process
	proxy  *http.Server
	tokens *http.Server

	mu       sync.Mutex
	requests []Request
	tamper   map[string][]byte
}

// FindBinary finds the distribution registry: $KRUSTLET_REGISTRY_BIN, or
// docker-registry (Debian's package) in PATH.
func FindBinary() (string, error) {
	if b := os.Getenv("KRUSTLET_REGISTRY_BIN"); b != "" {
		return b, nil
	}
	if b, err := exec.LookPath("docker-registry"); err == nil {
		return b, nil
	}
	return "", errors.New("no OCI registry binary: install Debian's docker-registry package (apt-get install docker-registry) or set KRUSTLET_REGISTRY_BIN to a CNCF distribution registry")
}

// Start starts a registry and waits until it answers.
func Start(ctx context.Context, o Options) (_ *Registry, err error) {
	if o.Dir == "" {
		return nil, errors.New("registry: Dir is required")
	}
	if o.Bin == "" {
		if o.Bin, err = FindBinary(); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, err
	}
	r := &Registry{tamper: map[string][]byte{}}
	defer func() {
		if err != nil {
			r.Stop()
		}
	}()
	// The proxy's and the token server's listeners are bound before the
	// registry's port is chosen, so that none of them can get it.
	proxyListener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r.Host = proxyListener.Addr().String()

	authConfig := ""
	switch o.Auth {
	case Anonymous:
	case Htpasswd:
		path := filepath.Join(o.Dir, "htpasswd")
		if err := writeHtpasswd(path, o.Users); err != nil {
			proxyListener.Close()
			return nil, err
		}
		authConfig = fmt.Sprintf("auth:\n  htpasswd:\n    realm: krustlet-test\n    path: %s\n", path)
	case Token:
		certPath := filepath.Join(o.Dir, "token.crt")
		issuer, err := newTokenIssuer(certPath, o.Users)
		if err != nil {
			proxyListener.Close()
			return nil, err
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			proxyListener.Close()
			return nil, err
		}
		r.TokenURL = "http://" + l.Addr().String() + "/token"
		r.tokens = &http.Server{Handler: issuer, ReadHeaderTimeout: 10 * time.Second}
		go r.tokens.Serve(l)
		authConfig = fmt.Sprintf("auth:\n  token:\n    realm: %s\n    service: %s\n    issuer: %s\n    rootcertbundle: %s\n",
			r.TokenURL, tokenService, tokenIssuerName, certPath)
	default:
		proxyListener.Close()
		return nil, fmt.Errorf("registry: unknown auth mode %v", o.Auth)
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(&url.URL{Scheme: "http", Host: r.Backend})
			pr.Out.Host = pr.In.Host
		},
		ErrorLog: log.New(io.Discard, "", 0),
	}
	r.proxy = &http.Server{Handler: r.handler(rp), ReadHeaderTimeout: 10 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}

	// A free port may be taken by another process before the registry
	// binds it: then the registry exits, and it starts again on another.
	for attempt := 1; ; attempt++ {
		port, err := controlplane.FreePort()
		if err != nil {
			proxyListener.Close()
			return nil, err
		}
		r.Backend = "127.0.0.1:" + strconv.Itoa(port)
		config := fmt.Sprintf(`version: 0.1
log:
  level: info
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
  redirect:
    disable: true
http:
  addr: %s
  secret: krustlet-test-secret
  relativeurls: true
%s`, filepath.Join(o.Dir, "storage"), r.Backend, authConfig)
		configPath := filepath.Join(o.Dir, "config.yml")
		if err := os.WriteFile(configPath, []byte(config), 0o600); err != nil {
			proxyListener.Close()
			return nil, err
		}
		if r.proc, err = controlplane.StartProcess("registry", o.Bin, []string{"serve", configPath}, o.Dir, false); err != nil {
			proxyListener.Close()
			return nil, err
		}
		err = r.waitReady(ctx, 30*time.Second)
		if err == nil {
			break
		}
		if attempt < 5 && strings.Contains(readFile(r.proc.Log), "address already in use") {
			r.proc.Stop(5 * time.Second)
			os.Rename(r.proc.Log, fmt.Sprintf("%s.%d", r.proc.Log, attempt))
			continue
		}
		proxyListener.Close()
		return nil, err
	}
	go r.proxy.Serve(proxyListener)
	return r, nil
}

// waitReady polls /v2/ until the registry answers 200 or 401.
func (r *Registry) waitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+r.Backend+"/v2/", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil && !strings.Contains(readFile(r.proc.Log), "listening on "+r.Backend) {
			resp.Body.Close() // someone else answers on the port
			err = errors.New("not listening yet")
		}
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				return nil
			}
		}
		if done, perr := r.proc.Exited(); done {
			return fmt.Errorf("registry exited (%v); log %s:\n%s", perr, r.proc.Log, readFile(r.proc.Log))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("registry did not answer on %s within %v; log %s:\n%s", r.Backend, timeout, r.proc.Log, readFile(r.proc.Log))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// handler records requests and serves tampered blobs.
func (r *Registry) handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		if body, ok := r.tampered(req); ok {
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			w.Header().Set("Docker-Content-Digest", blobDigest(req.URL.Path))
			w.WriteHeader(http.StatusOK)
			if req.Method == http.MethodGet {
				w.Write(body)
			}
		} else {
			next.ServeHTTP(rec, req)
		}
		r.mu.Lock()
		r.requests = append(r.requests, Request{Method: req.Method, Path: req.URL.Path, Status: rec.status})
		r.mu.Unlock()
	})
}

func (r *Registry) tampered(req *http.Request) ([]byte, bool) {
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		return nil, false
	}
	d := blobDigest(req.URL.Path)
	if d == "" {
		return nil, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	b, ok := r.tamper[d]
	return b, ok
}

// blobDigest returns the digest of a /v2/NAME/blobs/DIGEST path, or "".
func blobDigest(path string) string {
	i := strings.LastIndex(path, "/blobs/")
	if !strings.HasPrefix(path, "/v2/") || i < 0 {
		return ""
	}
	d := path[i+len("/blobs/"):]
	if !strings.HasPrefix(d, "sha256:") {
		return ""
	}
	return d
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Tamper makes the proxy answer GET and HEAD of the blob digest with body
// instead of the stored bytes; nil body stops tampering.
func (r *Registry) Tamper(digest string, body []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if body == nil {
		delete(r.tamper, digest)
		return
	}
	r.tamper[digest] = body
}

// Requests returns the requests the proxy has seen, in order.
func (r *Registry) Requests() []Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Request(nil), r.requests...)
}

// Count returns how many requests had method and a path ending in suffix
// (e.g. "/blobs/sha256:…" or "/manifests/v1").
func (r *Registry) Count(method, suffix string) int {
	n := 0
	for _, q := range r.Requests() {
		if q.Method == method && strings.HasSuffix(q.Path, suffix) {
			n++
		}
	}
	return n
}

// LogPath is the registry process's log.
func (r *Registry) LogPath() string {
	if r.proc == nil {
		return ""
	}
	return r.proc.Log
}

// Stop stops the proxy, the token server and the registry process.
func (r *Registry) Stop() error {
	var errs []error
	for _, s := range []*http.Server{r.proxy, r.tokens} {
		if s != nil {
			errs = append(errs, s.Close())
		}
	}
	if r.proc != nil {
		errs = append(errs, r.proc.Stop(10*time.Second))
	}
	return errors.Join(errs...)
}

func writeHtpasswd(path string, users map[string]string) error {
	var b strings.Builder
	for u, p := range users {
		h, err := bcrypt.GenerateFromPassword([]byte(p), bcrypt.MinCost)
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s:%s\n", u, h)
	}
	return os.WriteFile(path, []byte(b.String()), 0o600)
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// The token server's names, as the registry's config repeats them.
const (
	tokenService    = "krustlet-test-registry"
	tokenIssuerName = "krustlet-test-issuer"
)

// tokenIssuer is the token server of the distribution token auth flow:
// GET /token?service=…&scope=repository:NAME:ACTIONS with optional basic
// auth answers a JWT (ES256, with its certificate in the x5c header) that
// grants the scopes to a known user and nothing to an anonymous one.
type tokenIssuer struct {
	key   *ecdsa.PrivateKey
	cert  []byte // DER
	users map[string]string
}

func newTokenIssuer(certPath string, users map[string]string) (*tokenIssuer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: tokenIssuerName},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return nil, err
	}
	return &tokenIssuer{key: key, cert: der, users: users}, nil
}

type accessEntry struct {
	Type    string   `json:"type"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

func (ti *tokenIssuer) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	user, pass, hasAuth := req.BasicAuth()
	if hasAuth {
		if want, ok := ti.users[user]; !ok || want != pass {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"errors":[{"code":"UNAUTHORIZED","message":"invalid user name or password"}]}`)
			return
		}
	}
	access := []accessEntry{}
	if hasAuth {
		for _, s := range req.URL.Query()["scope"] {
			parts := strings.Split(s, ":")
			if len(parts) < 3 {
				continue
			}
			actions := strings.Split(parts[len(parts)-1], ",")
			access = append(access, accessEntry{Type: parts[0], Name: strings.Join(parts[1:len(parts)-1], ":"), Actions: actions})
		}
	}
	token, err := ti.sign(user, req.URL.Query().Get("service"), access)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"token": token, "access_token": token, "expires_in": 300, "issued_at": time.Now().UTC().Format(time.RFC3339)})
}

func (ti *tokenIssuer) sign(subject, audience string, access []accessEntry) (string, error) {
	now := time.Now()
	jti := make([]byte, 8)
	rand.Read(jti)
	header, err := json.Marshal(map[string]any{"typ": "JWT", "alg": "ES256", "x5c": []string{base64.StdEncoding.EncodeToString(ti.cert)}})
	if err != nil {
		return "", err
	}
	claims, err := json.Marshal(map[string]any{
		"iss": tokenIssuerName, "sub": subject, "aud": audience,
		"exp": now.Add(5 * time.Minute).Unix(), "nbf": now.Add(-time.Minute).Unix(), "iat": now.Unix(),
		"jti": hex.EncodeToString(jti), "access": access,
	})
	if err != nil {
		return "", err
	}
	enc := base64.RawURLEncoding
	signing := enc.EncodeToString(header) + "." + enc.EncodeToString(claims)
	sum := sha256.Sum256([]byte(signing))
	rInt, sInt, err := ecdsa.Sign(rand.Reader, ti.key, sum[:])
	if err != nil {
		return "", err
	}
	sig := make([]byte, 64)
	rInt.FillBytes(sig[:32])
	sInt.FillBytes(sig[32:])
	return signing + "." + enc.EncodeToString(sig), nil
}
