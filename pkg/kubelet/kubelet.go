package kubelet

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/certificate"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/krustlet/krustlet-go/pkg/bootstrap"
	"github.com/krustlet/krustlet-go/pkg/config"
	"github.com/krustlet/krustlet-go/pkg/kubelet/runtimeclass"
	"github.com/krustlet/krustlet-go/pkg/kubelet/server"
	"github.com/krustlet/krustlet-go/pkg/node"
	"github.com/krustlet/krustlet-go/pkg/version"
)

// maxNodeImages caps status.images, as the kubelet's default
// --node-status-max-images.
const maxNodeImages = 50

// Run runs the node agent until ctx ends, or until one of its parts fails:
// then every part is stopped and the error returned, so that the process
// exits non-zero with the cause and a supervisor restarts it.
func Run(ctx context.Context, cfg *config.Config) error {
	logger := klog.FromContext(ctx).WithValues("node", cfg.NodeName)
	ctx = klog.NewContext(ctx, logger)
	logger.Info("Starting krustlet", "version", version.Get().Long(), "providers", cfg.Providers, "dataDir", cfg.DataDir)
	clk := clock.RealClock{}

	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return fmt.Errorf("creating data dir: %w", err)
	}
	runtimes, err := newRuntimes(cfg)
	if err != nil {
		return err
	}

	metrics := newMetricsRegistry()
	creds, err := setUpCredentials(ctx, cfg, metrics)
	if err != nil {
		return err
	}
	defer creds.stop()
	client, err := kubernetes.NewForConfig(creds.client)
	if err != nil {
		return err
	}
	heartbeat, err := kubernetes.NewForConfig(creds.heartbeat)
	if err != nil {
		return err
	}
	events, err := kubernetes.NewForConfig(creds.events)
	if err != nil {
		return err
	}
	watches := newWatches(client, cfg.NodeName)
	router, err := runtimeclass.NewRouter(runtimes, cfg.Handlers(), watches.runtimeClasses.Get)
	if err != nil {
		return err
	}

	ips, err := nodeIPs(ctx, cfg.NodeIPs)
	if err != nil {
		return err
	}
	getCert, stopServing, err := servingCertificate(ctx, cfg, client, ips)
	if err != nil {
		return err
	}
	defer stopServing()
	caData, err := clientCA(cfg, creds.clientCA)
	if err != nil {
		return err
	}

	machine := node.Machine{DataDir: cfg.DataDir}
	pressure := &node.PressureReader{Machine: machine, Thresholds: cfg.EvictionHard, Now: clk.Now}
	now := func() metav1.Time { return metav1.NewTime(clk.Now()) }
	identity := identityOf(router)
	reserved := sumResources(cfg.SystemReserved, cfg.KubeReserved)
	health := func() []error { return providerHealth(ctx, router) }
	setters := []node.Setter{
		node.NodeAddress(ips, cfg.Hostname),
		node.MachineInfo(cfg.MaxPods, machine.Capacity, reserved, cfg.EvictionHard),
		node.VersionInfo(machine.ReadSystemInfo(version.Get().String()), identity.info),
		node.DaemonEndpoints(cfg.Port),
		node.RuntimeHandlers(runtimeHandlers(router)),
		node.PressureCondition(v1.NodeMemoryPressure, now, func() (bool, error) { p, err := pressure.Read(); return p.Memory, err }),
		node.PressureCondition(v1.NodeDiskPressure, now, func() (bool, error) { p, err := pressure.Read(); return p.Disk, err }),
		node.PressureCondition(v1.NodePIDPressure, now, func() (bool, error) { p, err := pressure.Read(); return p.PID, err }),
		node.ReadyCondition(now, health),
	}
	if listers := imageListers(router); len(listers) > 0 {
		setters = append(setters, node.Images(maxNodeImages, allImages(listers)))
	}
	registrar := &node.Registrar{
		Client:   client,
		NodeName: cfg.NodeName,
		Labels:   nodeLabels(cfg, identity.labels),
		Taints:   nodeTaints(cfg, identity.taints),
		Setters:  setters,
	}
	if cfg.RegisterNode {
		if err := registrar.Register(ctx); err != nil {
			return fmt.Errorf("registering node: %w", err)
		}
	}

	g, gctx := errgroup.WithContext(ctx)
	podRunner, err := newPodRunner(gctx, cfg, client, events, watches, router, ips, clk, metrics)
	if err != nil {
		return err
	}
	g.Go(func() error { return podRunner.run(gctx) })
	api, err := server.New(server.Options{
		NodeName:       cfg.NodeName,
		Address:        cfg.Address,
		Port:           cfg.Port,
		HealthzAddress: cfg.HealthzBindAddress,
		HealthzPort:    cfg.HealthzPort,
		GetCertificate: getCert,
		Auth: server.AuthOptions{
			ClientCA:    caData,
			Anonymous:   cfg.AnonymousAuth,
			Webhook:     cfg.AuthenticationTokenWebhook,
			AlwaysAllow: cfg.AuthorizationMode == config.AuthorizationModeAlwaysAllow,
			Client:      client,
		},
		EnableDebugging: cfg.EnableDebuggingHandlers,
		Pods:            podRunner.pods,
		Machine:         machine,
		Metrics:         metrics,
		Healthy:         func() error { return errors.Join(health()...) },
		Now:             clk.Now,
	})
	if err != nil {
		return err
	}
	g.Go(func() error { return api.Run(gctx) })
	status := &node.StatusController{
		Client:          client,
		NodeName:        cfg.NodeName,
		Setters:         setters,
		Clock:           clk,
		UpdateFrequency: cfg.NodeStatusUpdateFrequency,
		ReportFrequency: cfg.NodeStatusReportFrequency,
		Register:        registrar.Register,
	}
	g.Go(func() error { return status.Run(gctx) })
	leases := node.NewLeaseController(gctx, clk, heartbeat, cfg.NodeName, cfg.NodeLeaseDurationSeconds, creds.closeAll)
	g.Go(func() error { leases.Run(gctx); return nil })

	return waitAndStop(ctx, gctx, g, cfg, client)
}

