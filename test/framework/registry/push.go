package registry

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
)

// Layer is one layer of an Artifact.
type Layer struct {
	MediaType string
	Data      []byte
}

// Artifact is what Push packs into an OCI image manifest with oras-go, as
// `oras push` does.
type Artifact struct {
	// ConfigMediaType and Config are the config blob; an empty
	// ConfigMediaType packs an OCI 1.1 artifact with the empty config and
	// ArtifactType.
	ConfigMediaType string
	Config          []byte
	ArtifactType    string
	Layers          []Layer
}

// WasmToOCI is a module in the layout of wasm-to-oci and krustlet: config
// application/vnd.wasm.config.v1+json ({}), one layer
// application/vnd.wasm.content.layer.v1+wasm.
func WasmToOCI(module []byte) Artifact {
	return Artifact{
		ConfigMediaType: "application/vnd.wasm.config.v1+json",
		Config:          []byte("{}"),
		Layers:          []Layer{{"application/vnd.wasm.content.layer.v1+wasm", module}},
	}
}

// CNCF is a module in the CNCF TAG Runtime layout for os (wasip1 for a
// module, wasip2 for a component).
func CNCF(module []byte, os string) Artifact {
	cfg, _ := json.Marshal(map[string]any{"architecture": "wasm", "os": os, "layerDigests": []string{digest.FromBytes(module).String()}})
	return Artifact{
		ConfigMediaType: "application/vnd.wasm.config.v0+json",
		Config:          cfg,
		Layers:          []Layer{{"application/wasm", module}},
	}
}

// LinuxImage is a tiny Linux container image: an OCI image config for
// linux/amd64 and one gzipped tar layer.
func LinuxImage() Artifact {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	body := []byte("#!/bin/sh\necho hello\n")
	tw.WriteHeader(&tar.Header{Name: "hello.sh", Mode: 0o755, Size: int64(len(body))})
	tw.Write(body)
	tw.Close()
	gz.Close()
	cfg, _ := json.Marshal(ocispec.Image{
		Platform: ocispec.Platform{Architecture: "amd64", OS: "linux"},
		Config:   ocispec.ImageConfig{Entrypoint: []string{"/hello.sh"}},
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{digest.FromBytes(buf.Bytes())}},
	})
	return Artifact{
		ConfigMediaType: ocispec.MediaTypeImageConfig,
		Config:          cfg,
		Layers:          []Layer{{ocispec.MediaTypeImageLayerGzip, buf.Bytes()}},
	}
}

// repository is an oras-go client for repo on the registry, through the
// proxy, with user and password if user is set.
func (r *Registry) repository(repo, user, password string) (*remote.Repository, error) {
	rp, err := remote.NewRepository(r.Host + "/" + repo)
	if err != nil {
		return nil, err
	}
	rp.PlainHTTP = true
	client := &auth.Client{Client: http.DefaultClient, Cache: auth.NewCache()}
	if user != "" {
		client.Credential = auth.StaticCredential(r.Host, auth.Credential{Username: user, Password: password})
	}
	rp.Client = client
	return rp, nil
}

// Push packs a and pushes it as repo:tag (repo without the registry host)
// with oras-go, as a user's `oras push` would, and returns the manifest's
// descriptor. user may be empty for an anonymous push.
func (r *Registry) Push(ctx context.Context, repoTag string, a Artifact, user, password string) (ocispec.Descriptor, error) {
	repoName, tag, ok := strings.Cut(repoTag, ":")
	if !ok {
		return ocispec.Descriptor{}, fmt.Errorf("push: %q has no tag", repoTag)
	}
	repo, err := r.repository(repoName, user, password)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	var layers []ocispec.Descriptor
	for _, l := range a.Layers {
		d := content.NewDescriptorFromBytes(l.MediaType, l.Data)
		if err := pushBlob(ctx, repo, d, l.Data); err != nil {
			return ocispec.Descriptor{}, err
		}
		layers = append(layers, d)
	}
	opts := oras.PackManifestOptions{Layers: layers, ManifestAnnotations: map[string]string{ocispec.AnnotationCreated: "2024-01-01T00:00:00Z"}}
	if a.ConfigMediaType != "" {
		cfg := content.NewDescriptorFromBytes(a.ConfigMediaType, a.Config)
		if err := pushBlob(ctx, repo, cfg, a.Config); err != nil {
			return ocispec.Descriptor{}, err
		}
		opts.ConfigDescriptor = &cfg
	}
	desc, err := oras.PackManifest(ctx, repo, oras.PackManifestVersion1_1, a.ArtifactType, opts)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("pushing the manifest of %s: %w", repoTag, err)
	}
	if err := repo.Tag(ctx, desc, tag); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("tagging %s: %w", repoTag, err)
	}
	return desc, nil
}

// PushIndex pushes an image index of manifests (already pushed to the same
// repository, each with its Platform set) as repo:tag.
func (r *Registry) PushIndex(ctx context.Context, repoTag string, manifests []ocispec.Descriptor, user, password string) (ocispec.Descriptor, error) {
	repoName, tag, ok := strings.Cut(repoTag, ":")
	if !ok {
		return ocispec.Descriptor{}, fmt.Errorf("push: %q has no tag", repoTag)
	}
	repo, err := r.repository(repoName, user, password)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: manifests}
	idx.SchemaVersion = 2
	body, err := json.Marshal(idx)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	desc := content.NewDescriptorFromBytes(ocispec.MediaTypeImageIndex, body)
	if err := repo.PushReference(ctx, desc, bytes.NewReader(body), tag); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("pushing index %s: %w", repoTag, err)
	}
	return desc, nil
}

func pushBlob(ctx context.Context, repo *remote.Repository, d ocispec.Descriptor, data []byte) error {
	err := repo.Push(ctx, d, bytes.NewReader(data))
	if err != nil && !strings.Contains(err.Error(), errdef.ErrAlreadyExists.Error()) {
		return fmt.Errorf("pushing blob %s: %w", d.Digest, err)
	}
	return nil
}
