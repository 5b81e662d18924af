package bootstrap

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"net"
	"strings"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/certificate"
	"k8s.io/klog/v2"
)

// servingCertPairName is the serving certificate store's file prefix, as the
// kubelet's.
const servingCertPairName = "kubelet-server"

// NewServingCertificateManager returns a manager of the node's serving
// certificate: CN system:node:NAME, O system:nodes, the host name and the
// node's addresses as SANs, signer kubernetes.io/kubelet-serving. client
// must authenticate as the node.
func NewServingCertificateManager(ctx context.Context, client kubernetes.Interface, certDir, nodeName, hostname string, ips []net.IP) (certificate.Manager, error) {
	store, err := certificate.NewFileStoreWithLogger(klog.FromContext(ctx), servingCertPairName, certDir, certDir, "", "")
	if err != nil {
		return nil, fmt.Errorf("opening the serving certificate store: %w", err)
	}
	return certificate.NewManager(&certificate.Config{
		Ctx:  &ctx,
		Name: "server",
		ClientsetFn: func(*tls.Certificate) (kubernetes.Interface, error) {
			return client, nil
		},
		SignerName: certificatesv1.KubeletServingSignerName,
		Template: &x509.CertificateRequest{
			Subject:     pkix.Name{CommonName: "system:node:" + nodeName, Organization: []string{"system:nodes"}},
			DNSNames:    []string{hostname},
			IPAddresses: ips,
		},
		Usages:           []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageServerAuth},
		CertificateStore: store,
	})
}

// ReportPendingServingCSR logs once, when the serving certificate is still
// missing after a short while, which CSR an administrator must approve and
// how: kubelet-serving CSRs are never approved by the controller-manager.
// It returns when the certificate arrives, the message was logged, or ctx
// ends.
func ReportPendingServingCSR(ctx context.Context, client kubernetes.Interface, m certificate.Manager, nodeName string) {
	logger := klog.FromContext(ctx)
	select {
	case <-ctx.Done():
		return
	case <-time.After(5 * time.Second):
	}
	_ = wait.PollUntilContextCancel(ctx, 5*time.Second, true, func(ctx context.Context) (bool, error) {
		if m.Current() != nil {
			return true, nil
		}
		csrs, err := client.CertificatesV1().CertificateSigningRequests().List(ctx, metav1.ListOptions{
			FieldSelector: "spec.signerName=" + certificatesv1.KubeletServingSignerName,
		})
		if err != nil {
			return false, nil
		}
		var pending []string
		for _, c := range csrs.Items {
			if c.Spec.Username == "system:node:"+nodeName && len(c.Status.Conditions) == 0 {
				pending = append(pending, c.Name)
			}
		}
		if len(pending) == 0 {
			return false, nil
		}
		logger.Info("The serving certificate of this node waits for approval: kubelet-serving certificate signing requests are never approved automatically. "+
			"Until one is approved, the API server cannot reach this node for logs and metrics. An administrator approves it with: kubectl certificate approve "+strings.Join(pending, " "),
			"csrs", pending, "node", nodeName)
		return true, nil
	})
}