// waitAndStop waits until ctx ends (a signal) or a part of the agent fails
// (gctx ends first), then stops every part within the shutdown grace period.
// A failed part's error is returned.
func waitAndStop(ctx, gctx context.Context, g *errgroup.Group, cfg *config.Config, client kubernetes.Interface) error {
	logger := klog.FromContext(ctx)
	select {
	case <-ctx.Done():
		logger.Info("Shutting down", "gracePeriod", cfg.ShutdownGracePeriod)
	case <-gctx.Done():
		logger.Info("A part of the node agent failed; stopping the others", "gracePeriod", cfg.ShutdownGracePeriod)
	}
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownGracePeriod)
	defer cancel()
	if cfg.DrainOnShutdown && ctx.Err() != nil {
		if err := drain(stopCtx, client, cfg.NodeName); err != nil {
			logger.Error(err, "Draining the node failed")
		}
	}
	done := make(chan error, 1)
	go func() { done <- g.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			return err
		}
		if ctx.Err() == nil {
			return errors.New("a part of the node agent stopped unexpectedly")
		}
		logger.Info("Stopped")
		return nil
	case <-stopCtx.Done():
		return errors.New("parts of the node agent did not stop within the shutdown grace period")
	}
}

// clientCredentials are the API client configurations of the running agent.
type clientCredentials struct {
	client, heartbeat, events *rest.Config
	// clientCA is the configuration whose CA the node trusts.
	clientCA *rest.Config
	closeAll func()
	stop     func()
}

