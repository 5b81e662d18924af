package volume

import (
	"bytes"
	"context"
	"encoding/pem"
	"fmt"
	"slices"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	certificatesv1beta1 "k8s.io/api/certificates/v1beta1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
)

// This file serves clusterTrustBundle projections, as the kubelet's
// pkg/kubelet/clustertrustbundle does, but with GET and LIST through the
// ObjectCache instead of an informer. The API version (certificates.k8s.io
// v1, else v1beta1) is found through discovery; when neither is served the
// projection fails with a clear error, asked again every few minutes.
// Trust anchors are deduplicated and sorted (the kubelet shuffles them
// once per restart): a stable order means no rewrite on every sync.

const ctbRecheck = 5 * time.Minute

// ctbVersion returns the served version of ClusterTrustBundles, "" if none.
func (c *ObjectCache) ctbVersion(ctx context.Context) (string, error) {
	c.mu.Lock()
	if c.ctbChecked && (c.ctbServed != "" || c.clock.Now().Before(c.ctbNextCheck)) {
		v := c.ctbServed
		c.mu.Unlock()
		return v, nil
	}
	c.mu.Unlock()

	served := ""
	for _, gv := range []string{certificatesv1.SchemeGroupVersion.String(), certificatesv1beta1.SchemeGroupVersion.String()} {
		list, err := c.client.Discovery().ServerResourcesForGroupVersion(gv)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil && list == nil {
			return "", fmt.Errorf("discovering %s: %w", gv, err)
		}
		if list != nil && slices.ContainsFunc(list.APIResources, func(r metav1.APIResource) bool { return r.Name == "clustertrustbundles" }) {
			served = gv
			break
		}
	}
	c.mu.Lock()
	c.ctbChecked, c.ctbServed, c.ctbNextCheck = true, served, c.clock.Now().Add(ctbRecheck)
	c.mu.Unlock()
	return served, nil
}

// trustAnchors returns the PEM trust anchors of a clusterTrustBundle
// projection: of the bundle named name, or of every bundle of signerName
// whose labels match selector (nil matches nothing, empty everything).
// optional allows a missing bundle or no match (empty content).
func (c *ObjectCache) trustAnchors(ctx context.Context, src *clusterTrustBundleRef, fresh bool) ([]byte, error) {
	version, err := c.ctbVersion(ctx)
	if err != nil {
		return nil, err
	}
	if version == "" {
		return nil, fmt.Errorf("clusterTrustBundle projection: the API server serves no ClusterTrustBundles (certificates.k8s.io/v1 or v1beta1); enable the ClusterTrustBundle feature and API")
	}
	if src.name != "" {
		obj, err := c.get(ctx, objectKey{"clustertrustbundle", "", src.name}, fresh, func() (any, error) {
			if version == certificatesv1.SchemeGroupVersion.String() {
				b, err := c.client.CertificatesV1().ClusterTrustBundles().Get(ctx, src.name, metav1.GetOptions{})
				if err != nil {
					return nil, err
				}
				return []string{b.Spec.TrustBundle}, nil
			}
			b, err := c.client.CertificatesV1beta1().ClusterTrustBundles().Get(ctx, src.name, metav1.GetOptions{})
			if err != nil {
				return nil, err
			}
			return []string{b.Spec.TrustBundle}, nil
		})
		if err != nil {
			if src.optional && isMissing(err) {
				return []byte{}, nil
			}
			return nil, err
		}
		return normalizeTrustAnchors(obj.([]string))
	}
	if src.signerName == "" {
		return nil, fmt.Errorf("clusterTrustBundle projection requires either name or signerName to be set")
	}
	var selector labels.Selector = labels.Nothing()
	if src.selector != nil {
		if selector, err = metav1.LabelSelectorAsSelector(src.selector); err != nil {
			return nil, fmt.Errorf("clusterTrustBundle label selector: %w", err)
		}
	}
	var bundles []string
	if src.selector != nil {
		key := objectKey{"clustertrustbundles", src.signerName, selector.String()}
		obj, err := c.get(ctx, key, fresh, func() (any, error) {
			return c.listTrustBundles(ctx, version, src.signerName, selector)
		})
		if err != nil {
			return nil, err
		}
		bundles = obj.([]string)
	}
	if len(bundles) == 0 {
		if src.optional {
			return []byte{}, nil
		}
		return nil, fmt.Errorf("clusterTrustBundle: signerName %q and the label selector matched zero ClusterTrustBundles: %w", src.signerName, ErrSourceMissing)
	}
	return normalizeTrustAnchors(bundles)
}

func (c *ObjectCache) listTrustBundles(ctx context.Context, version, signer string, selector labels.Selector) ([]string, error) {
	opts := metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("spec.signerName", signer).String(),
		LabelSelector: selector.String(),
	}
	var out []string
	if version == certificatesv1.SchemeGroupVersion.String() {
		list, err := c.client.CertificatesV1().ClusterTrustBundles().List(ctx, opts)
		if err != nil {
			return nil, err
		}
		for _, b := range list.Items {
			if b.Spec.SignerName == signer && selector.Matches(labels.Set(b.Labels)) {
				out = append(out, b.Spec.TrustBundle)
			}
		}
		return out, nil
	}
	list, err := c.client.CertificatesV1beta1().ClusterTrustBundles().List(ctx, opts)
	if err != nil {
		return nil, err
	}
	for _, b := range list.Items {
		if b.Spec.SignerName == signer && selector.Matches(labels.Set(b.Labels)) {
			out = append(out, b.Spec.TrustBundle)
		}
	}
	return out, nil
}

// normalizeTrustAnchors deduplicates the certificates of bundles and
// writes them sorted as PEM.
func normalizeTrustAnchors(bundles []string) ([]byte, error) {
	var ders [][]byte
	for _, bundle := range bundles {
		rest := []byte(bundle)
		for {
			var b *pem.Block
			b, rest = pem.Decode(rest)
			if b == nil {
				break
			}
			ders = append(ders, b.Bytes)
		}
	}
	slices.SortFunc(ders, bytes.Compare)
	ders = slices.CompactFunc(ders, bytes.Equal)
	var out []byte
	for _, der := range ders {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	if out == nil {
		out = []byte{}
	}
	return out, nil
}

// clusterTrustBundleRef is the part of a ClusterTrustBundleProjection used
// to read it.
type clusterTrustBundleRef struct {
	name, signerName string
	selector         *metav1.LabelSelector
	optional         bool
}
