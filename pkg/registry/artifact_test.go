package registry

import (
	"errors"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/krustlet/krustlet-go/pkg/provider"
)

func TestModuleLayer(t *testing.T) {
	mod := blobDescriptor(MediaTypeWasmLayer, []byte("m"))
	old := blobDescriptor(MediaTypeWasmContentLayer, []byte("m"))
	tarLayer := blobDescriptor(ocispec.MediaTypeImageLayerGzip, []byte("t"))
	manifest := func(configType, artifactType string, layers ...ocispec.Descriptor) ocispec.Manifest {
		return ocispec.Manifest{Config: ocispec.Descriptor{MediaType: configType}, ArtifactType: artifactType, Layers: layers}
	}
	for _, tc := range []struct {
		name             string
		m                ocispec.Manifest
		layer            ocispec.Descriptor
		check, container bool
		err              string
	}{
		{"cncf", manifest(MediaTypeWasmConfigV0, "", mod), mod, true, false, ""},
		{"wasm-to-oci", manifest(MediaTypeWasmConfigV1, "", old), old, false, false, ""},
		{"oci 1.1 artifact", manifest(ocispec.MediaTypeEmptyJSON, MediaTypeWasmConfigV0, mod), mod, false, false, ""},
		{"container image", manifest(ocispec.MediaTypeImageConfig, "", tarLayer), ocispec.Descriptor{}, false, true, ""},
		{"docker image", manifest(mediaTypeDockerConfig, "", tarLayer), ocispec.Descriptor{}, false, true, ""},
		{"cncf without module", manifest(MediaTypeWasmConfigV0, "", tarLayer), ocispec.Descriptor{}, false, false, "no module layer"},
		{"two modules", manifest(MediaTypeWasmConfigV0, "", mod, mod), ocispec.Descriptor{}, false, false, "2 module layers"},
		{"helm chart", manifest("application/vnd.cncf.helm.config.v1+json", "", tarLayer), ocispec.Descriptor{}, false, false, "not a WebAssembly module (config application/vnd.cncf.helm.config.v1+json"},
		{"unknown artifact", manifest(ocispec.MediaTypeEmptyJSON, "application/vnd.example", mod), ocispec.Descriptor{}, false, false, "artifact type application/vnd.example"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			layer, check, container, err := moduleLayer("r.io/app:v1", tc.m)
			if tc.err != "" {
				if !errors.Is(err, provider.ErrImageInspect) || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), "this node runs WASI preview 1") {
					t.Errorf("err %v, want ErrImageInspect with %q and what is accepted", err, tc.err)
				}
				return
			}
			if err != nil || layer.Digest != tc.layer.Digest || check != tc.check || container != tc.container {
				t.Errorf("got %v %v %v %v", layer.Digest, check, container, err)
			}
		})
	}
}

func TestCheckWasmConfig(t *testing.T) {
	for cfg, want := range map[string]string{
		`{"architecture":"wasm","os":"wasip1"}`:  "",
		`{"architecture":"wasm","os":"wasi"}`:    "",
		`{"architecture":"wasm","os":"wasip2"}`:  "WASI preview 2 component",
		`{"architecture":"amd64","os":"wasip1"}`: `architecture "amd64"`,
		`{"architecture":"wasm","os":"linux"}`:   `os "linux"`,
		`{`:                                      "not valid JSON",
	} {
		err := checkWasmConfig("r.io/app:v1", []byte(cfg))
		if want == "" && err != nil || want != "" && (!errors.Is(err, provider.ErrImageInspect) || !strings.Contains(err.Error(), want)) {
			t.Errorf("%s: %v, want %q", cfg, err, want)
		}
	}
}

func TestSelectPlatform(t *testing.T) {
	entry := func(os, arch string) ocispec.Descriptor {
		return ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: blobDescriptor("x", []byte(os+arch)).Digest, Platform: &ocispec.Platform{OS: os, Architecture: arch}}
	}
	idx := ocispec.Index{Manifests: []ocispec.Descriptor{entry("linux", "amd64"), entry("wasip2", "wasm"), entry("wasip1", "wasm")}}
	if d, err := selectPlatform("r", idx); err != nil || d.Platform.OS != "wasip1" {
		t.Errorf("mixed index: %+v, %v", d, err)
	}
	if _, err := selectPlatform("r", ocispec.Index{Manifests: []ocispec.Descriptor{entry("linux", "amd64"), entry("linux", "arm64")}}); err == nil || !strings.Contains(err.Error(), "linux/amd64, linux/arm64") {
		t.Errorf("linux index: %v", err)
	}
	if _, err := selectPlatform("r", ocispec.Index{Manifests: []ocispec.Descriptor{entry("wasip2", "wasm")}}); err == nil || !strings.Contains(err.Error(), "preview 2") {
		t.Errorf("component index: %v", err)
	}
}

func TestManifestKind(t *testing.T) {
	for _, tc := range []struct {
		mediaType, body string
		index           bool
		err             bool
	}{
		{ocispec.MediaTypeImageIndex, `{}`, true, false},
		{mediaTypeDockerManifest, `{}`, false, false},
		{"", `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json"}`, true, false},
		{"", `{"schemaVersion":2,"manifests":[]}`, true, false},
		{"", `{"schemaVersion":2,"layers":[]}`, false, false},
		{"application/vnd.docker.distribution.manifest.v1+prettyjws", `{"schemaVersion":1}`, false, true},
		{"", `nope`, false, true},
	} {
		index, err := manifestKind(tc.mediaType, []byte(tc.body))
		if index != tc.index || (err != nil) != tc.err {
			t.Errorf("manifestKind(%q, %s) = %v, %v", tc.mediaType, tc.body, index, err)
		}
	}
}