// setUpCredentials bootstraps a client certificate if needed, starts its
// rotation, and returns client configurations that follow it.
func setUpCredentials(ctx context.Context, cfg *config.Config, metrics *prometheus.Registry) (*clientCredentials, error) {
	cfgs, err := bootstrap.LoadClientConfig(ctx, cfg.Kubeconfig, cfg.BootstrapKubeconfig, cfg.CertDir)
	if err != nil {
		return nil, err
	}
	if cfgs.Bootstrap != nil {
		if err := bootstrap.CheckBootstrapCredentials(ctx, cfgs.Bootstrap); err != nil {
			return nil, err
		}
	}
	creds := &clientCredentials{closeAll: func() {}, stop: func() {}, clientCA: cfgs.Client}
	clientConfig := rest.CopyConfig(cfgs.Client)
	if cfg.BootstrapKubeconfig != "" && cfg.RotateCertificates || cfgs.Bootstrap != nil {
		var m certificate.Manager
		if m, err = bootstrap.NewClientCertificateManager(ctx, cfgs, cfg.CertDir, cfg.NodeName); err != nil {
			return nil, err
		}
		m.Start()
		creds.stop = m.Stop
		if err := bootstrap.WaitForCertificate(ctx, m, "client"); err != nil {
			m.Stop()
			return nil, fmt.Errorf("waiting for the client certificate: %w", err)
		}
		if !cfg.RotateCertificates {
			// Bootstrapped once; no rotation wanted.
			m.Stop()
			creds.stop = func() {}
		} else if creds.closeAll, err = bootstrap.UpdateTransport(ctx, clientConfig, m, 10*time.Second); err != nil {
			m.Stop()
			return nil, err
		}
	}
	clientConfig.QPS = float32(cfg.KubeAPIQPS)
	clientConfig.Burst = int(cfg.KubeAPIBurst)
	clientConfig.UserAgent = "krustlet/" + version.Get().String()
	clientConfig.ContentType = "application/vnd.kubernetes.protobuf"
	creds.client = clientConfig
	// Lease renewals get their own client without rate limiting and with a
	// timeout of one lease duration, as the kubelet's heartbeat client, so
	// pod traffic never delays them.
	creds.heartbeat = rest.CopyConfig(clientConfig)
	creds.heartbeat.QPS = -1
	creds.heartbeat.Timeout = time.Duration(cfg.NodeLeaseDurationSeconds) * time.Second
	// Events get a client of their own, as the kubelet's, so that a burst
	// of events never delays a status patch.
	creds.events = rest.CopyConfig(clientConfig)
	creds.events.QPS, creds.events.Burst = float32(cfg.EventRecordQPS), int(cfg.EventBurst)
	if cfg.EventRecordQPS == 0 {
		creds.events.QPS = -1 // no limit
	}
	instrument(creds.client, metrics, "main")
	instrument(creds.events, metrics, "events")
	instrument(creds.heartbeat, metrics, "heartbeat")
	return creds, nil
}

// nodeIPs returns the configured node IPs, or the address of the interface
// of the default route, or loopback when the machine has no such route.
func nodeIPs(ctx context.Context, configured []net.IP) ([]net.IP, error) {
	if len(configured) > 0 {
		return configured, nil
	}
	ip, err := utilnet.ChooseHostInterface()
	if err != nil {
		klog.FromContext(ctx).Info("No default route to pick the node IP from; using 127.0.0.1. Set --node-ip to the address other nodes reach this one at", "err", err)
		return []net.IP{net.IPv4(127, 0, 0, 1)}, nil
	}
	return []net.IP{ip}, nil
}

// nodeLabels are --node-labels, then the providers' labels, then the
// hostname, which wins.
func nodeLabels(cfg *config.Config, fromProviders map[string]string) map[string]string {
	labels := maps.Clone(cfg.NodeLabels)
	if labels == nil {
		labels = map[string]string{}
	}
	maps.Copy(labels, fromProviders)
	labels[v1.LabelHostname] = cfg.Hostname
	return labels
}

// nodeTaints are the providers' taints and --register-with-taints.
func nodeTaints(cfg *config.Config, fromProviders []v1.Taint) []v1.Taint {
	taints := slices.Clone(fromProviders)
	for _, t := range cfg.RegisterWithTaints {
		if !slices.ContainsFunc(taints, func(x v1.Taint) bool { return x.MatchTaint(&t) }) {
			taints = append(taints, t)
		}
	}
	return taints
}

func sumResources(lists ...v1.ResourceList) v1.ResourceList {
	out := v1.ResourceList{}
	for _, l := range lists {
		for name, q := range l {
			v := out[name]
			v.Add(q)
			out[name] = v
		}
	}
	return out
}

// drain deletes the pods bound to this node (krustlet did this at every
// shutdown; here only with --drain-on-shutdown).
func drain(ctx context.Context, client kubernetes.Interface, nodeName string) error {
	pods, err := client.CoreV1().Pods(metav1.NamespaceAll).List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + nodeName})
	if err != nil {
		return fmt.Errorf("listing pods to drain: %w", err)
	}
	var errs []error
	for _, p := range pods.Items {
		if err := client.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{}); err != nil {
			errs = append(errs, err)
		}
	}
	klog.FromContext(ctx).Info("Drained node", "pods", len(pods.Items), "errors", len(errs))
	return errors.Join(errs...)
}
