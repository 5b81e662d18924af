package provider

import (
	"context"

	v1 "k8s.io/api/core/v1"
)

// ImagePuller makes images available to a provider's containers. It must be
// safe for concurrent use.
type ImagePuller interface {
	// PullImage makes image available locally, honouring the pull policy,
	// and returns what was pulled. It blocks until the image is usable or
	// ctx ends. Errors wrap ErrImageNeverPull, ErrImagePull or
	// ErrImageInspect so the core can report the kubelet's reasons; the
	// message should say what the registry answered.
	PullImage(ctx context.Context, req PullRequest) (Image, error)
}

// ImageLister is implemented by providers that keep images on the node. The
// core reports them in the Node's status.images. It must be safe for
// concurrent use.
type ImageLister interface {
	// ListImages lists the images kept, largest first.
	ListImages(ctx context.Context) ([]v1.ContainerImage, error)
}

// ImageGarbageCollector is implemented by providers that keep images on
// disk: it removes unused ones, least recently used first, while the disk
// they are on is above the --image-gc-high-threshold, down to the low one.
type ImageGarbageCollector interface {
	// RunImageGC collects until ctx ends. inUse lists the images (by
	// reference and by image ID) of every pod the node holds; they are never
	// removed. It is safe for concurrent use.
	RunImageGC(ctx context.Context, inUse func() []string) error
}

// CredentialSource resolves the registry credentials of a pod's images: its
// image pull secrets, its service account's and the node's configuration
// (pkg/credentials). The core passes them in PullRequest.Credentials to
// whichever provider runs the pod. It must be safe for concurrent use.
type CredentialSource interface {
	Credentials(ctx context.Context, pod *v1.Pod) ([]Credential, error)
}

// PullRequest asks for one image.
type PullRequest struct {
	// Image is the container's image reference as written in the pod.
	Image string
	// Policy is the container's effective pull policy (never empty).
	Policy v1.PullPolicy
	// Credentials are tried in order for the image's registry; see
	// pkg/credentials, which resolves them from the pod's pull secrets,
	// its service account and the node's configuration.
	Credentials []Credential
}

// Credential is one set of registry credentials from a pull secret or the
// node's configuration.
type Credential struct {
	// Registry is the host (and optional path prefix) the credential is for,
	// as written in the docker config it came from.
	Registry string
	Username string
	Password string
	// IdentityToken / RegistryToken are OAuth2 refresh and access tokens.
	IdentityToken string
	RegistryToken string
}

// Image is a pulled image.
type Image struct {
	// Ref is the reference as requested, normalised.
	Ref string
	// ID is the immutable identity of what runs, repo@sha256:… for a
	// registry image; it becomes the container status' imageID.
	ID string
	// Size in bytes of what was stored.
	Size int64
	// AlreadyPresent is true when nothing had to be downloaded (the core
	// reports "already present on machine" instead of "Pulled").
	AlreadyPresent bool
}
