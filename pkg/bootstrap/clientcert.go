package bootstrap

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	certutil "k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/certificate"
	"k8s.io/client-go/util/connrotation"
	"k8s.io/klog/v2"
)

// ClientConfigs are the API client configurations of a node.
type ClientConfigs struct {
	// Bootstrap authenticates with the bootstrap credentials, or is nil
	// when the node already has a valid client certificate.
	Bootstrap *rest.Config
	// Client authenticates with the node's client certificate, from the
	// files the certificate store keeps current.
	Client *rest.Config
	// CertFile and KeyFile are those files (one PEM holding both).
	CertFile, KeyFile string
}

// ErrBootstrapToken marks a bootstrap credential the API server refused.
var ErrBootstrapToken = errors.New("bootstrap credentials refused")

// clientCertPairName is the certificate store's file prefix, as the kubelet's.
const clientCertPairName = "kubelet-client"

// LoadClientConfig works out how the node authenticates, as the kubelet's
// bootstrap.LoadClientConfig does:
//
//   - with no bootstrap kubeconfig, kubeconfig is used as it is;
//   - when kubeconfig exists and its client certificate is still valid, it
//     is used and nothing is requested;
//   - otherwise the bootstrap kubeconfig is used to request a certificate,
//     and kubeconfig is (re)written to point at the file the certificate
//     store keeps in certDir.
func LoadClientConfig(ctx context.Context, kubeconfigPath, bootstrapPath, certDir string) (*ClientConfigs, error) {
	logger := klog.FromContext(ctx)
	if bootstrapPath == "" {
		cfg, err := loadRESTConfig(kubeconfigPath)
		if err != nil {
			return nil, fmt.Errorf("loading --kubeconfig (no --bootstrap-kubeconfig given): %w", err)
		}
		return &ClientConfigs{Client: cfg, CertFile: cfg.CertFile, KeyFile: cfg.KeyFile}, nil
	}
	pem := filepath.Join(certDir, clientCertPairName+"-current.pem")
	if ok, err := clientConfigStillValid(kubeconfigPath); err != nil {
		logger.Info("Existing kubeconfig cannot be used, bootstrapping", "kubeconfig", kubeconfigPath, "reason", err.Error())
	} else if ok {
		cfg, err := loadRESTConfig(kubeconfigPath)
		if err != nil {
			return nil, err
		}
		logger.Info("Using the existing client certificate", "kubeconfig", kubeconfigPath)
		return &ClientConfigs{Client: cfg, CertFile: cfg.CertFile, KeyFile: cfg.KeyFile}, nil
	}

	bootstrap, err := loadRESTConfig(bootstrapPath)
	if err != nil {
		return nil, fmt.Errorf("loading --bootstrap-kubeconfig: %w", err)
	}
	if err := os.MkdirAll(certDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating cert dir: %w", err)
	}
	// The kubeconfig names the store's file before it exists; the file
	// appears once the CSR is signed.
	bootstrapAPI, err := clientcmd.LoadFromFile(bootstrapPath)
	if err != nil {
		return nil, err
	}
	// Paths in it are relative to its own directory, not the kubeconfig's.
	if err := clientcmd.ResolveLocalPaths(bootstrapAPI); err != nil {
		return nil, err
	}
	if err := writeCertKubeconfig(kubeconfigPath, bootstrapAPI, pem); err != nil {
		return nil, err
	}
	client := rest.AnonymousClientConfig(bootstrap)
	client.CertFile, client.KeyFile = pem, pem
	return &ClientConfigs{Bootstrap: bootstrap, Client: client, CertFile: pem, KeyFile: pem}, nil
}

// CheckBootstrapCredentials asks the API server who the bootstrap
// credentials are, so that an expired or deleted token fails with a clear
// error (naming the token id) instead of CSR retries forever.
func CheckBootstrapCredentials(ctx context.Context, cfg *rest.Config) error {
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	who, hint := "the bootstrap credentials", "they have expired or are not valid for this cluster"
	if id, _, ok := strings.Cut(cfg.BearerToken, "."); ok {
		who = fmt.Sprintf("bootstrap token %q", id)
		hint = fmt.Sprintf(msgTokenInvalid, id)
	}
	var lastErr error
	err = wait.ExponentialBackoffWithContext(ctx, wait.Backoff{Duration: time.Second, Factor: 2, Steps: 8, Cap: 30 * time.Second}, func(ctx context.Context) (bool, error) {
		review, err := client.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
		switch {
		case err == nil:
			klog.FromContext(ctx).V(2).Info("Bootstrap credentials accepted", "user", review.Status.UserInfo.Username, "groups", review.Status.UserInfo.Groups)
			return true, nil
		case apierrors.IsUnauthorized(err):
			return false, &sentinelError{sentinel: ErrBootstrapToken, msg: fmt.Sprintf(
				"the API server refused %s (401 Unauthorized): %s", who, hint)}
		case apierrors.IsForbidden(err) || apierrors.IsNotFound(err):
			return true, nil // authenticated; the review API is just not open to it
		}
		lastErr = err
		klog.FromContext(ctx).Info("Waiting for the API server to check the bootstrap credentials", "err", err)
		return false, nil
	})
	if err != nil && !errors.Is(err, ErrBootstrapToken) {
		return fmt.Errorf("checking %s: %w (last error: %v)", who, err, lastErr)
	}
	return err
}

