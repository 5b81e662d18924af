package controlplane

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	certutil "k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/keyutil"
)

// certValidity is how long the certificates of the local control plane last.
const certValidity = 365 * 24 * time.Hour

// PKI holds the paths of the files the control plane's TLS needs.
type PKI struct {
	Dir string

	CACert, CAKey                               string
	APIServerCert, APIServerKey                 string
	KubeletClientCert, KubeletClientKey         string
	AdminCert, AdminKey                         string
	ControllerManagerCert, ControllerManagerKey string
	SchedulerCert, SchedulerKey                 string
	ServiceAccountKey, ServiceAccountPub        string

	ca    *x509.Certificate
	caKey crypto.Signer
}

// CAHash returns the CA's public key pin in the form kubeadm's
// --discovery-token-ca-cert-hash takes: "sha256:" and the hex SHA-256 of the
// certificate's DER-encoded SubjectPublicKeyInfo.
func (p *PKI) CAHash() string {
	sum := sha256.Sum256(p.ca.RawSubjectPublicKeyInfo)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// CACertPEM returns the PEM encoding of the cluster CA certificate.
func (p *PKI) CACertPEM() []byte {
	return encodeCertPEM(p.ca)
}

// newPKI creates a cluster CA and the certificates of the control plane's
// components under dir. serviceIP is the first address of the service range
// (the in-cluster address of the API server).
func newPKI(dir string, serviceIP net.IP) (*PKI, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating pki dir: %w", err)
	}
	p := &PKI{Dir: dir}
	caKey, err := newKey()
	if err != nil {
		return nil, err
	}
	ca, err := certutil.NewSelfSignedCACert(certutil.Config{CommonName: "krustlet-dev-ca"}, caKey)
	if err != nil {
		return nil, fmt.Errorf("creating cluster CA: %w", err)
	}
	p.ca, p.caKey = ca, caKey
	p.CACert, p.CAKey, err = writePair(dir, "ca", ca, caKey)
	if err != nil {
		return nil, err
	}

	leaves := []struct {
		name string
		tmpl x509.Certificate
		cert *string
		key  *string
	}{
		{"apiserver", x509.Certificate{
			Subject:     pkix.Name{CommonName: "kube-apiserver"},
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			DNSNames:    []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
			IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback, serviceIP},
		}, &p.APIServerCert, &p.APIServerKey},
		{"apiserver-kubelet-client", x509.Certificate{
			Subject:     pkix.Name{CommonName: "kube-apiserver-kubelet-client", Organization: []string{"system:masters"}},
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}, &p.KubeletClientCert, &p.KubeletClientKey},
		{"admin", x509.Certificate{
			Subject:     pkix.Name{CommonName: "kubernetes-admin", Organization: []string{"system:masters"}},
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}, &p.AdminCert, &p.AdminKey},
		{"controller-manager", x509.Certificate{
			Subject:     pkix.Name{CommonName: "system:kube-controller-manager"},
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}, &p.ControllerManagerCert, &p.ControllerManagerKey},
		{"scheduler", x509.Certificate{
			Subject:     pkix.Name{CommonName: "system:kube-scheduler"},
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}, &p.SchedulerCert, &p.SchedulerKey},
	}
	for _, l := range leaves {
		key, err := newKey()
		if err != nil {
			return nil, err
		}
		cert, err := p.sign(l.tmpl, key.Public())
		if err != nil {
			return nil, fmt.Errorf("signing %s certificate: %w", l.name, err)
		}
		if *l.cert, *l.key, err = writePair(dir, l.name, cert, key); err != nil {
			return nil, err
		}
	}

	saKey, err := newKey()
	if err != nil {
		return nil, err
	}
	p.ServiceAccountKey = filepath.Join(dir, "sa.key")
	p.ServiceAccountPub = filepath.Join(dir, "sa.pub")
	keyPEM, err := keyutil.MarshalPrivateKeyToPEM(saKey)
	if err != nil {
		return nil, fmt.Errorf("encoding service account key: %w", err)
	}
	pubPEM, err := encodePublicKeyPEM(saKey.Public())
	if err != nil {
		return nil, err
	}
	if err := keyutil.WriteKey(p.ServiceAccountKey, keyPEM); err != nil {
		return nil, fmt.Errorf("writing service account key: %w", err)
	}
	if err := os.WriteFile(p.ServiceAccountPub, pubPEM, 0o644); err != nil {
		return nil, fmt.Errorf("writing service account public key: %w", err)
	}
	return p, nil
}

// NewTestCA returns a PKI with only a CA of its own, in memory, for tests
// that need certificates the cluster does not trust.
func NewTestCA() (*PKI, error) {
	key, err := newKey()
	if err != nil {
		return nil, err
	}
	ca, err := certutil.NewSelfSignedCACert(certutil.Config{CommonName: "untrusted-test-ca"}, key)
	if err != nil {
		return nil, err
	}
	return &PKI{ca: ca, caKey: key}, nil
}

// SignClientCert issues a client certificate from the cluster CA, for tests
// that need an identity of their own. It returns PEM-encoded cert and key.
func (p *PKI) SignClientCert(commonName string, groups ...string) (certPEM, keyPEM []byte, err error) {
	key, err := newKey()
	if err != nil {
		return nil, nil, err
	}
	cert, err := p.sign(x509.Certificate{
		Subject:     pkix.Name{CommonName: commonName, Organization: groups},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, key.Public())
	if err != nil {
		return nil, nil, err
	}
	keyPEM, err = keyutil.MarshalPrivateKeyToPEM(key)
	if err != nil {
		return nil, nil, err
	}
	return encodeCertPEM(cert), keyPEM, nil
}

func (p *PKI) sign(tmpl x509.Certificate, pub crypto.PublicKey) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl.SerialNumber = serial
	tmpl.NotBefore = now.Add(-time.Minute)
	tmpl.NotAfter = now.Add(certValidity)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
	der, err := x509.CreateCertificate(rand.Reader, &tmpl, p.ca, pub, p.caKey)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

func newKey() (*ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating key: %w", err)
	}
	return key, nil
}

func writePair(dir, name string, cert *x509.Certificate, key crypto.Signer) (certPath, keyPath string, err error) {
	certPath = filepath.Join(dir, name+".crt")
	keyPath = filepath.Join(dir, name+".key")
	keyPEM, err := keyutil.MarshalPrivateKeyToPEM(key)
	if err != nil {
		return "", "", fmt.Errorf("encoding %s key: %w", name, err)
	}
	if err := certutil.WriteCert(certPath, encodeCertPEM(cert)); err != nil {
		return "", "", fmt.Errorf("writing %s certificate: %w", name, err)
	}
	if err := keyutil.WriteKey(keyPath, keyPEM); err != nil {
		return "", "", fmt.Errorf("writing %s key: %w", name, err)
	}
	return certPath, keyPath, nil
}

func encodePublicKeyPEM(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("encoding public key: %w", err)
	}
	return pemEncode("PUBLIC KEY", der), nil
}

func encodeCertPEM(cert *x509.Certificate) []byte {
	return pemEncode("CERTIFICATE", cert.Raw)
}

func pemEncode(kind string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der})
}
