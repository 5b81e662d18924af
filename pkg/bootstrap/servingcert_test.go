package bootstrap

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"net"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	certificatesv1 "k8s.io/api/certificates/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/ktesting"
)

func TestNewServingCertificateManager(t *testing.T) {
	t.Parallel()
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	client := fake.NewClientset()
	created := make(chan *certificatesv1.CertificateSigningRequest, 1)
	client.PrependReactor("create", "certificatesigningrequests", func(a k8stesting.Action) (bool, runtime.Object, error) {
		csr := a.(k8stesting.CreateAction).GetObject().(*certificatesv1.CertificateSigningRequest)
		select {
		case created <- csr.DeepCopy():
		default:
		}
		return false, nil, nil
	})
	ips := []net.IP{net.ParseIP("10.0.0.7").To4(), net.ParseIP("fd00::7")}
	m, err := NewServingCertificateManager(ctx, client, t.TempDir(), "edge-1", "edge-1.example.com", ips)
	if err != nil {
		t.Fatal(err)
	}
	if m.Current() != nil {
		t.Fatal("a certificate before any was requested")
	}
	m.Start()
	defer m.Stop()

	var csr *certificatesv1.CertificateSigningRequest
	select {
	case csr = <-created:
	case <-time.After(10 * time.Second):
		t.Fatal("no CertificateSigningRequest created")
	}
	if csr.Spec.SignerName != certificatesv1.KubeletServingSignerName {
		t.Errorf("signer %q, want %q", csr.Spec.SignerName, certificatesv1.KubeletServingSignerName)
	}
	wantUsages := []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageServerAuth}
	if !reflect.DeepEqual(csr.Spec.Usages, wantUsages) {
		t.Errorf("usages %v, want %v", csr.Spec.Usages, wantUsages)
	}
	block, _ := pem.Decode(csr.Spec.Request)
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		t.Fatalf("request is not a PEM certificate request: %q", csr.Spec.Request)
	}
	req, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if err := req.CheckSignature(); err != nil {
		t.Errorf("request signature: %v", err)
	}
	if req.Subject.CommonName != "system:node:edge-1" || !reflect.DeepEqual(req.Subject.Organization, []string{"system:nodes"}) {
		t.Errorf("subject %v, want CN system:node:edge-1, O system:nodes", req.Subject)
	}
	if !reflect.DeepEqual(req.DNSNames, []string{"edge-1.example.com"}) {
		t.Errorf("DNS names %v, want [edge-1.example.com]", req.DNSNames)
	}
	if len(req.IPAddresses) != len(ips) {
		t.Errorf("IP addresses %v, want %v", req.IPAddresses, ips)
	}
	for i := range min(len(ips), len(req.IPAddresses)) {
		if !req.IPAddresses[i].Equal(ips[i]) {
			t.Errorf("IP address %d is %v, want %v", i, req.IPAddresses[i], ips[i])
		}
	}
	if pub, ok := req.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		t.Errorf("public key %T, want ECDSA P-256", req.PublicKey)
	}
}

// pendingCSR is a CertificateSigningRequest of a kubelet-serving
// certificate; approved adds the Approved condition.
func pendingCSR(name, user string, approved bool) *certificatesv1.CertificateSigningRequest {
	csr := &certificatesv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       certificatesv1.CertificateSigningRequestSpec{SignerName: certificatesv1.KubeletServingSignerName, Username: user},
	}
	if approved {
		csr.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{{Type: certificatesv1.CertificateApproved, Status: v1.ConditionTrue}}
	}
	return csr
}

