package kubelet

import (
	"context"
	"fmt"
	"net"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/krustlet/krustlet-go/pkg/config"
	pullcreds "github.com/krustlet/krustlet-go/pkg/credentials"
	"github.com/krustlet/krustlet-go/pkg/env"
	"github.com/krustlet/krustlet-go/pkg/kubelet/pods"
	"github.com/krustlet/krustlet-go/pkg/kubelet/status"
	"github.com/krustlet/krustlet-go/pkg/provider"
	"github.com/krustlet/krustlet-go/pkg/volume"
)

// statusWorkers write pod statuses in parallel.
const statusWorkers = 4

// newPodRunner wires the pod lifecycle: an informer on the pods bound to
// this node (the Node authorizer requires the field selector), one on the
// Node itself for admission, the event recorder, the status manager and the
// pod workers. The returned function runs them until ctx ends.
// imageCollector is implemented by providers that keep images on disk and
// remove unused ones when the disk fills (--image-gc-high-threshold).
type imageCollector interface {
	RunImageGC(ctx context.Context, inUse func() []string) error
}

// imageLister is implemented by providers that report the images they keep,
// for the Node's status.images.
type imageLister interface {
	ListImages(ctx context.Context) ([]v1.ContainerImage, error)
}

// podRunner runs the pods of the node.
type podRunner struct {
	pods *pods.Manager
	run  func(context.Context) error
}

func newPodRunner(ctx context.Context, cfg *config.Config, client kubernetes.Interface, prov provider.Provider, ips []net.IP, clk clock.WithTicker, metrics prometheus.Registerer) (*podRunner, error) {
	podInformers := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.FieldSelector = "spec.nodeName=" + cfg.NodeName
	}))
	nodeInformers := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.FieldSelector = "metadata.name=" + cfg.NodeName
	}))
	podInformer := podInformers.Core().V1().Pods().Informer()
	nodeLister := nodeInformers.Core().V1().Nodes().Lister()

	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartStructuredLogging(3)
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	recorder := broadcaster.NewRecorder(scheme.Scheme, v1.EventSource{Component: "kubelet", Host: cfg.NodeName})

	var pm *pods.Manager
	statusManager := status.NewManager(client, func(ns, name string) *v1.Pod { return pm.Pod(ns, name) })
	allocatable := func() v1.ResourceList {
		if n, err := nodeLister.Get(cfg.NodeName); err == nil {
			return n.Status.Allocatable
		}
		return nil
	}
	volumes, err := volume.NewManager(volume.Options{Client: client, Clock: clk, Allocatable: allocatable})
	if err != nil {
		return nil, fmt.Errorf("creating volume manager: %w", err)
	}
	builder, err := env.NewBuilder(env.Options{Client: client, Objects: volumes.Objects(), SubPaths: volumes,
		NodeIPs: ips, Allocatable: allocatable, Recorder: recorder})
	if err != nil {
		return nil, fmt.Errorf("creating container config builder: %w", err)
	}
	creds := &pullcreds.Source{Client: client, NodeConfig: cfg.RegistryConfig}
	pm, err = pods.NewManager(pods.Config{
		NodeName:    cfg.NodeName,
		NodeIPs:     ips,
		DataDir:     cfg.DataDir,
		Provider:    prov,
		Recorder:    recorder,
		Status:      statusManager,
		Volumes:     volumes,
		Containers:  builder,
		Credentials: creds,
		Node:        func() (*v1.Node, error) { return nodeLister.Get(cfg.NodeName) },
		LogMaxSize:  cfg.ContainerLogMaxSize.Value(),
		LogMaxFiles: int(cfg.ContainerLogMaxFiles),
		Clock:       clk,
		Metrics:     metrics,
	})
	if err != nil {
		return nil, fmt.Errorf("creating pod manager: %w", err)
	}
	return &podRunner{pods: pm, run: func(ctx context.Context) error {
		defer broadcaster.Shutdown()
		podInformers.Start(ctx.Done())
		nodeInformers.Start(ctx.Done())
		defer podInformers.Shutdown()
		defer nodeInformers.Shutdown()
		nodeInformers.WaitForCacheSync(ctx.Done())
		klog.FromContext(ctx).V(2).Info("Node informer synced; taking pods")
		g, gctx := errgroup.WithContext(ctx)
		g.Go(func() error { return statusManager.Run(gctx, statusWorkers) })
		g.Go(func() error { return builder.Run(gctx) })
		g.Go(func() error { return pm.Run(gctx, podInformer) })
		if gc, ok := prov.(imageCollector); ok {
			g.Go(func() error { return gc.RunImageGC(gctx, pm.ImagesInUse) })
		}
		return g.Wait()
	}}, nil
}
