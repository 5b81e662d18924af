package volume

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	authenticationv1 "k8s.io/api/authentication/v1"
	v1 "k8s.io/api/core/v1"
)

// projectedPayload is the kubelet's projected collectData: the files of
// every source in one volume. A missing optional ConfigMap or Secret adds
// nothing (its listed items are skipped); a missing required one fails the
// whole volume. podCertificate sources are not supported.
func (m *Manager) projectedPayload(ctx context.Context, pod *v1.Pod, src *v1.ProjectedVolumeSource, fresh bool) (map[string]fileProjection, error) {
	defaultMode := modeOrDefault(src.DefaultMode)
	payload := map[string]fileProjection{}
	var errs []error
	add := func(p map[string]fileProjection, err error) {
		if err != nil {
			errs = append(errs, err)
			return
		}
		for k, v := range p {
			payload[k] = v
		}
	}
	for _, s := range src.Sources {
		switch {
		case s.Secret != nil:
			add(m.secretVolume(ctx, pod, &v1.SecretVolumeSource{
				SecretName: s.Secret.Name, Items: s.Secret.Items, DefaultMode: &defaultMode, Optional: s.Secret.Optional,
			}, fresh))
		case s.ConfigMap != nil:
			add(m.configMapVolume(ctx, pod, &v1.ConfigMapVolumeSource{
				LocalObjectReference: s.ConfigMap.LocalObjectReference, Items: s.ConfigMap.Items, DefaultMode: &defaultMode, Optional: s.ConfigMap.Optional,
			}, fresh))
		case s.DownwardAPI != nil:
			add(downwardAPIPayload(s.DownwardAPI.Items, pod, defaultMode, m.nodeAllocatable()))
		case s.ServiceAccountToken != nil:
			add(m.tokenPayload(ctx, pod, s.ServiceAccountToken, defaultMode))
		case s.ClusterTrustBundle != nil:
			add(m.trustBundlePayload(ctx, s.ClusterTrustBundle, defaultMode, fresh))
		case s.PodCertificate != nil:
			errs = append(errs, fmt.Errorf("%w: projected podCertificate", ErrUnsupported))
		}
	}
	return payload, errors.Join(errs...)
}

// tokenPayload requests (or reuses) a token of the pod's service account
// bound to the pod, with the projection's audience and expirationSeconds.
func (m *Manager) tokenPayload(ctx context.Context, pod *v1.Pod, tp *v1.ServiceAccountTokenProjection, mode int32) (map[string]fileProjection, error) {
	if err := validatePath(tp.Path); err != nil {
		return nil, fmt.Errorf("serviceAccountToken path %q: %w", tp.Path, err)
	}
	var audiences []string
	if tp.Audience != "" {
		audiences = []string{tp.Audience}
	}
	exp := tp.ExpirationSeconds
	if exp == nil {
		d := int64(defaultTokenExpirationSeconds)
		exp = &d
	}
	sa := pod.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	tr, err := m.tokens.token(ctx, pod.Namespace, sa, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{
			Audiences:         audiences,
			ExpirationSeconds: exp,
			BoundObjectRef: &authenticationv1.BoundObjectReference{
				APIVersion: "v1",
				Kind:       "Pod",
				Name:       pod.Name,
				UID:        pod.UID,
			},
		},
	})
	if err != nil {
		return nil, err
	}
	return map[string]fileProjection{filepath.Clean(tp.Path): {Data: []byte(tr.Status.Token), Mode: mode}}, nil
}

func (m *Manager) trustBundlePayload(ctx context.Context, p *v1.ClusterTrustBundleProjection, mode int32, fresh bool) (map[string]fileProjection, error) {
	if err := validatePath(p.Path); err != nil {
		return nil, fmt.Errorf("clusterTrustBundle path %q: %w", p.Path, err)
	}
	ref := &clusterTrustBundleRef{selector: p.LabelSelector, optional: p.Optional != nil && *p.Optional}
	if p.Name != nil {
		ref.name = *p.Name
	}
	if p.SignerName != nil {
		ref.signerName = *p.SignerName
	}
	data, err := m.objects.trustAnchors(ctx, ref, fresh)
	if err != nil {
		return nil, err
	}
	return map[string]fileProjection{filepath.Clean(p.Path): {Data: data, Mode: mode}}, nil
}
