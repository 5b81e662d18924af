package kubelet

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"runtime"
	"slices"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/krustlet/krustlet-go/pkg/config"
	"github.com/krustlet/krustlet-go/pkg/kubelet/runtimeclass"
	"github.com/krustlet/krustlet-go/pkg/provider"
)

const (
	// wasmArch is the kubernetes.io/arch and kubernetes.io/os label value
	// of a Wasm node, kept from krustlet so that its manifests run unchanged.
	wasmArch = "wasm32-wasi"
	// HandlerLabelPrefix starts the label a node carries for each
	// RuntimeClass handler it serves (value "true"), for RuntimeClass
	// scheduling.nodeSelector.
	HandlerLabelPrefix = "handler.krustlet.dev/"
	// healthTimeout bounds one provider health check.
	healthTimeout = 5 * time.Second
)

// newRuntimes builds every provider the node runs, the default first.
func newRuntimes(cfg *config.Config) ([]runtimeclass.Runtime, error) {
	var out []runtimeclass.Runtime
	for _, name := range cfg.Providers {
		p, err := provider.New(name, provider.Options{
			DataDir:            filepath.Join(cfg.DataDir, "providers", name),
			NodeName:           cfg.NodeName,
			AllowLocalModules:  cfg.AllowLocalModules,
			InsecureRegistries: cfg.InsecureRegistries,
			RegistryCAFile:     cfg.RegistryCAFile,

			ImageGCHighThresholdPercent: cfg.ImageGCHighThresholdPercent,
			ImageGCLowThresholdPercent:  cfg.ImageGCLowThresholdPercent,

			ContainerRuntimeEndpoint: cfg.ContainerRuntimeEndpoint,
			ImageServiceEndpoint:     cfg.ImageServiceEndpoint,
			RuntimeRequestTimeout:    cfg.RuntimeRequestTimeout,
		})
		if err != nil {
			return nil, err
		}
		out = append(out, runtimeclass.Runtime{Name: name, Provider: p})
	}
	return out, nil
}

// nodeIdentity is what the set of providers makes of the Node: its
// labels, taints and nodeInfo. A node whose providers all run Wasm keeps
// krustlet's wasm32-wasi labels and taints; a node that also runs the
// machine's own containers registers as the machine it is, without the Wasm
// taints. Either way every handler served gets a label of its own.
type nodeIdentity struct {
	labels map[string]string
	taints []v1.Taint
	info   provider.NodeInfo
}

func identityOf(router *runtimeclass.Router) nodeIdentity {
	runtimes := router.Runtimes()
	containers := slices.ContainsFunc(runtimes, func(r runtimeclass.Runtime) bool { return r.Provider.Node().Containers })
	id := nodeIdentity{labels: map[string]string{}, info: runtimes[0].Provider.Node()}
	for _, r := range runtimes {
		ni := r.Provider.Node()
		if containers && !ni.Containers {
			continue // a Wasm provider beside containers: reached by handler labels
		}
		maps.Copy(id.labels, ni.Labels)
		for _, t := range ni.Taints {
			if !slices.ContainsFunc(id.taints, func(x v1.Taint) bool { return x.MatchTaint(&t) }) {
				id.taints = append(id.taints, t)
			}
		}
	}
	if containers {
		id.labels[v1.LabelArchStable] = runtime.GOARCH
		id.labels[v1.LabelOSStable] = runtime.GOOS
		id.info.Architecture = runtime.GOARCH
	} else {
		id.labels[v1.LabelArchStable] = wasmArch
		id.labels[v1.LabelOSStable] = wasmArch
	}
	for _, h := range router.Handlers() {
		id.labels[HandlerLabelPrefix+h] = "true"
	}
	return id
}

// runtimeHandlers is the Node's status.runtimeHandlers.
func runtimeHandlers(router *runtimeclass.Router) []v1.NodeRuntimeHandler {
	var out []v1.NodeRuntimeHandler
	for _, h := range router.Handlers() {
		out = append(out, v1.NodeRuntimeHandler{Name: h})
	}
	return out
}

// providerHealth asks every provider that can tell whether it can run pods.
func providerHealth(ctx context.Context, router *runtimeclass.Router) []error {
	var errs []error
	for _, r := range router.Runtimes() {
		hc, ok := r.Provider.(provider.HealthChecker)
		if !ok {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, healthTimeout)
		err := hc.Healthy(cctx)
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("provider %s is not ready: %w", r.Name, err))
		}
	}
	return errs
}

// allImages lists the images of every provider that keeps some.
func allImages(listers []provider.ImageLister) func(context.Context) ([]v1.ContainerImage, error) {
	return func(ctx context.Context) ([]v1.ContainerImage, error) {
		var all []v1.ContainerImage
		for _, l := range listers {
			images, err := l.ListImages(ctx)
			if err != nil {
				return nil, err
			}
			all = append(all, images...)
		}
		slices.SortStableFunc(all, func(a, b v1.ContainerImage) int { return cmp.Compare(b.SizeBytes, a.SizeBytes) })
		return all, nil
	}
}
