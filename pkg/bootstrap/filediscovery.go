package bootstrap

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	bootstrapapi "k8s.io/cluster-bootstrap/token/api"
	bootstraputil "k8s.io/cluster-bootstrap/token/util"
	"k8s.io/klog/v2"
)

// FileDiscoveryOptions are the inputs of kubeadm's file discovery
// (kubeadm join --discovery-file).
type FileDiscoveryOptions struct {
	// File is the path of a kubeconfig file, or an https:// URL that
	// serves one. Its cluster (that of the current context, or its only
	// one) names the API server and, usually, the cluster CA, as the
	// kubeconfig in cluster-info does.
	File string
	// TLSBootstrapToken, ID.SECRET, is what the returned kubeconfig
	// authenticates with. When empty, the file's own credentials are used,
	// and the file must carry some.
	TLSBootstrapToken string
	// Timeout bounds discovery; default DefaultDiscoveryTimeout.
	Timeout time.Duration
	// RootCAs verify the server of an https:// File; the system's roots
	// when nil.
	RootCAs *x509.CertPool
}

// ErrNoCredentials marks a discovery file without credentials when no TLS
// bootstrap token was given either.
var ErrNoCredentials = errors.New("the discovery file carries no credentials")

// maxDiscoveryFile bounds a discovery file fetched from a URL.
const maxDiscoveryFile = 1 << 20

// DiscoverFromFile is kubeadm's file discovery: it loads the kubeconfig of
// o.File, checks that the API server it names answers over TLS verified
// with the CA it names (any answer of the API server will do, as for
// kubeadm: a refusal of the anonymous read still proves the server's
// identity), and returns a bootstrap kubeconfig with that server and CA and
// either o.TLSBootstrapToken or the file's own credentials, every file it
// refers to embedded.
//
// The file is trusted as it is: no token signature is checked. Errors read
// as kubeadm join's, "couldn't validate the identity of the API Server:
// ...", except ErrNoCredentials, which says which flag is missing.
func DiscoverFromFile(ctx context.Context, o FileDiscoveryOptions) (*clientcmdapi.Config, error) {
	cfg, err := discoverFromFile(ctx, o)
	if err != nil {
		if errors.Is(err, ErrNoCredentials) {
			return nil, err
		}
		return nil, &identityError{err}
	}
	return cfg, nil
}

func discoverFromFile(ctx context.Context, o FileDiscoveryOptions) (*clientcmdapi.Config, error) {
	if o.TLSBootstrapToken != "" && !bootstraputil.IsValidBootstrapToken(o.TLSBootstrapToken) {
		return nil, refuse("token %q is not of the form [a-z0-9]{6}.[a-z0-9]{16}", redact(o.TLSBootstrapToken))
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultDiscoveryTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	logger := klog.FromContext(ctx)

	file, where, err := loadDiscoveryFile(ctx, o)
	if err != nil {
		return nil, err
	}
	cluster, auth, err := discoveryFileParts(file)
	if err != nil {
		return nil, fmt.Errorf("discovery file %s: %w", where, err)
	}
	out := clientcmdapi.NewConfig()
	out.Clusters["kubernetes"] = cluster
	user := "tls-bootstrap-token-user"
	if o.TLSBootstrapToken != "" {
		auth = &clientcmdapi.AuthInfo{Token: o.TLSBootstrapToken}
	} else {
		if !hasCredentials(auth) {
			return nil, &sentinelError{sentinel: ErrNoCredentials, msg: fmt.Sprintf(
				"--tls-bootstrap-token (or --token) is required: the discovery file %s carries no credentials", where)}
		}
		user = "discovery-file-user"
	}
	out.AuthInfos[user] = auth
	out.Contexts[user+"@kubernetes"] = &clientcmdapi.Context{Cluster: "kubernetes", AuthInfo: user}
	out.CurrentContext = user + "@kubernetes"
	// Relative paths are relative to the file; then every referenced file
	// is embedded, so that the bootstrap kubeconfig stands alone.
	if err := clientcmd.ResolveLocalPaths(out); err != nil {
		return nil, fmt.Errorf("discovery file %s: %w", where, err)
	}
	if err := clientcmdapi.FlattenConfig(out); err != nil {
		return nil, fmt.Errorf("discovery file %s: %w", where, err)
	}
	if auth.TokenFile != "" {
		token, err := os.ReadFile(auth.TokenFile)
		if err != nil {
			return nil, fmt.Errorf("discovery file %s: %w", where, err)
		}
		auth.Token, auth.TokenFile = strings.TrimSpace(string(token)), ""
	}
	if !strings.HasPrefix(cluster.Server, "https://") {
		return nil, refuse("discovery file %s: the cluster's server %q is not an https:// URL", where, cluster.Server)
	}

	// The TLS check: read cluster-info anonymously, trusting only the CA
	// of the file (the system's roots if it names none).
	anonymous := &rest.Config{Host: cluster.Server, TLSClientConfig: rest.TLSClientConfig{CAData: cluster.CertificateAuthorityData}, Timeout: 10 * time.Second}
	logger.Info("Checking the API server named by the discovery file", "server", cluster.Server, "file", where)
	cm, err := readClusterInfo(ctx, anonymous, "file", o.Timeout)
	switch {
	case err == nil:
		syncFromClusterInfo(logger, cluster, cm.Data[bootstrapapi.KubeConfigKey])
	case apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err) || apierrors.IsNotFound(err):
		// kubeadm: "Could not access the cluster-info ConfigMap for
		// refreshing the cluster-info information, but the TLS cert is
		// valid so proceeding...".
		logger.Info("The API server answered over verified TLS but does not serve cluster-info to anonymous readers; proceeding", "server", cluster.Server, "answer", err.Error())
	default:
		return nil, err
	}
	logger.Info("API server verified through file discovery", "server", cluster.Server)
	return out, nil
}

