package main

import (
	"context"
	"path/filepath"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/krustlet/krustlet-go/pkg/cri"
	"github.com/krustlet/krustlet-go/pkg/provider"
	"github.com/krustlet/krustlet-go/pkg/registry"
	"github.com/krustlet/krustlet-go/pkg/version"
	"github.com/krustlet/krustlet-go/pkg/wasmtime"
)

// The providers built into this binary, by the name --provider takes.
func init() {
	provider.Register("wasmtime", newWasmtime)
	provider.Register("cri", newCRI)
}

// connectTimeout bounds the first contact with a CRI runtime at start.
const connectTimeout = 30 * time.Second

// newCRI builds the provider of ordinary containers on the CRI runtime at
// --container-runtime-endpoint; the agent does not start when the runtime
// does not answer.
func newCRI(o provider.Options) (provider.Provider, error) {
	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	defer cancel()
	return cri.New(ctx, cri.Options{
		Name:           "cri",
		Endpoint:       o.ContainerRuntimeEndpoint,
		ImageEndpoint:  o.ImageServiceEndpoint,
		RequestTimeout: o.RuntimeRequestTimeout,
	})
}

// newWasmtime builds the wasmtime provider with OCI registries as its
// module source; the content store is DataDir/images.
func newWasmtime(o provider.Options) (provider.Provider, error) {
	reg, err := registry.New(registry.Options{
		Dir:                filepath.Join(o.DataDir, "images"),
		InsecureRegistries: o.InsecureRegistries,
		CAFile:             o.RegistryCAFile,
		PullTimeout:        o.PullTimeout,
		MaxModuleSize:      o.MaxModuleSize,
		UserAgent:          "krustlet/" + version.Get().String(),
	})
	if err != nil {
		return nil, err
	}
	p, err := wasmtime.New(wasmtime.Options{
		DataDir:           o.DataDir,
		AllowLocalModules: o.AllowLocalModules,
		Source:            moduleSource{reg},
	})
	if err != nil {
		return nil, err
	}
	return &withImages{Provider: p, reg: reg, gcHigh: int(o.ImageGCHighThresholdPercent), gcLow: int(o.ImageGCLowThresholdPercent)}, nil
}

// moduleSource adapts the registry to wasmtime's ModuleSource; neither
// package knows the other.
type moduleSource struct{ reg *registry.Registry }

func (s moduleSource) Fetch(ctx context.Context, req provider.PullRequest) (provider.Image, wasmtime.ModuleBlob, error) {
	img, m, err := s.reg.Pull(ctx, req)
	if err != nil {
		return provider.Image{}, wasmtime.ModuleBlob{}, err
	}
	return img, wasmtime.ModuleBlob{Digest: m.Digest, Path: m.Path}, nil
}

// withImages is the wasmtime provider (every method and optional
// capability of it) plus the registry's image capabilities: the Node's
// status.images and the image garbage collection.
type withImages struct {
	*wasmtime.Provider
	reg           *registry.Registry
	gcHigh, gcLow int
}

var (
	_ provider.Provider              = (*withImages)(nil)
	_ provider.ImageLister           = (*withImages)(nil)
	_ provider.ImageGarbageCollector = (*withImages)(nil)
	_ provider.StatsProvider         = (*withImages)(nil)
	_ provider.PodAdmitter           = (*withImages)(nil)
	_ provider.HealthChecker         = (*withImages)(nil)
)

// ListImages lists the stored images, largest first.
func (p *withImages) ListImages(context.Context) ([]v1.ContainerImage, error) {
	return p.reg.Images(), nil
}

// RunImageGC collects unused images until ctx ends (see registry.ImageGC);
// inUse lists the images of the node's pods.
func (p *withImages) RunImageGC(ctx context.Context, inUse func() []string) error {
	gc := &registry.ImageGC{
		Store:                p.reg.Store(),
		InUse:                inUse,
		OnRemove:             p.Provider.ForgetModule,
		HighThresholdPercent: p.gcHigh,
		LowThresholdPercent:  p.gcLow,
	}
	return gc.Run(ctx)
}