// NewClientCertificateManager returns a manager of the node's client
// certificate. It requests one with the bootstrap credentials while none
// exists and renews it with its own certificate before it expires.
func NewClientCertificateManager(ctx context.Context, cfgs *ClientConfigs, certDir, nodeName string) (certificate.Manager, error) {
	store, err := certificate.NewFileStoreWithLogger(klog.FromContext(ctx), clientCertPairName, certDir, certDir, "", "")
	if err != nil {
		return nil, fmt.Errorf("opening the client certificate store: %w", err)
	}
	return certificate.NewManager(&certificate.Config{
		Ctx:  &ctx,
		Name: "client",
		ClientsetFn: func(current *tls.Certificate) (kubernetes.Interface, error) {
			cfg := cfgs.Client
			if current == nil && cfgs.Bootstrap != nil {
				cfg = cfgs.Bootstrap
			}
			return kubernetes.NewForConfig(cfg)
		},
		SignerName: certificatesv1.KubeAPIServerClientKubeletSignerName,
		Template: &x509.CertificateRequest{
			Subject: pkix.Name{CommonName: "system:node:" + nodeName, Organization: []string{"system:nodes"}},
		},
		Usages:           []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth},
		CertificateStore: store,
	})
}

// WaitForCertificate blocks until m holds a certificate, logging once what
// it waits for.
func WaitForCertificate(ctx context.Context, m certificate.Manager, what string) error {
	if m.Current() != nil {
		return nil
	}
	klog.FromContext(ctx).Info("Waiting for the certificate signing request to be approved and signed", "certificate", what)
	return wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(context.Context) (bool, error) {
		return m.Current() != nil, nil
	})
}

// UpdateTransport makes cfg present m's current certificate on every new
// TLS handshake and closes open connections when the certificate changes,
// so that long-lived clients (watches) reconnect with it. It returns a
// function that closes every connection made through cfg.
//
// Ported from the kubelet's pkg/kubelet/certificate/transport.go.
func UpdateTransport(ctx context.Context, cfg *rest.Config, m certificate.Manager, period time.Duration) (func(), error) {
	if cfg.Transport != nil || cfg.Dial != nil {
		return nil, errors.New("there is already a transport or dialer configured")
	}
	dialer := connrotation.NewDialer((&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext)
	tlsConfig, err := rest.TLSConfigFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("building TLS config: %w", err)
	}
	if tlsConfig == nil {
		tlsConfig = &tls.Config{}
	}
	tlsConfig.Certificates = nil
	tlsConfig.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		if cert := m.Current(); cert != nil {
			return cert, nil
		}
		return &tls.Certificate{}, nil
	}
	last := m.Current()
	go wait.UntilWithContext(ctx, func(ctx context.Context) {
		cur := m.Current()
		if cur == nil || cur == last {
			return
		}
		last = cur
		klog.FromContext(ctx).Info("Client certificate rotated, closing connections so that new ones use it")
		dialer.CloseAll()
	}, period)

	cfg.Transport = utilnet.SetTransportDefaults(&http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		TLSHandshakeTimeout: 10 * time.Second,
		TLSClientConfig:     tlsConfig,
		MaxIdleConnsPerHost: 25,
		DialContext:         dialer.DialContext,
	})
	// The transport enforces TLS itself now.
	cfg.TLSClientConfig = rest.TLSClientConfig{}
	return dialer.CloseAll, nil
}

// clientConfigStillValid reports whether the kubeconfig at path exists and
// holds a client certificate that is valid now.
func clientConfigStillValid(path string) (bool, error) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	cfg, err := loadRESTConfig(path)
	if err != nil {
		return false, err
	}
	var certs []*x509.Certificate
	switch {
	case len(cfg.CertData) > 0:
		certs, err = certutil.ParseCertsPEM(cfg.CertData)
	case cfg.CertFile != "":
		certs, err = certutil.CertsFromFile(cfg.CertFile)
	default:
		return false, errors.New("it holds no client certificate")
	}
	if err != nil {
		return false, fmt.Errorf("its client certificate does not load: %w", err)
	}
	now := time.Now()
	for _, c := range certs {
		if now.After(c.NotAfter) {
			return false, fmt.Errorf("its client certificate expired at %s", c.NotAfter.Format(time.RFC3339))
		}
		if now.Before(c.NotBefore) {
			return false, fmt.Errorf("its client certificate is valid only from %s", c.NotBefore.Format(time.RFC3339))
		}
	}
	return true, nil
}

func loadRESTConfig(path string) (*rest.Config, error) {
	return clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
		&clientcmd.ClientConfigLoadingRules{ExplicitPath: path}, &clientcmd.ConfigOverrides{}).ClientConfig()
}

// writeCertKubeconfig writes a kubeconfig for the same cluster as the
// bootstrap kubeconfig that authenticates with the PEM file at pem.
func writeCertKubeconfig(path string, bootstrap *clientcmdapi.Config, pem string) error {
	ctx, ok := bootstrap.Contexts[bootstrap.CurrentContext]
	if !ok {
		return fmt.Errorf("the bootstrap kubeconfig has no current context %q", bootstrap.CurrentContext)
	}
	cluster, ok := bootstrap.Clusters[ctx.Cluster]
	if !ok {
		return fmt.Errorf("the bootstrap kubeconfig has no cluster %q", ctx.Cluster)
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["default-cluster"] = &clientcmdapi.Cluster{
		Server:                   cluster.Server,
		CertificateAuthority:     cluster.CertificateAuthority,
		CertificateAuthorityData: cluster.CertificateAuthorityData,
		TLSServerName:            cluster.TLSServerName,
	}
	cfg.AuthInfos["default-auth"] = &clientcmdapi.AuthInfo{ClientCertificate: pem, ClientKey: pem}
	cfg.Contexts["default-context"] = &clientcmdapi.Context{Cluster: "default-cluster", AuthInfo: "default-auth", Namespace: "default"}
	cfg.CurrentContext = "default-context"
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return os.Chmod(path, 0o600)
}
