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
	// Token is the bootstrap token, ID.SECRET.
	Token string
	// CACertHashes pin the cluster CA: "sha256:" and the hex SHA-256 of
	// the CA certificate's SubjectPublicKeyInfo. One must match.
	CACertHashes []string
	// UnsafeSkipCAVerification trusts whatever CA cluster-info names, when
	// no hash is given. The token signature is still checked, but anyone
	// who can impersonate the API server can then impersonate the cluster.
	UnsafeSkipCAVerification bool
	// Timeout bounds discovery; default 5 minutes.
	Timeout time.Duration
}

// ErrDiscovery marks a refusal to trust what discovery found (bad token,
// signature or CA); retrying does not help.
var ErrDiscovery = errors.New("token discovery refused")

// CAHash returns the public-key pin of a CA certificate in the form of
// --discovery-token-ca-cert-hash.
func CAHash(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Discover fetches and verifies cluster-info and returns a bootstrap
// kubeconfig that authenticates with the token. It retries transient
// failures (API server not reachable yet) until the timeout, and fails at
// once, wrapping ErrDiscovery, when verification fails.
func Discover(ctx context.Context, o DiscoveryOptions) (*clientcmdapi.Config, error) {
	if !bootstraputil.IsValidBootstrapToken(o.Token) {
		return nil, fmt.Errorf("%w: token %q is not of the form [a-z0-9]{6}.[a-z0-9]{16}", ErrDiscovery, redact(o.Token))
	}
	if len(o.CACertHashes) == 0 && !o.UnsafeSkipCAVerification {
		return nil, fmt.Errorf("%w: no --discovery-token-ca-cert-hash given; pass the CA's hash (kubeadm prints it with the join command) or --discovery-token-unsafe-skip-ca-verification", ErrDiscovery)
	}
	for _, h := range o.CACertHashes {
		if !strings.HasPrefix(h, "sha256:") || len(h) != len("sha256:")+64 {
			return nil, fmt.Errorf("%w: invalid --discovery-token-ca-cert-hash %q: want sha256: followed by 64 hex digits", ErrDiscovery, h)
		}
	}
	if o.Timeout == 0 {
		o.Timeout = 5 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	logger := klog.FromContext(ctx)
	id, secret, _ := strings.Cut(o.Token, ".")

	// First read: no CA yet, so the server is not authenticated; the JWS
	// signature and the CA pin below are what make the answer trusted.
	insecure := &rest.Config{Host: o.Server, TLSClientConfig: rest.TLSClientConfig{Insecure: true}, Timeout: 10 * time.Second}
	data, sig, err := fetchClusterInfo(ctx, insecure, id)
	if err != nil {
		return nil, err
	}
	if !jws.DetachedTokenIsValid(sig, data, id, secret) {
		return nil, fmt.Errorf("%w: the cluster-info signature for token %q does not verify: the token secret is wrong, or someone else answered at %s", ErrDiscovery, id, o.Server)
	}
	info, err := clientcmd.Load([]byte(data))
	if err != nil {
		return nil, fmt.Errorf("%w: cluster-info holds no valid kubeconfig: %v", ErrDiscovery, err)
	}
	var cluster *clientcmdapi.Cluster
	for _, c := range info.Clusters {
		cluster = c
		break
	}
	if cluster == nil || len(cluster.CertificateAuthorityData) == 0 {
		return nil, fmt.Errorf("%w: cluster-info names no cluster CA", ErrDiscovery)
	}
	cas, err := certutil.ParseCertsPEM(cluster.CertificateAuthorityData)
	if err != nil {
		return nil, fmt.Errorf("%w: cluster-info CA does not parse: %v", ErrDiscovery, err)
	}
	if len(o.CACertHashes) > 0 {
		var found []string
		matched := false
		for _, ca := range cas {
			h := CAHash(ca)
			found = append(found, h)
			matched = matched || slices.Contains(o.CACertHashes, h)
		}
		if !matched {
			return nil, fmt.Errorf("%w: the cluster CA does not match --discovery-token-ca-cert-hash: expected %s, found %s", ErrDiscovery,
				strings.Join(o.CACertHashes, " or "), strings.Join(found, ", "))
		}
	} else {
		logger.Info("WARNING: not verifying the cluster CA (--discovery-token-unsafe-skip-ca-verification): anyone who can answer at the server address can impersonate the cluster", "server", o.Server)
	}

	// Second read, now over TLS verified with the pinned CA: the same
	// content must come back (kubeadm does the same).
	pinned := &rest.Config{Host: o.Server, TLSClientConfig: rest.TLSClientConfig{CAData: cluster.CertificateAuthorityData}, Timeout: 10 * time.Second}
	data2, _, err := fetchClusterInfo(ctx, pinned, id)
	if err != nil {
		return nil, err
	}
	if data2 != data {
		return nil, fmt.Errorf("%w: cluster-info changed between the unverified and the CA-verified read", ErrDiscovery)
	}
	logger.Info("Cluster CA verified through token discovery", "server", o.Server, "tokenID", id)

	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["kubernetes"] = &clientcmdapi.Cluster{Server: o.Server, CertificateAuthorityData: cluster.CertificateAuthorityData}
	cfg.AuthInfos["tls-bootstrap-token-user"] = &clientcmdapi.AuthInfo{Token: o.Token}
	cfg.Contexts["tls-bootstrap-token-user@kubernetes"] = &clientcmdapi.Context{Cluster: "kubernetes", AuthInfo: "tls-bootstrap-token-user"}
	cfg.CurrentContext = "tls-bootstrap-token-user@kubernetes"
	return cfg, nil
}

// fetchClusterInfo returns the kubeconfig in cluster-info and its signature
// for token id, retrying until the API server answers.
func fetchClusterInfo(ctx context.Context, cfg *rest.Config, id string) (data, sig string, err error) {
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return "", "", err
	}
	logger := klog.FromContext(ctx)
	delay := 500 * time.Millisecond
	for {
		cm, err := client.CoreV1().ConfigMaps(metav1.NamespacePublic).Get(ctx, bootstrapapi.ConfigMapClusterInfo, metav1.GetOptions{})
		switch {
		case err == nil:
			data = cm.Data[bootstrapapi.KubeConfigKey]
			sig = cm.Data[bootstrapapi.JWSSignatureKeyPrefix+id]
			if data == "" {
				return "", "", fmt.Errorf("%w: %s/%s has no %q key", ErrDiscovery, metav1.NamespacePublic, bootstrapapi.ConfigMapClusterInfo, bootstrapapi.KubeConfigKey)
			}
			if sig == "" {
				return "", "", fmt.Errorf("%w: cluster-info carries no signature for token %q: the token does not exist in this cluster, has expired, or is not marked for signing", ErrDiscovery, id)
			}
			return data, sig, nil
		case apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err):
			return "", "", fmt.Errorf("%w: the API server refuses anonymous reads of %s/%s (%v): is anonymous auth on and the cluster-info RBAC in place?", ErrDiscovery, metav1.NamespacePublic, bootstrapapi.ConfigMapClusterInfo, err)
		case apierrors.IsNotFound(err):
			return "", "", fmt.Errorf("%w: the cluster has no %s/%s ConfigMap: it was not set up for token joins", ErrDiscovery, metav1.NamespacePublic, bootstrapapi.ConfigMapClusterInfo)
		}
		logger.Info("Waiting for the API server to answer token discovery", "server", cfg.Host, "err", err)
		select {
		case <-ctx.Done():
			return "", "", fmt.Errorf("reading cluster-info from %s: %w (last error: %v)", cfg.Host, ctx.Err(), err)
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
