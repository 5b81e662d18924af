package kubelet

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	certutil "k8s.io/client-go/util/cert"
	"k8s.io/klog/v2"

	"github.com/krustlet/krustlet-go/pkg/bootstrap"
	"github.com/krustlet/krustlet-go/pkg/config"
)

// servingCertificate returns how the node API gets its certificate, as the
// kubelet decides: --tls-cert-file/--tls-private-key-file when given; else
// a certificate from the cluster (signer kubernetes.io/kubelet-serving),
// rotated, with --rotate-server-certificates; else a self-signed one kept in
// the cert dir. The returned stop function ends the rotation.
func servingCertificate(ctx context.Context, cfg *config.Config, client kubernetes.Interface, ips []net.IP) (func(*tls.ClientHelloInfo) (*tls.Certificate, error), func(), error) {
	if cfg.TLSCertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCertFile, cfg.TLSPrivateKeyFile)
		if err != nil {
			return nil, nil, fmt.Errorf("loading --tls-cert-file and --tls-private-key-file: %w", err)
		}
		return func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &cert, nil }, func() {}, nil
	}
	if cfg.RotateServerCertificates {
		m, err := bootstrap.NewServingCertificateManager(ctx, client, cfg.CertDir, cfg.NodeName, cfg.Hostname, ips)
		if err != nil {
			return nil, nil, err
		}
		m.Start()
		go bootstrap.ReportPendingServingCSR(ctx, client, m, cfg.NodeName)
		return func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			if c := m.Current(); c != nil {
				return c, nil
			}
			return nil, errors.New("no serving certificate yet: the kubelet-serving CSR waits for approval")
		}, m.Stop, nil
	}
	certFile, keyFile := filepath.Join(cfg.CertDir, "kubelet.crt"), filepath.Join(cfg.CertDir, "kubelet.key")
	if ok, _ := certutil.CanReadCertAndKey(certFile, keyFile); !ok {
		certPEM, keyPEM, err := certutil.GenerateSelfSignedCertKey(cfg.Hostname, ips, nil)
		if err != nil {
			return nil, nil, fmt.Errorf("generating a self-signed serving certificate: %w", err)
		}
		if err := certutil.WriteCert(certFile, certPEM); err != nil {
			return nil, nil, err
		}
		if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
			return nil, nil, err
		}
		klog.FromContext(ctx).Info("Generated a self-signed serving certificate", "cert", certFile)
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, nil, err
	}
	return func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &cert, nil }, func() {}, nil
}

// clientCA is --client-ca-file, or else the CA the node trusts for the API
// server (the cluster CA).
func clientCA(cfg *config.Config, client *rest.Config) ([]byte, error) {
	switch {
	case cfg.ClientCAFile != "":
		data, err := os.ReadFile(cfg.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("reading --client-ca-file: %w", err)
		}
		return data, nil
	case len(client.CAData) > 0:
		return client.CAData, nil
	case client.CAFile != "":
		return os.ReadFile(client.CAFile)
	}
	return nil, nil
}