func TestReportPendingServingCSR(t *testing.T) {
	t.Parallel()
	const message = "The serving certificate of this node waits for approval"
	tests := []struct {
		name string
		// withCert: the manager already holds a certificate.
		withCert bool
		// cancelled: the context ends before the first look.
		cancelled bool
		wantLogs  int
		wantNames []string
		wantLists int
	}{
		{name: "pending CSRs are named once", wantLogs: 1, wantNames: []string{"csr-mine-1", "csr-mine-2"}, wantLists: 1},
		{name: "certificate present: nothing to report", withCert: true},
		{name: "context ended: nothing to report", cancelled: true},
	}
	// ReportPendingServingCSR first waits 5 s: the cases run at once, not
	// one after the other (t.Parallel would be held to -parallel, the
	// number of CPUs).
	type run struct {
		logger  logr.Logger
		client  *fake.Clientset
		elapsed time.Duration
		done    chan struct{}
	}
	runs := make([]*run, len(tests))
	for i, tc := range tests {
		r := &run{
			logger: ktesting.NewLogger(t, ktesting.NewConfig(ktesting.BufferLogs(true))),
			client: fake.NewClientset(
				pendingCSR("csr-mine-1", "system:node:edge-1", false),
				pendingCSR("csr-mine-2", "system:node:edge-1", false),
				pendingCSR("csr-approved", "system:node:edge-1", true),
				pendingCSR("csr-other-node", "system:node:edge-2", false),
			),
			done: make(chan struct{}),
		}
		runs[i] = r
		m := &fakeManager{}
		if tc.withCert {
			cert := newTestCA(t).issue(t, leafOptions{cn: "system:node:edge-1", server: true}).tls
			m.cert.Store(&cert)
		}
		ctx, cancel := context.WithCancel(klog.NewContext(t.Context(), r.logger))
		if tc.cancelled {
			cancel()
		}
		go func() {
			defer close(r.done)
			defer cancel()
			start := time.Now()
			ReportPendingServingCSR(ctx, r.client, m, "edge-1")
			r.elapsed = time.Since(start)
		}()
	}
	for i, tc := range tests {
		r := runs[i]
		t.Run(tc.name, func(t *testing.T) {
			select {
			case <-r.done:
			case <-time.After(30 * time.Second):
				t.Fatal("ReportPendingServingCSR did not return")
			}
			logger, client := r.logger, r.client
			if tc.cancelled && r.elapsed > 2*time.Second {
				t.Errorf("returned after %v, want at once when the context ended", r.elapsed)
			}

			var logs []ktesting.LogEntry
			for _, e := range logger.GetSink().(ktesting.Underlier).GetBuffer().Data() {
				if strings.Contains(e.Message, message) {
					logs = append(logs, e)
				}
			}
			if len(logs) != tc.wantLogs {
				t.Fatalf("%d reports, want %d", len(logs), tc.wantLogs)
			}
			if tc.wantLogs > 0 {
				msg := logs[0].Message
				for _, name := range tc.wantNames {
					if !strings.Contains(msg, name) {
						t.Errorf("report %q does not name %s", msg, name)
					}
				}
				if !strings.Contains(msg, "kubectl certificate approve csr-mine-") {
					t.Errorf("report %q does not say how to approve", msg)
				}
				for _, other := range []string{"csr-approved", "csr-other-node"} {
					if strings.Contains(msg, other) {
						t.Errorf("report %q names %s", msg, other)
					}
				}
				if csrs := kvValue(logs[0].ParameterKVList, "csrs"); !reflect.DeepEqual(sorted(csrs), tc.wantNames) {
					t.Errorf("csrs %v, want %v", csrs, tc.wantNames)
				}
			}
			lists := 0
			for _, a := range client.Actions() {
				if a.GetVerb() == "list" {
					lists++
					fs := a.(k8stesting.ListAction).GetListRestrictions().Fields.String()
					if fs != "spec.signerName="+certificatesv1.KubeletServingSignerName {
						t.Errorf("listed with field selector %q, want the kubelet-serving signer", fs)
					}
				}
			}
			if lists != tc.wantLists {
				t.Errorf("%d lists, want %d", lists, tc.wantLists)
			}
		})
	}
}

// kvValue returns the value of key in a logr key/value list.
func kvValue(kv []any, key string) any {
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i] == key {
			return kv[i+1]
		}
	}
	return nil
}

func sorted(v any) []string {
	s, _ := v.([]string)
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
