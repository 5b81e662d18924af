package controlplane

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"slices"
	"strings"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
)

// RunServingApprover approves kubernetes.io/kubelet-serving CSRs whose
// requester is the node the CSR names, and denies none: a CSR that does not
// qualify stays Pending for a human. It blocks until ctx ends.
//
// The checks are those of the usual community approvers: the requester is
// system:node:NAME in group system:nodes, the subject is CN=system:node:NAME,
// O=system:nodes, the SANs are DNS names or IP addresses only, and the usages
// are those of a serving certificate.
func RunServingApprover(ctx context.Context, client kubernetes.Interface) error {
	logger := klog.FromContext(ctx).WithName("serving-approver")
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.FieldSelector = "spec.signerName=" + certificatesv1.KubeletServingSignerName
	}))
	informer := factory.Certificates().V1().CertificateSigningRequests().Informer()
	queue := make(chan string, 128)
	handler := func(obj any) {
		if csr, ok := obj.(*certificatesv1.CertificateSigningRequest); ok && !decided(csr) {
			select {
			case queue <- csr.Name:
			case <-ctx.Done():
			}
		}
	}
	if _, err := informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    handler,
		UpdateFunc: func(_, obj any) { handler(obj) },
	}); err != nil {
		return err
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	for {
		select {
		case <-ctx.Done():
			return nil
		case name := <-queue:
			err := wait.ExponentialBackoffWithContext(ctx, wait.Backoff{Duration: 100 * time.Millisecond, Factor: 2, Steps: 6}, func(ctx context.Context) (bool, error) {
				csr, err := client.CertificatesV1().CertificateSigningRequests().Get(ctx, name, metav1.GetOptions{})
				if err != nil || decided(csr) {
					return err == nil, nil
				}
				if reason := servingCSRProblem(csr); reason != "" {
					logger.Info("Leaving kubelet-serving CSR pending", "csr", name, "reason", reason)
					return true, nil
				}
				csr.Status.Conditions = append(csr.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{
					Type:    certificatesv1.CertificateApproved,
					Status:  corev1.ConditionTrue,
					Reason:  "AutoApproved",
					Message: "approved by the krustlet-dev serving approver: requester is the node named in the request",
				})
				_, err = client.CertificatesV1().CertificateSigningRequests().UpdateApproval(ctx, name, csr, metav1.UpdateOptions{})
				if err != nil {
					return false, nil
				}
				logger.Info("Approved kubelet-serving CSR", "csr", name, "node", csr.Spec.Username)
				return true, nil
			})
			if err != nil && ctx.Err() == nil {
				logger.Error(err, "Approving kubelet-serving CSR", "csr", name)
			}
		}
	}
}

func decided(csr *certificatesv1.CertificateSigningRequest) bool {
	for _, c := range csr.Status.Conditions {
		if c.Type == certificatesv1.CertificateApproved || c.Type == certificatesv1.CertificateDenied || c.Type == certificatesv1.CertificateFailed {
			return true
		}
	}
	return false
}

// servingCSRProblem says why csr is not a serving CSR of the node that sent
// it, or "" when it is.
func servingCSRProblem(csr *certificatesv1.CertificateSigningRequest) string {
	node, ok := strings.CutPrefix(csr.Spec.Username, "system:node:")
	if !ok || node == "" || !slices.Contains(csr.Spec.Groups, "system:nodes") {
		return fmt.Sprintf("requester %q is not a node", csr.Spec.Username)
	}
	block, _ := pem.Decode(csr.Spec.Request)
	if block == nil {
		return "request is not PEM"
	}
	req, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return "request does not parse: " + err.Error()
	}
	if req.Subject.CommonName != csr.Spec.Username {
		return fmt.Sprintf("subject %q is not the requester %q", req.Subject.CommonName, csr.Spec.Username)
	}
	if !slices.Equal(req.Subject.Organization, []string{"system:nodes"}) {
		return fmt.Sprintf("organization %v is not [system:nodes]", req.Subject.Organization)
	}
	if len(req.EmailAddresses) > 0 || len(req.URIs) > 0 {
		return "request has e-mail or URI SANs"
	}
	if len(req.DNSNames)+len(req.IPAddresses) == 0 {
		return "request has no DNS or IP SAN"
	}
	for _, u := range csr.Spec.Usages {
		switch u {
		case certificatesv1.UsageDigitalSignature, certificatesv1.UsageKeyEncipherment, certificatesv1.UsageServerAuth:
		default:
			return fmt.Sprintf("usage %q is not for serving", u)
		}
	}
	if !slices.Contains(csr.Spec.Usages, certificatesv1.UsageServerAuth) {
		return "usages lack server auth"
	}
	return ""
}
