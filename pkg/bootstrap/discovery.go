package bootstrap

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	certutil "k8s.io/client-go/util/cert"
	bootstrapapi "k8s.io/cluster-bootstrap/token/api"
	"k8s.io/cluster-bootstrap/token/jws"
	bootstraputil "k8s.io/cluster-bootstrap/token/util"
	"k8s.io/klog/v2"
)

// DiscoveryOptions are the inputs of kubeadm-style token discovery.
type DiscoveryOptions struct {
	// Server is the API server, https://HOST:PORT.
	Server string
	// Token is the bootstrap token, ID.SECRET, whose signature over
	// cluster-info is checked (kubeadm's --discovery-token).
	Token string
	// TLSBootstrapToken is the token the returned kubeconfig authenticates
	// with (kubeadm's --tls-bootstrap-token); Token when empty.
	TLSBootstrapToken string
	// CACertHashes pin the cluster CA: "sha256:" and the hex SHA-256 of
	// the CA certificate's SubjectPublicKeyInfo. One must match.
	CACertHashes []string
	// UnsafeSkipCAVerification trusts whatever CA cluster-info names, when
	// no hash is given. The token signature is still checked, but anyone
	// who can impersonate the API server can then impersonate the cluster.
	UnsafeSkipCAVerification bool
	// Timeout bounds discovery; default 5 minutes (kubeadm's default).
	Timeout time.Duration
}

// DefaultDiscoveryTimeout is how long discovery waits for the API server
// when no timeout is given, as kubeadm join does.
const DefaultDiscoveryTimeout = 5 * time.Minute

// ErrDiscovery marks a refusal to trust what discovery found (bad token,
// signature or CA); retrying does not help.
var ErrDiscovery = errors.New("token discovery refused")

// Messages of kubeadm join, word for word, so that what a user searches for
// after a failed `kubeadm join` also finds the failed `krustlet join`.
const (
	// cmd/kubeadm/app/discovery/discovery.go, For: the wrapper of every
	// discovery error.
	msgIdentity = "couldn't validate the identity of the API Server"
	// cmd/kubeadm/app/discovery/token/token.go, getClusterInfo.
	msgRequestClusterInfo = "failed to request the cluster-info ConfigMap"
	// token.go, validateClusterInfoToken (%q is the token id).
	msgTokenInvalid = `token id %q is invalid for this cluster or it has expired. Use "kubeadm token create" on the control-plane node to create a new valid token`
	// token.go, validateClusterInfoToken.
	msgBadSignature = "failed to verify JWS signature of received cluster info object, can't trust this API Server"
	// token.go, validateClusterInfoToken.
	msgNoKubeconfigKey = "there is no kubeconfig key in the cluster-info ConfigMap. This API Server isn't set up for token bootstrapping, can't connect"
	// token.go, retrieveValidatedConfigInfo.
	msgParseKubeconfig = "couldn't parse the kubeconfig file in the cluster-info ConfigMap"
	// token.go, retrieveValidatedConfigInfo.
	msgSecondReadDiffers = "the second kubeconfig from the cluster-info ConfigMap (using validated TLS) was different from the first"
	// token.go, validateClusterCA.
	msgParseCA = "failed to parse cluster CA from the cluster-info ConfigMap"
	// token.go, validateClusterCA, around pubkeypin.Set.CheckAny
	// (cmd/kubeadm/app/util/pubkeypin/pubkeypin.go), whose %q is the CA
	// hashes joined by ":".
	msgCANotPinned = `cluster CA found in cluster-info ConfigMap is invalid: none of the public keys %q are pinned`
	// token.go, retrieveValidatedConfigInfo, around pubkeypin.Set.Allow.
	msgInvalidHash = "invalid discovery token CA certificate hash"
)

// sentinelError is an error that matches a sentinel (errors.Is) without
// showing the sentinel's text.
type sentinelError struct {
	sentinel error
	msg      string
}

func (e *sentinelError) Error() string        { return e.msg }
func (e *sentinelError) Is(target error) bool { return target == e.sentinel }

// refuse returns an error that wraps ErrDiscovery.
func refuse(format string, args ...any) error {
	return &sentinelError{sentinel: ErrDiscovery, msg: fmt.Sprintf(format, args...)}
}

// identityError is kubeadm's wrapper of every discovery error.
type identityError struct{ err error }

func (e *identityError) Error() string { return msgIdentity + ": " + e.err.Error() }
func (e *identityError) Unwrap() error { return e.err }

