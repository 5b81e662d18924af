package cri

import (
	"context"
	"errors"
	"fmt"
	"strings"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/krustlet/krustlet-go/pkg/credentials"
	"github.com/krustlet/krustlet-go/pkg/provider"
)

// PullImage makes the image available in the runtime, honouring the pull
// policy, with the first of the pod's matching credentials that works.
func (p *Provider) PullImage(ctx context.Context, req provider.PullRequest) (provider.Image, error) {
	spec := &runtimeapi.ImageSpec{Image: req.Image, UserSpecifiedImage: req.Image}
	if req.Policy != v1.PullAlways {
		st, err := p.images.ImageStatus(ctx, spec, false)
		if err != nil {
			return provider.Image{}, fmt.Errorf("%w: %v", provider.ErrImageInspect, err)
		}
		if img := st.GetImage(); img != nil {
			return imageOf(req.Image, img, true), nil
		}
		if req.Policy == v1.PullNever {
			return provider.Image{}, fmt.Errorf("%w: %s", provider.ErrImageNeverPull, req.Image)
		}
	}
	auths := []*runtimeapi.AuthConfig{nil}
	if matched := credentials.Match(req.Credentials, req.Image); len(matched) > 0 {
		auths = auths[:0]
		for _, c := range matched {
			auths = append(auths, &runtimeapi.AuthConfig{Username: c.Username, Password: c.Password,
				IdentityToken: c.IdentityToken, RegistryToken: c.RegistryToken, ServerAddress: c.Registry})
		}
	}
	var errs []error
	for _, auth := range auths {
		ref, err := p.images.PullImage(ctx, spec, auth, nil)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		st, err := p.images.ImageStatus(ctx, &runtimeapi.ImageSpec{Image: ref}, false)
		if err != nil || st.GetImage() == nil {
			return provider.Image{}, fmt.Errorf("%w: pulled %s but the runtime does not show it: %v", provider.ErrImagePull, req.Image, err)
		}
		return imageOf(req.Image, st.GetImage(), false), nil
	}
	return provider.Image{}, fmt.Errorf("%w: %w", provider.ErrImagePull, errors.Join(errs...))
}

// imageOf describes a runtime image: its ID is the digest-pinned reference
// when the runtime knows one (what the kubelet reports as imageID).
func imageOf(ref string, img *runtimeapi.Image, present bool) provider.Image {
	id := img.Id
	if len(img.RepoDigests) > 0 {
		id = img.RepoDigests[0]
	}
	return provider.Image{Ref: ref, ID: id, Size: int64(img.Size), AlreadyPresent: present}
}

// imageRef is what a container is created from: the digest-pinned name
// when there is one, so that a moved tag cannot change what runs.
func imageRef(img provider.Image) string {
	if strings.Contains(img.ID, "@sha256:") || strings.HasPrefix(img.ID, "sha256:") {
		return img.ID
	}
	return img.Ref
}

// ListImages lists the runtime's images, for the Node's status.images.
func (p *Provider) ListImages(ctx context.Context) ([]v1.ContainerImage, error) {
	imgs, err := p.images.ListImages(ctx, nil)
	if err != nil {
		return nil, err
	}
	out := make([]v1.ContainerImage, 0, len(imgs))
	for _, img := range imgs {
		names := append(append([]string{}, img.RepoTags...), img.RepoDigests...)
		if len(names) == 0 {
			names = []string{img.Id}
		}
		out = append(out, v1.ContainerImage{Names: names, SizeBytes: int64(img.Size)})
	}
	return out, nil
}
