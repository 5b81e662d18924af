package cri

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	internalapi "k8s.io/cri-api/pkg/apis"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	remote "k8s.io/cri-client/pkg"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/krustlet/krustlet-go/pkg/provider"
)

// Labels krustlet puts on sandboxes and containers; the io.kubernetes ones
// are the kubelet's, so that crictl and runtime tooling show the pods.
const (
	labelPodName       = "io.kubernetes.pod.name"
	labelPodNamespace  = "io.kubernetes.pod.namespace"
	labelPodUID        = "io.kubernetes.pod.uid"
	labelContainerName = "io.kubernetes.container.name"
	labelRunID         = "krustlet.dev/run-id"
	labelManaged       = "krustlet.dev/managed"
)

// Defaults.
const (
	DefaultRequestTimeout = 2 * time.Minute
	// exitPoll is how often a waiting handle asks the runtime whether its
	// container exited.
	exitPoll = 500 * time.Millisecond
)

// Options configure a Provider.
type Options struct {
	// Name is the provider's registered name; the RuntimeClass handler of
	// that name (and the empty one) is the runtime's default handler.
	Name string
	// Endpoint is the runtime service's socket, unix:///path.
	Endpoint string
	// ImageEndpoint is the image service's socket; default Endpoint.
	ImageEndpoint string
	// RequestTimeout bounds each call but pulls; default 2 minutes.
	RequestTimeout time.Duration
	// Clock gives timestamps; default the real clock.
	Clock clock.WithTicker
}

// Provider runs pods through a CRI runtime. It is safe for concurrent use.
type Provider struct {
	opts    Options
	runtime internalapi.RuntimeService
	images  internalapi.ImageManagerService
	version *runtimeapi.VersionResponse

	mu sync.Mutex
	// pods are the sandboxes this agent started or found, by pod UID.
	pods map[string]*sandbox
}

var (
	_ provider.Provider      = (*Provider)(nil)
	_ provider.PodSandboxer  = (*Provider)(nil)
	_ provider.RuntimeLogs   = (*Provider)(nil)
	_ provider.Adopter       = (*Provider)(nil)
	_ provider.HealthChecker = (*Provider)(nil)
	_ provider.StatsProvider = (*Provider)(nil)
	_ provider.Streamer      = (*Provider)(nil)
	_ provider.ImageLister   = (*Provider)(nil)
)

// New connects to the runtime and checks that it speaks CRI v1.
func New(ctx context.Context, o Options) (*Provider, error) {
	if o.Endpoint == "" {
		return nil, errors.New("cri provider: no runtime endpoint")
	}
	if o.ImageEndpoint == "" {
		o.ImageEndpoint = o.Endpoint
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = DefaultRequestTimeout
	}
	rs, err := remote.NewRemoteRuntimeServiceBuilder().WithEndpoint(o.Endpoint).WithConnectionTimeout(o.RequestTimeout).Build(ctx)
	if err != nil {
		return nil, fmt.Errorf("cri provider: connecting to %s: %w", o.Endpoint, err)
	}
	is, err := remote.NewRemoteImageServiceBuilder().WithEndpoint(o.ImageEndpoint).WithConnectionTimeout(o.RequestTimeout).Build(ctx)
	if err != nil {
		return nil, fmt.Errorf("cri provider: connecting to the image service %s: %w", o.ImageEndpoint, err)
	}
	return NewWithServices(ctx, o, rs, is)
}

// NewWithServices builds a provider on CRI services already connected
// (tests pass fakes).
func NewWithServices(ctx context.Context, o Options, rs internalapi.RuntimeService, is internalapi.ImageManagerService) (*Provider, error) {
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.Name == "" {
		o.Name = "cri"
	}
	v, err := rs.Version(ctx, "v1")
	if err != nil {
		return nil, fmt.Errorf("cri provider: the runtime at %s does not answer CRI v1 Version: %w", o.Endpoint, err)
	}
	klog.FromContext(ctx).Info("Connected to the container runtime", "endpoint", o.Endpoint, "runtime", v.RuntimeName, "version", v.RuntimeVersion, "apiVersion", v.RuntimeApiVersion)
	return &Provider{opts: o, runtime: rs, images: is, version: v, pods: map[string]*sandbox{}}, nil
}

// Node describes the runtime: it runs the machine's own containers.
func (p *Provider) Node() provider.NodeInfo {
	return provider.NodeInfo{
		RuntimeName:    p.version.RuntimeName,
		RuntimeVersion: p.version.RuntimeVersion,
		Architecture:   runtime.GOARCH,
		Containers:     true,
	}
}

// Healthy reports the runtime's own view, in the kubelet's words.
func (p *Provider) Healthy(ctx context.Context) error {
	st, err := p.runtime.Status(ctx, false)
	if err != nil {
		return fmt.Errorf("container runtime is down: %w", err)
	}
	var errs []error
	for _, want := range []string{runtimeapi.RuntimeReady, runtimeapi.NetworkReady} {
		c := condition(st.GetStatus(), want)
		switch {
		case c == nil:
			errs = append(errs, fmt.Errorf("container runtime status check: %s missing", want))
		case !c.Status && want == runtimeapi.NetworkReady:
			errs = append(errs, fmt.Errorf("container runtime network not ready: %s=false reason:%s message:%s", want, c.Reason, c.Message))
		case !c.Status:
			errs = append(errs, fmt.Errorf("container runtime not ready: %s=false reason:%s message:%s", want, c.Reason, c.Message))
		}
	}
	return errors.Join(errs...)
}

func condition(st *runtimeapi.RuntimeStatus, t string) *runtimeapi.RuntimeCondition {
	for _, c := range st.GetConditions() {
		if c.Type == t {
			return c
		}
	}
	return nil
}

// WritesContainerLogs: the runtime writes each run's CRI log itself.
func (p *Provider) WritesContainerLogs() {}

// Close closes the connections to the runtime.
func (p *Provider) Close() error {
	ctx := context.Background()
	return errors.Join(p.runtime.Close(ctx), p.images.Close(ctx))
}
