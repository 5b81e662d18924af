package registry

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/krustlet/krustlet-go/pkg/provider"
)

// Media types of the two Wasm artifact conventions this package pulls.
const (
	// MediaTypeWasmConfigV0 and MediaTypeWasmLayer are the CNCF TAG
	// Runtime's Wasm OCI artifact layout: a config with architecture
	// "wasm" and os "wasip1" (a core module) or "wasip2" (a component),
	// and the module as a layer of type application/wasm.
	MediaTypeWasmConfigV0 = "application/vnd.wasm.config.v0+json"
	MediaTypeWasmLayer    = "application/wasm"
	// MediaTypeWasmConfigV1 and MediaTypeWasmContentLayer are the layout
	// of wasm-to-oci, which krustlet pulled: an empty JSON config and the
	// module as the one layer.
	MediaTypeWasmConfigV1     = "application/vnd.wasm.config.v1+json"
	MediaTypeWasmContentLayer = "application/vnd.wasm.content.layer.v1+wasm"

	// WasmArchitecture and WasmOSPreview1 are the platform of a module this
	// node runs, in a config v0 and in an image index.
	WasmArchitecture = "wasm"
	WasmOSPreview1   = "wasip1"
	wasmOSPreview2   = "wasip2"
	// wasmOSLegacy is the platform OS of wasi/wasm images (runwasi).
	wasmOSLegacy = "wasi"

	mediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	mediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	mediaTypeDockerConfig       = "application/vnd.docker.container.image.v1+json"
)

// accepted says what this node pulls, for error messages.
const accepted = "this node runs WASI preview 1 core modules pushed as OCI artifacts: " +
	"config " + MediaTypeWasmConfigV0 + " (architecture wasm, os wasip1) with one " + MediaTypeWasmLayer + " layer " +
	"(krustlet push), or config " + MediaTypeWasmConfigV1 + " with one " + MediaTypeWasmContentLayer + " layer (wasm-to-oci)"

// manifestMediaTypes are the manifest types asked for and understood.
var manifestMediaTypes = []string{
	ocispec.MediaTypeImageManifest,
	ocispec.MediaTypeImageIndex,
	mediaTypeDockerManifest,
	mediaTypeDockerManifestList,
}

// WasmConfig is the config of the CNCF Wasm artifact layout
// (MediaTypeWasmConfigV0).
type WasmConfig struct {
	Created      string          `json:"created,omitempty"`
	Author       string          `json:"author,omitempty"`
	Architecture string          `json:"architecture"`
	OS           string          `json:"os"`
	LayerDigests []string        `json:"layerDigests,omitempty"`
	Component    json.RawMessage `json:"component,omitempty"`
}

// manifestKind sorts a fetched manifest into an index or an image
// manifest, from its media type or, when the registry gave none, its
// content.
func manifestKind(mediaType string, body []byte) (isIndex bool, err error) {
	var probe struct {
		MediaType string            `json:"mediaType"`
		Manifests []json.RawMessage `json:"manifests"`
		Layers    []json.RawMessage `json:"layers"`
		Schema    int               `json:"schemaVersion"`
	}
	if err := json.Unmarshal(body, &probe); err != nil {
		return false, fmt.Errorf("manifest is not JSON: %w", err)
	}
	mt := mediaType
	if mt == "" || mt == "application/json" || mt == "application/octet-stream" {
		mt = probe.MediaType
	}
	switch mt {
	case ocispec.MediaTypeImageIndex, mediaTypeDockerManifestList:
		return true, nil
	case ocispec.MediaTypeImageManifest, mediaTypeDockerManifest:
		return false, nil
	case "":
		if probe.Schema == 2 && probe.Manifests != nil {
			return true, nil
		}
		if probe.Schema == 2 {
			return false, nil
		}
	}
	return false, fmt.Errorf("unsupported manifest type %q (schema version %d); accepted: %s", mt, probe.Schema, strings.Join(manifestMediaTypes, ", "))
}

// selectPlatform picks the entry of an image index that this node runs:
// the first with architecture wasm and os wasip1 (or wasi).
func selectPlatform(ref string, index ocispec.Index) (ocispec.Descriptor, error) {
	var platforms []string
	component := false
	for _, m := range index.Manifests {
		p := m.Platform
		if p == nil {
			continue
		}
		if p.Architecture == WasmArchitecture && (p.OS == WasmOSPreview1 || p.OS == wasmOSLegacy) {
			return m, nil
		}
		if p.Architecture == WasmArchitecture && p.OS == wasmOSPreview2 {
			component = true
		}
		platforms = append(platforms, p.OS+"/"+p.Architecture)
	}
	if component {
		return ocispec.Descriptor{}, fmt.Errorf("%w: %s is an image index for WASI preview 2 components only (wasip2/wasm); %s",
			provider.ErrImageInspect, ref, accepted)
	}
	return ocispec.Descriptor{}, fmt.Errorf("%w: %s is a multi-platform image for %s, with no entry for %s/%s; %s",
		provider.ErrImageInspect, ref, describeList(platforms, "no platform"), WasmOSPreview1, WasmArchitecture, accepted)
}