// CAHash returns the public-key pin of a CA certificate in the form of
// --discovery-token-ca-cert-hash.
func CAHash(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// ParseCAHash checks a --discovery-token-ca-cert-hash and returns it in
// the form CAHash returns (lower case), with kubeadm's error messages
// (cmd/kubeadm/app/util/pubkeypin, Set.Allow).
func ParseCAHash(h string) (string, error) {
	format, value, ok := strings.Cut(h, ":")
	if !ok || strings.Contains(value, ":") {
		return "", errors.New(`invalid hash, expected "format:hex-value". Known format(s) are: sha256`)
	}
	if !strings.EqualFold(format, "sha256") {
		return "", fmt.Errorf("unknown hash format %q. Known format(s) are: sha256", format)
	}
	if n := hex.DecodedLen(len(value)); n != sha256.Size {
		return "", fmt.Errorf("invalid hash %q, expected a %d byte SHA-256 hash, found %d bytes", h, sha256.Size, n)
	}
	if _, err := hex.DecodeString(value); err != nil {
		return "", fmt.Errorf("invalid hash %q, could not decode SHA-256 from hex: %v", h, err)
	}
	return "sha256:" + strings.ToLower(value), nil
}

// Discover fetches and verifies cluster-info and returns a bootstrap
// kubeconfig that authenticates with the TLS bootstrap token. It retries
// transient failures (API server not reachable yet) until the timeout, and
// fails at once, wrapping ErrDiscovery, when verification fails. Every
// error reads as kubeadm join's do: "couldn't validate the identity of the
// API Server: ...".
func Discover(ctx context.Context, o DiscoveryOptions) (*clientcmdapi.Config, error) {
	cfg, err := discover(ctx, o)
	if err != nil {
		return nil, &identityError{err}
	}
	return cfg, nil
}

func discover(ctx context.Context, o DiscoveryOptions) (*clientcmdapi.Config, error) {
	if o.TLSBootstrapToken == "" {
		o.TLSBootstrapToken = o.Token
	}
	for _, t := range []string{o.Token, o.TLSBootstrapToken} {
		if !bootstraputil.IsValidBootstrapToken(t) {
			return nil, refuse("token %q is not of the form [a-z0-9]{6}.[a-z0-9]{16}", redact(t))
		}
	}
	if len(o.CACertHashes) == 0 && !o.UnsafeSkipCAVerification {
		return nil, refuse("no --discovery-token-ca-cert-hash given; pass the CA's hash (kubeadm prints it with the join command) or --discovery-token-unsafe-skip-ca-verification")
	}
	pins := make([]string, 0, len(o.CACertHashes))
	for _, h := range o.CACertHashes {
		pin, err := ParseCAHash(h)
		if err != nil {
			return nil, refuse("%s: %v", msgInvalidHash, err)
		}
		pins = append(pins, pin)
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultDiscoveryTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	logger := klog.FromContext(ctx)
	id, secret, _ := strings.Cut(o.Token, ".")

	// First read: no CA yet, so the server is not authenticated; the JWS
	// signature and the CA pin below are what make the answer trusted.
	insecure := &rest.Config{Host: o.Server, TLSClientConfig: rest.TLSClientConfig{Insecure: true}, Timeout: 10 * time.Second}
	data, sig, err := fetchClusterInfo(ctx, insecure, id, o.Timeout)
	if err != nil {
		return nil, err
	}
	if !jws.DetachedTokenIsValid(sig, data, id, secret) {
		return nil, refuse("%s (the cluster-info signature for token %q does not verify: the token secret is wrong, or someone else answered at %s)", msgBadSignature, id, o.Server)
	}
	info, err := clientcmd.Load([]byte(data))
	if err != nil {
		return nil, refuse("%s: %v", msgParseKubeconfig, err)
	}
	var cluster *clientcmdapi.Cluster
	for _, c := range info.Clusters {
		cluster = c
		break
	}
	if cluster == nil || len(cluster.CertificateAuthorityData) == 0 {
		return nil, refuse("cluster-info names no cluster CA")
	}
	cas, err := certutil.ParseCertsPEM(cluster.CertificateAuthorityData)
	if err != nil {
		return nil, refuse("%s: %v", msgParseCA, err)
	}
	if len(pins) > 0 {
		var found []string
		matched := false
		for _, ca := range cas {
			h := CAHash(ca)
			found = append(found, h)
			matched = matched || slices.Contains(pins, h)
		}
		if !matched {
			return nil, refuse(msgCANotPinned+" (the cluster CA does not match --discovery-token-ca-cert-hash: expected %s, found %s)",
				strings.Join(found, ":"), strings.Join(o.CACertHashes, " or "), strings.Join(found, ", "))
		}
	} else {
		logger.Info("WARNING: not verifying the cluster CA (--discovery-token-unsafe-skip-ca-verification): anyone who can answer at the server address can impersonate the cluster", "server", o.Server)
	}

	// Second read, now over TLS verified with the pinned CA: the same
	// content must come back (kubeadm does the same).
	pinned := &rest.Config{Host: o.Server, TLSClientConfig: rest.TLSClientConfig{CAData: cluster.CertificateAuthorityData}, Timeout: 10 * time.Second}
	data2, _, err := fetchClusterInfo(ctx, pinned, id, o.Timeout)
	if err != nil {
		return nil, err
	}
	if data2 != data {
		return nil, refuse("%s", msgSecondReadDiffers)
	}
	logger.Info("Cluster CA verified through token discovery", "server", o.Server, "tokenID", id)
	return tokenKubeconfig(o.Server, cluster.CertificateAuthorityData, o.TLSBootstrapToken), nil
}

// tokenKubeconfig is a bootstrap kubeconfig that authenticates with token,
// laid out as kubeadm's (user tls-bootstrap-token-user).
func tokenKubeconfig(server string, caData []byte, token string) *clientcmdapi.Config {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["kubernetes"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: caData}
	cfg.AuthInfos["tls-bootstrap-token-user"] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts["tls-bootstrap-token-user@kubernetes"] = &clientcmdapi.Context{Cluster: "kubernetes", AuthInfo: "tls-bootstrap-token-user"}
	cfg.CurrentContext = "tls-bootstrap-token-user@kubernetes"
	return cfg
}

// fetchClusterInfo returns the kubeconfig in cluster-info and its signature
// for token id, retrying until the API server answers.
func fetchClusterInfo(ctx context.Context, cfg *rest.Config, id string, timeout time.Duration) (data, sig string, err error) {
	cm, err := readClusterInfo(ctx, cfg, "token", timeout)
	switch {
	case err == nil:
	case apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err):
		return "", "", refuse("the API server refuses anonymous reads of %s/%s (%v): is anonymous auth on and the cluster-info RBAC in place?", metav1.NamespacePublic, bootstrapapi.ConfigMapClusterInfo, err)
	case apierrors.IsNotFound(err):
		return "", "", refuse("the cluster has no %s/%s ConfigMap: it was not set up for token joins", metav1.NamespacePublic, bootstrapapi.ConfigMapClusterInfo)
	default:
		return "", "", err
	}
	data = cm.Data[bootstrapapi.KubeConfigKey]
	sig = cm.Data[bootstrapapi.JWSSignatureKeyPrefix+id]
	if data == "" {
		return "", "", refuse("%s (%s/%s has no %q key)", msgNoKubeconfigKey, metav1.NamespacePublic, bootstrapapi.ConfigMapClusterInfo, bootstrapapi.KubeConfigKey)
	}
	if sig == "" {
		return "", "", refuse(msgTokenInvalid+" (cluster-info carries no signature for token %q: the token does not exist in this cluster, has expired, or is not marked for signing)", id, id)
	}
	return data, sig, nil
}

// readClusterInfo reads kube-public/cluster-info with cfg for the discovery
// named kind ("token" or "file"). It retries
// until ctx ends, except when the API server refuses (403, 401) or has no
// such ConfigMap (404): those errors come back as they are. When ctx ends
// it returns kubeadm's "failed to request the cluster-info ConfigMap" with
// the last error, wrapping ctx's error; timeout is for the message.
func readClusterInfo(ctx context.Context, cfg *rest.Config, kind string, timeout time.Duration) (*v1.ConfigMap, error) {
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	logger := klog.FromContext(ctx)
	delay := 500 * time.Millisecond
	var lastErr error
	for {
		cm, err := client.CoreV1().ConfigMaps(metav1.NamespacePublic).Get(ctx, bootstrapapi.ConfigMapClusterInfo, metav1.GetOptions{})
		switch {
		case err == nil:
			return cm, nil
		case apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err) || apierrors.IsNotFound(err):
			return nil, err
		}
		// A request cut short by the end of ctx says less than the one
		// before it (connection refused, a certificate error...).
		if lastErr == nil || ctx.Err() == nil {
			lastErr = err
		}
		logger.Info("Waiting for the API server to answer "+kind+" discovery", "server", cfg.Host, "err", err)
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return nil, fmt.Errorf("%s: %w (gave up after the discovery timeout of %v: %w)", msgRequestClusterInfo, lastErr, timeout, ctx.Err())
			}
			return nil, fmt.Errorf("%s: %w (%w)", msgRequestClusterInfo, lastErr, ctx.Err())
		case <-time.After(delay):
		}
		delay = min(2*delay, 10*time.Second)
	}
}

// redact hides a token's secret.
func redact(token string) string {
	id, _, ok := strings.Cut(token, ".")
	if !ok {
		return "<invalid>"
	}
	return id + ".<secret>"
}