// loadDiscoveryFile reads the kubeconfig of o.File from disk or from an
// https:// URL, and returns it with how to name it in messages.
func loadDiscoveryFile(ctx context.Context, o FileDiscoveryOptions) (*clientcmdapi.Config, string, error) {
	u, err := url.Parse(o.File)
	if err == nil && u.Scheme != "" {
		where := u.Redacted()
		// Wording of kubeadm's ValidateDiscoveryKubeConfigPath
		// (cmd/kubeadm/app/apis/kubeadm/validation).
		if u.Scheme != "https" {
			return nil, where, refuse("invalid --discovery-file %q: if a URL is used, the scheme must be https", where)
		}
		data, err := fetchDiscoveryFile(ctx, u.String(), o.RootCAs)
		if err != nil {
			return nil, where, err
		}
		cfg, err := clientcmd.Load(data)
		if err != nil {
			return nil, where, refuse("discovery file %s holds no valid kubeconfig: %v", where, err)
		}
		return cfg, where, nil
	}
	cfg, err := clientcmd.LoadFromFile(o.File)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, o.File, refuse("invalid --discovery-file %q: not a valid HTTPS URL or a file on disk", o.File)
	case err != nil:
		return nil, o.File, refuse("discovery file %s holds no valid kubeconfig: %v", o.File, err)
	}
	return cfg, o.File, nil
}

// fetchDiscoveryFile GETs a discovery file over verified TLS.
func fetchDiscoveryFile(ctx context.Context, u string, roots *x509.CertPool) ([]byte, error) {
	client := &http.Client{Transport: &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		TLSClientConfig:     &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout: 10 * time.Second,
	}}
	defer client.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching the discovery file: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetching the discovery file %s: %s", req.URL.Redacted(), resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxDiscoveryFile+1))
	if err != nil {
		return nil, fmt.Errorf("fetching the discovery file %s: %w", req.URL.Redacted(), err)
	}
	if len(data) > maxDiscoveryFile {
		return nil, refuse("the discovery file at %s is larger than %d bytes", req.URL.Redacted(), maxDiscoveryFile)
	}
	return data, nil
}

// discoveryFileParts returns the cluster and the user of a discovery file:
// those of its current context, or its only cluster (cluster-info's has one,
// unnamed, and no context). The messages are kubeadm's (file.go,
// ValidateConfigInfo).
func discoveryFileParts(cfg *clientcmdapi.Config) (*clientcmdapi.Cluster, *clientcmdapi.AuthInfo, error) {
	if len(cfg.Clusters) == 0 {
		return nil, nil, refuse("the provided kubeconfig file must have at least one Cluster defined")
	}
	var cluster *clientcmdapi.Cluster
	var auth *clientcmdapi.AuthInfo
	if ctx := cfg.Contexts[cfg.CurrentContext]; ctx != nil {
		cluster, auth = cfg.Clusters[ctx.Cluster], cfg.AuthInfos[ctx.AuthInfo]
	} else if len(cfg.Clusters) == 1 {
		for _, c := range cfg.Clusters {
			cluster = c
		}
	}
	if cluster == nil {
		return nil, nil, refuse("the provided kubeconfig file must have a unnamed Cluster or a CurrentContext that specifies a non-nil Cluster")
	}
	if auth == nil {
		auth = &clientcmdapi.AuthInfo{}
	}
	// Copies: the file's other settings (proxy, extensions...) are left
	// behind, as kubeadm does.
	c := &clientcmdapi.Cluster{
		LocationOfOrigin:         cluster.LocationOfOrigin,
		Server:                   cluster.Server,
		TLSServerName:            cluster.TLSServerName,
		CertificateAuthority:     cluster.CertificateAuthority,
		CertificateAuthorityData: cluster.CertificateAuthorityData,
	}
	a := auth.DeepCopy()
	a.Extensions = nil
	return c, a, nil
}

// hasCredentials says whether a kubeconfig user authenticates somehow.
func hasCredentials(a *clientcmdapi.AuthInfo) bool {
	if a == nil {
		return false
	}
	cert := len(a.ClientCertificateData) > 0 || a.ClientCertificate != ""
	key := len(a.ClientKeyData) > 0 || a.ClientKey != ""
	return a.Token != "" || a.TokenFile != "" || (cert && key) || a.Exec != nil || a.AuthProvider != nil || a.Username != ""
}

// syncFromClusterInfo completes the discovery file's cluster from the
// cluster-info the API server serves, as kubeadm does: the CA when the file
// names none (TLS was then verified with the system's roots), and a warning
// when the two name different servers.
func syncFromClusterInfo(logger klog.Logger, cluster *clientcmdapi.Cluster, kubeconfig string) {
	if kubeconfig == "" {
		return
	}
	info, err := clientcmd.Load([]byte(kubeconfig))
	if err != nil {
		logger.Info("The cluster-info ConfigMap holds no valid kubeconfig, but the TLS certificate is valid; proceeding", "err", err)
		return
	}
	for _, c := range info.Clusters {
		if c.Server != cluster.Server {
			logger.Info("WARNING: the API server endpoint in use is not the one cluster-info names", "inUse", cluster.Server, "clusterInfo", c.Server)
		}
		if len(cluster.CertificateAuthorityData) == 0 && len(c.CertificateAuthorityData) > 0 {
			cluster.CertificateAuthorityData = bytes.Clone(c.CertificateAuthorityData)
			logger.Info("Took the cluster CA from cluster-info")
		}
		return
	}
}
