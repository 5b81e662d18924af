package provider

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// Options are what every provider is built from.
type Options struct {
	// DataDir is the provider's own directory under the node's data dir.
	DataDir string
	// NodeName is the name of this node.
	NodeName string
	// AllowLocalModules lets images be local files (fs/PATH), for
	// development.
	AllowLocalModules bool
	// InsecureRegistries may be reached over plain HTTP.
	InsecureRegistries []string
	// RegistryCAFile is a PEM bundle trusted for registries in addition to
	// the system roots (--registry-ca-file).
	RegistryCAFile string
	// PullTimeout bounds one image pull. Zero: the provider's default.
	PullTimeout time.Duration
	// MaxModuleSize refuses larger modules, in bytes. Zero: the
	// provider's default.
	MaxModuleSize int64
	// ImageGCHighThresholdPercent and ImageGCLowThresholdPercent are the
	// image garbage collection thresholds (--image-gc-high-threshold,
	// --image-gc-low-threshold) for providers that keep images. Zero: 85
	// and 80.
	ImageGCHighThresholdPercent int32
	ImageGCLowThresholdPercent  int32
	// ContainerRuntimeEndpoint and ImageServiceEndpoint are the CRI
	// sockets (--container-runtime-endpoint, --image-service-endpoint)
	// for providers that drive a CRI runtime; RuntimeRequestTimeout
	// bounds each call but pulls (--runtime-request-timeout).
	ContainerRuntimeEndpoint string
	ImageServiceEndpoint     string
	RuntimeRequestTimeout    time.Duration
}

// Factory builds a provider.
type Factory func(Options) (Provider, error)

var (
	mu        sync.RWMutex
	factories = map[string]Factory{}
)

// Register makes a provider available under name. It panics if the name is
// taken, which is a programming error in the command's wiring.
func Register(name string, f Factory) {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := factories[name]; dup {
		panic(fmt.Sprintf("provider %q registered twice", name))
	}
	factories[name] = f
}

// Names lists the registered providers, sorted.
func Names() []string {
	mu.RLock()
	defer mu.RUnlock()
	names := make([]string, 0, len(factories))
	for n := range factories {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// New builds the provider registered as name.
func New(name string, o Options) (Provider, error) {
	mu.RLock()
	f, ok := factories[name]
	mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("unknown provider %q: valid providers are %s", name, strings.Join(Names(), ", "))
	}
	p, err := f(o)
	if err != nil {
		return nil, fmt.Errorf("starting provider %q: %w", name, err)
	}
	return p, nil
}
