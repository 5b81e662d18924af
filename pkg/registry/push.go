package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	orasregistry "oras.land/oras-go/v2/registry"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/retry"

	"github.com/krustlet/krustlet-go/pkg/credentials"
	"github.com/krustlet/krustlet-go/pkg/provider"
)

// Layout is a Wasm artifact layout that Push writes.
type Layout string

// The layouts Push writes; Pull reads both.
const (
	// LayoutCNCF is the CNCF TAG Runtime's Wasm OCI artifact: config
	// MediaTypeWasmConfigV0 with architecture wasm and os wasip1, and the
	// module as one MediaTypeWasmLayer layer.
	LayoutCNCF Layout = "cncf"
	// LayoutWasmToOCI is wasm-to-oci's (and krustlet's): config
	// MediaTypeWasmConfigV1, the module as one MediaTypeWasmContentLayer
	// layer.
	LayoutWasmToOCI Layout = "wasm-to-oci"
)

// PushOptions configure Push.
type PushOptions struct {
	// Layout of the artifact. Default: LayoutCNCF.
	Layout Layout
	// PlainHTTP talks to the registry over HTTP.
	PlainHTTP bool
	// Credentials are matched against the repository (credentials.Match);
	// the first that matches is used. None: anonymous.
	Credentials []provider.Credential
	// Transport carries the requests. Default: NewTransport("").
	Transport http.RoundTripper
	// Title, if set, is the layer's org.opencontainers.image.title
	// annotation (the file name, as oras and wasm-to-oci write it).
	Title string
}

// Push uploads a WASI preview 1 core module to the registry as ref
// (repository:tag) in the chosen layout, and returns the manifest's
// descriptor and the normalised reference. Pushing the same module with
// the same options twice gives the same manifest digest.
func Push(ctx context.Context, module []byte, ref string, opts PushOptions) (ocispec.Descriptor, Reference, error) {
	r, err := ParseReference(ref)
	if err != nil {
		return ocispec.Descriptor{}, Reference{}, err
	}
	if r.Digest != "" {
		return ocispec.Descriptor{}, r, fmt.Errorf("push to a tag, not to a digest: %s", ref)
	}
	if err := checkCoreModule(module); err != nil {
		return ocispec.Descriptor{}, r, err
	}
	manifest, blobs, err := packModule(module, opts.Layout, opts.Title)
	if err != nil {
		return ocispec.Descriptor{}, r, err
	}
	transport := opts.Transport
	if transport == nil {
		t, err := NewTransport("")
		if err != nil {
			return ocispec.Descriptor{}, r, err
		}
		transport = t
	}
	oref := orasregistry.Reference{Registry: r.Domain, Repository: r.Path}
	host := oref.Host()
	var cred auth.Credential
	if m := credentials.Match(opts.Credentials, r.Repository()); len(m) > 0 {
		cred = auth.Credential{Username: m[0].Username, Password: m[0].Password, RefreshToken: m[0].IdentityToken, AccessToken: m[0].RegistryToken}
	}
	header := http.Header{}
	header.Set("User-Agent", "krustlet")
	repo := &remote.Repository{
		Reference: oref,
		PlainHTTP: opts.PlainHTTP,
		Client: &auth.Client{
			Client: &http.Client{Transport: retry.NewTransport(transport)},
			Header: header,
			Cache:  auth.NewCache(),
			Credential: func(_ context.Context, hostport string) (auth.Credential, error) {
				if hostport == host {
					return cred, nil
				}
				return auth.EmptyCredential, nil
			},
		},
	}
	for _, b := range blobs {
		exists, err := repo.Exists(ctx, b.desc)
		if err != nil {
			return ocispec.Descriptor{}, r, pushError(r, err)
		}
		if exists {
			continue
		}
		if err := repo.Push(ctx, b.desc, bytes.NewReader(b.body)); err != nil {
			return ocispec.Descriptor{}, r, pushError(r, err)
		}
	}
	if err := repo.PushReference(ctx, manifest.desc, bytes.NewReader(manifest.body), r.Tag); err != nil {
		return ocispec.Descriptor{}, r, pushError(r, err)
	}
	return manifest.desc, r, nil
}

func pushError(r Reference, err error) error {
	if errors.Is(err, auth.ErrBasicCredentialNotFound) {
		return fmt.Errorf("pushing %s: the registry asks for a user name and password (--username and --password, or --registry-config): %w", r, err)
	}
	return fmt.Errorf("pushing %s: %w", r, err)
}

// checkCoreModule refuses what is not a core WebAssembly module.
func checkCoreModule(b []byte) error {
	switch {
	case len(b) < 8 || !bytes.Equal(b[:4], []byte("\x00asm")):
		return errors.New("not a WebAssembly binary (bad magic number)")
	case !bytes.Equal(b[4:8], []byte{1, 0, 0, 0}):
		return errors.New("a WebAssembly component or future format, not a WASI preview 1 core module")
	}
	return nil
}

// packModule builds the manifest and blobs of a module in layout.
func packModule(module []byte, layout Layout, title string) (manifest smallBlob, blobs []smallBlob, err error) {
	var (
		configType, layerType string
		config                []byte
	)
	layerAnnotations := map[string]string(nil)
	if title != "" {
		layerAnnotations = map[string]string{ocispec.AnnotationTitle: title}
	}
	switch layout {
	case LayoutCNCF, "":
		layerType, configType = MediaTypeWasmLayer, MediaTypeWasmConfigV0
		if config, err = json.Marshal(WasmConfig{
			Architecture: WasmArchitecture,
			OS:           WasmOSPreview1,
			LayerDigests: []string{digestOf(module)},
		}); err != nil {
			return smallBlob{}, nil, err
		}
	case LayoutWasmToOCI:
		layerType, configType, config = MediaTypeWasmContentLayer, MediaTypeWasmConfigV1, []byte("{}")
	default:
		return smallBlob{}, nil, fmt.Errorf("unknown layout %q (want %s or %s)", layout, LayoutCNCF, LayoutWasmToOCI)
	}
	layer := blobDescriptor(layerType, module)
	layer.Annotations = layerAnnotations
	cfg := blobDescriptor(configType, config)
	m := ocispec.Manifest{
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    cfg,
		Layers:    []ocispec.Descriptor{layer},
	}
	m.SchemaVersion = 2
	body, err := json.Marshal(m)
	if err != nil {
		return smallBlob{}, nil, err
	}
	return smallBlob{blobDescriptor(ocispec.MediaTypeImageManifest, body), body},
		[]smallBlob{{layer, module}, {cfg, config}}, nil
}
