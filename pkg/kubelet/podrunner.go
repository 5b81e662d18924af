package kubelet

import (
	"context"
	"fmt"
	"net"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"
	v1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	nodelisters "k8s.io/client-go/listers/node/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/krustlet/krustlet-go/pkg/config"
	"github.com/krustlet/krustlet-go/pkg/credentials"
	"github.com/krustlet/krustlet-go/pkg/env"
	"github.com/krustlet/krustlet-go/pkg/kubelet/pods"
	"github.com/krustlet/krustlet-go/pkg/kubelet/runtimeclass"
	"github.com/krustlet/krustlet-go/pkg/kubelet/status"
	"github.com/krustlet/krustlet-go/pkg/provider"
	"github.com/krustlet/krustlet-go/pkg/volume"
)

// statusWorkers write pod statuses in parallel.
const statusWorkers = 4

// watches are the agent's watches: the pods bound to this node and the
// Node itself (the Node authorizer requires these field selectors), and the
// RuntimeClasses that route pods to providers.
type watches struct {
	pods, nodes, cluster informers.SharedInformerFactory
	runtimeClasses       runtimeClassGetter
}

// runtimeClassGetter looks a RuntimeClass up in the informer's cache.
type runtimeClassGetter struct {
	lister nodelisters.RuntimeClassLister
}

func (g runtimeClassGetter) Get(name string) (*nodev1.RuntimeClass, error) { return g.lister.Get(name) }

func newWatches(client kubernetes.Interface, nodeName string) *watches {
	i := &watches{
		pods: informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = "spec.nodeName=" + nodeName
		})),
		nodes: informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = "metadata.name=" + nodeName
		})),
		cluster: informers.NewSharedInformerFactory(client, 0),
	}
	i.runtimeClasses = runtimeClassGetter{i.cluster.Node().V1().RuntimeClasses().Lister()}
	return i
}

// start starts every informer; the returned function stops them.
func (i *watches) start(ctx context.Context) func() {
	for _, f := range []informers.SharedInformerFactory{i.pods, i.nodes, i.cluster} {
		f.Start(ctx.Done())
	}
	return func() {
		for _, f := range []informers.SharedInformerFactory{i.pods, i.nodes, i.cluster} {
			f.Shutdown()
		}
	}
}

// imageListers are the node's providers that report their images.
func imageListers(router *runtimeclass.Router) []provider.ImageLister {
	var out []provider.ImageLister
	for _, r := range router.Runtimes() {
		if l, ok := r.Provider.(provider.ImageLister); ok {
			out = append(out, l)
		}
	}
	return out
}

// podRunner runs the pods of the node.
type podRunner struct {
	pods *pods.Manager
	run  func(context.Context) error
}

// newPodRunner wires the pod lifecycle: the informers, the event recorder,
// the status manager, the pod workers and each provider's image garbage
// collection. The returned runner runs them until ctx ends.
func newPodRunner(ctx context.Context, cfg *config.Config, client, events kubernetes.Interface, inf *watches, router *runtimeclass.Router, ips []net.IP, clk clock.WithTicker, metrics prometheus.Registerer) (*podRunner, error) {
	podInformer := inf.pods.Core().V1().Pods().Informer()
	nodeLister := inf.nodes.Core().V1().Nodes().Lister()
	rcInformer := inf.cluster.Node().V1().RuntimeClasses().Informer()

	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartStructuredLogging(3)
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: events.CoreV1().Events("")})
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
	creds := &credentials.Source{Client: client, NodeConfig: cfg.RegistryConfig}
	pm, err = pods.NewManager(pods.Config{
		NodeName:    cfg.NodeName,
		NodeIPs:     ips,
		DataDir:     cfg.DataDir,
		Router:      router,
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
		defer inf.start(ctx)()
		// Pods are taken once the Node (for admission) and the
		// RuntimeClasses (for routing) are known.
		if !cache.WaitForCacheSync(ctx.Done(), inf.nodes.Core().V1().Nodes().Informer().HasSynced, rcInformer.HasSynced) {
			return nil
		}
		klog.FromContext(ctx).V(2).Info("Node and RuntimeClass informers synced; taking pods")
		g, gctx := errgroup.WithContext(ctx)
		g.Go(func() error { return statusManager.Run(gctx, statusWorkers) })
		g.Go(func() error { return builder.Run(gctx) })
		g.Go(func() error { return pm.Run(gctx, podInformer) })
		for _, r := range router.Runtimes() {
			if gc, ok := r.Provider.(provider.ImageGarbageCollector); ok {
				g.Go(func() error { return gc.RunImageGC(gctx, pm.ImagesInUse) })
			}
		}
		return g.Wait()
	}}, nil
}