// moduleLayer finds the module's layer in an image manifest by its layout.
// It returns the layer and whether the config must be read and checked
// (layout v0). A manifest that is not a Wasm artifact is refused here with
// what it is; a container image's config is read by the caller to say for
// which platform it is.
func moduleLayer(ref string, m ocispec.Manifest) (layer ocispec.Descriptor, checkConfig bool, containerImage bool, err error) {
	var (
		types []string
		wasm  []ocispec.Descriptor
	)
	for _, l := range m.Layers {
		types = append(types, l.MediaType)
	}
	pick := func(mediaType string) {
		for _, l := range m.Layers {
			if l.MediaType == mediaType {
				wasm = append(wasm, l)
			}
		}
	}
	cfg := m.Config.MediaType
	switch {
	case cfg == MediaTypeWasmConfigV0:
		pick(MediaTypeWasmLayer)
		checkConfig = true
	case cfg == MediaTypeWasmConfigV1:
		pick(MediaTypeWasmContentLayer)
	case cfg == ocispec.MediaTypeEmptyJSON && (m.ArtifactType == MediaTypeWasmConfigV0 || m.ArtifactType == MediaTypeWasmConfigV1 || m.ArtifactType == MediaTypeWasmLayer || m.ArtifactType == MediaTypeWasmContentLayer):
		// An OCI 1.1 artifact (oras push --artifact-type): no config to
		// read; the module's magic number is checked when it compiles.
		pick(MediaTypeWasmLayer)
		pick(MediaTypeWasmContentLayer)
	case cfg == ocispec.MediaTypeImageConfig || cfg == mediaTypeDockerConfig:
		return ocispec.Descriptor{}, false, true, nil
	default:
		kind := "config " + cfg
		if m.ArtifactType != "" {
			kind = "artifact type " + m.ArtifactType + ", " + kind
		}
		return ocispec.Descriptor{}, false, false, fmt.Errorf("%w: %s is not a WebAssembly module (%s, layers %s); %s",
			provider.ErrImageInspect, ref, kind, describeList(types, "none"), accepted)
	}
	switch len(wasm) {
	case 1:
		return wasm[0], checkConfig, false, nil
	case 0:
		return ocispec.Descriptor{}, false, false, fmt.Errorf("%w: %s has a Wasm config (%s) but no module layer (layers %s); %s",
			provider.ErrImageInspect, ref, cfg, describeList(types, "none"), accepted)
	default:
		return ocispec.Descriptor{}, false, false, fmt.Errorf("%w: %s has %d module layers; a module this node runs has exactly one (a multi-layer artifact is a component and its dependencies); %s",
			provider.ErrImageInspect, ref, len(wasm), accepted)
	}
}

// checkWasmConfig checks a config v0: a core module for WASI preview 1.
func checkWasmConfig(ref string, body []byte) error {
	var c WasmConfig
	if err := json.Unmarshal(body, &c); err != nil {
		return fmt.Errorf("%w: %s: config (%s) is not valid JSON: %v", provider.ErrImageInspect, ref, MediaTypeWasmConfigV0, err)
	}
	switch {
	case c.Architecture != WasmArchitecture:
		return fmt.Errorf("%w: %s: Wasm config says architecture %q, want %q; %s", provider.ErrImageInspect, ref, c.Architecture, WasmArchitecture, accepted)
	case c.OS == wasmOSPreview2:
		return fmt.Errorf("%w: %s is a WASI preview 2 component (os wasip2), which this node cannot run; %s", provider.ErrImageInspect, ref, accepted)
	case c.OS != WasmOSPreview1 && c.OS != wasmOSLegacy:
		return fmt.Errorf("%w: %s: Wasm config says os %q; %s", provider.ErrImageInspect, ref, c.OS, accepted)
	}
	return nil
}

// containerImageError describes a container image by its config.
func containerImageError(ref string, m ocispec.Manifest, configBody []byte) error {
	var img ocispec.Image
	platform := "unknown platform"
	if json.Unmarshal(configBody, &img) == nil && img.OS != "" {
		platform = img.OS + "/" + img.Architecture
		if img.Variant != "" {
			platform += "/" + img.Variant
		}
	}
	var types []string
	for _, l := range m.Layers {
		if !slices.Contains(types, l.MediaType) {
			types = append(types, l.MediaType)
		}
	}
	what := "a Linux container image"
	switch {
	case img.OS == wasmOSLegacy || img.OS == WasmOSPreview1 || img.Architecture == WasmArchitecture:
		what = "a container image with a Wasm module inside file-system layers (for containerd's Wasm shims)"
	case img.OS != "" && img.OS != "linux":
		what = "a container image"
	}
	return fmt.Errorf("%w: %s is %s (%s, layers %s), not a WebAssembly module artifact; %s",
		provider.ErrImageInspect, ref, what, platform, describeList(types, "none"), accepted)
}

func describeList(items []string, none string) string {
	if len(items) == 0 {
		return none
	}
	return strings.Join(items, ", ")
}
