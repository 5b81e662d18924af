package pods

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/flowcontrol"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/krustlet/krustlet-go/pkg/kubelet/admission"
	"github.com/krustlet/krustlet-go/pkg/kubelet/logs"
	"github.com/krustlet/krustlet-go/pkg/kubelet/runtimeclass"
	"github.com/krustlet/krustlet-go/pkg/kubelet/status"
	"github.com/krustlet/krustlet-go/pkg/provider"
)

// Back-off of container restarts and image pulls, as the kubelet's.
const (
	backOffPeriod    = 10 * time.Second
	maxBackOffPeriod = 300 * time.Second
)

// Config is what the pod manager is built from. Every field is required
// unless it says otherwise.
type Config struct {
	NodeName string
	// NodeIPs are the node's addresses: the pods' hostIPs, and the podIPs of
	// pods whose provider makes no sandbox of their own.
	NodeIPs []net.IP
	// DataDir is the node's data dir: pods live under DataDir/pods, their
	// logs under DataDir/logs/pods.
	DataDir string
	// Router picks the provider of each pod.
	Router     Router
	Recorder   record.EventRecorder
	Status     *status.Manager
	Volumes    VolumeManager
	Containers ConfigBuilder
	// Credentials gives registry credentials for a pod; optional.
	Credentials provider.CredentialSource
	// Node returns the Node object for admission.
	Node func() (*v1.Node, error)
	// LogMaxSize and LogMaxFiles rotate the container logs the core writes.
	LogMaxSize  int64
	LogMaxFiles int
	Clock       clock.WithTicker
	// Metrics registers the workers' metrics; optional.
	Metrics prometheus.Registerer
	// Backoff, when set, replaces the restart, pull and sandbox back-off
	// (tests).
	Backoff func() *flowcontrol.Backoff
}

// Manager runs one worker per pod bound to the node.
type Manager struct {
	cfg    Config
	d      *deps
	lister corelisters.PodLister

	wg sync.WaitGroup

	mu      sync.Mutex
	workers map[types.UID]*worker
	// stopped is set once Run waits for the workers: an informer event
	// still in flight must not start one (wg.Add after wg.Wait).
	stopped bool
}

var everything = labels.Everything()

// NewManager returns a pod manager.
func NewManager(cfg Config) (*Manager, error) {
	if cfg.Router == nil || cfg.Recorder == nil || cfg.Status == nil || cfg.Volumes == nil || cfg.Containers == nil || cfg.Node == nil || cfg.Clock == nil {
		return nil, fmt.Errorf("pods: incomplete Config")
	}
	newBackoff := cfg.Backoff
	if newBackoff == nil {
		newBackoff = func() *flowcontrol.Backoff { return flowcontrol.NewBackOff(backOffPeriod, maxBackOffPeriod) }
	}
	d := &deps{
		ctx:            context.Background(),
		clock:          cfg.Clock,
		recorder:       cfg.Recorder,
		status:         cfg.Status,
		volumes:        cfg.Volumes,
		containers:     cfg.Containers,
		credentials:    cfg.Credentials,
		router:         cfg.Router,
		metrics:        newMetrics(cfg.Metrics, cfg.Clock.Now),
		nodeIPs:        cfg.NodeIPs,
		layout:         layout{dataDir: cfg.DataDir},
		logOptions:     logs.Options{MaxSize: cfg.LogMaxSize, MaxFiles: cfg.LogMaxFiles, Now: cfg.Clock.Now},
		restartBackoff: newBackoff(),
		pullBackoff:    newBackoff(),
		sandboxBackoff: newBackoff(),
		images:         &imageSet{},
		runs:           &runSet{},
	}
	return &Manager{cfg: cfg, d: d, workers: map[types.UID]*worker{}}, nil
}

// Run takes the pods of a started informer on this node's pods, and runs
// them until ctx ends. Pods that exist when it starts are admitted in the
// order of their creation, as the kubelet does after a restart; files of
// pods that no longer exist are removed.
func (m *Manager) Run(ctx context.Context, informer cache.SharedIndexInformer) error {
	logger := klog.FromContext(ctx).WithName("pods")
	ctx = klog.NewContext(ctx, logger)
	m.d.ctx = ctx
	lister := corelisters.NewPodLister(informer.GetIndexer())
	m.mu.Lock() // Pod and Pods are called from other goroutines
	m.lister = lister
	m.mu.Unlock()
	if !cache.WaitForCacheSync(ctx.Done(), informer.HasSynced) {
		return nil
	}
	existing, err := lister.List(labels.Everything())
	if err != nil {
		return err
	}
	sort.Slice(existing, func(i, j int) bool {
		return existing[i].CreationTimestamp.Before(&existing[j].CreationTimestamp)
	})
	for _, p := range existing {
		m.podUpdated(ctx, p)
	}
	m.removeOrphans(ctx)
	reg, err := informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { m.onUpdate(ctx, obj) },
		UpdateFunc: func(_, obj any) { m.onUpdate(ctx, obj) },
		DeleteFunc: func(obj any) { m.onDelete(obj) },
	})
	if err != nil && ctx.Err() == nil {
		return err
	}
	// (When ctx ended while Run started, the informer refused the handler;
	// the workers started above are still waited for.)
	<-ctx.Done()
	_ = informer.RemoveEventHandler(reg)
	m.mu.Lock()
	m.stopped = true
	m.mu.Unlock()
	m.wg.Wait()
	return nil
}

// Pod returns the cached pod, for the status manager.
func (m *Manager) Pod(namespace, name string) *v1.Pod {
	lister := m.podLister()
	if lister == nil {
		return nil
	}
	p, err := lister.Pods(namespace).Get(name)
	if err != nil {
		return nil
	}
	return p
}

func (m *Manager) podLister() corelisters.PodLister {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lister
}

// RunningPods returns the pods this node runs now (not terminal).
func (m *Manager) RunningPods() []*v1.Pod {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*v1.Pod
	for _, w := range m.workers {
		if w.active() {
			p, _ := w.snapshot()
			out = append(out, p)
		}
	}
	return out
}

func (m *Manager) onUpdate(ctx context.Context, obj any) {
	if pod, ok := obj.(*v1.Pod); ok {
		m.podUpdated(ctx, pod)
	}
}

func (m *Manager) onDelete(obj any) {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	pod, ok := obj.(*v1.Pod)
	if !ok {
		return
	}
	m.mu.Lock()
	w := m.workers[pod.UID]
	m.mu.Unlock()
	if w != nil {
		w.update(pod)
		w.markGone()
	}
}

// podUpdated hands a pod to its worker, admitting it and starting the
// worker when it is new.
func (m *Manager) podUpdated(ctx context.Context, pod *v1.Pod) {
	m.mu.Lock()
	w, ok := m.workers[pod.UID]
	if !ok && m.stopped {
		m.mu.Unlock()
		return
	}
	if !ok {
		var rejected *admission.Result
		if !isTerminalPhase(pod.Status.Phase) && pod.DeletionTimestamp == nil && !wasAdmitted(pod) {
			rejected = m.admit(ctx, pod)
		}
		w = newWorker(m.d, pod, rejected)
		m.workers[pod.UID] = w
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			w.loop(ctx)
			m.mu.Lock()
			delete(m.workers, pod.UID)
			m.mu.Unlock()
		}()
	}
	m.mu.Unlock()
	if ok {
		w.update(pod)
	}
}

// admit runs admission against the pods already admitted; m.mu is held.
func (m *Manager) admit(ctx context.Context, pod *v1.Pod) *admission.Result {
	node, err := m.cfg.Node()
	if err != nil {
		node = nil
	}
	var admitted []*v1.Pod
	for _, w := range m.workers {
		if w.active() {
			p, _ := w.snapshot()
			admitted = append(admitted, p)
		}
	}
	// A pod that cannot be routed yet is admitted without its provider's
	// say; its worker reports the routing error and retries.
	var admitter provider.PodAdmitter
	if route, err := m.d.router.Route(pod); err == nil {
		admitter, _ = route.Runtime.Provider.(provider.PodAdmitter)
	}
	r := admission.Admit(klog.FromContext(ctx), node, pod, admitted, admitter)
	if r.Admit {
		return nil
	}
	return &r
}

// wasAdmitted reports whether a previous agent already ran the pod: it has
// container statuses. Such pods are taken back without a new admission.
func wasAdmitted(pod *v1.Pod) bool {
	return len(pod.Status.ContainerStatuses) > 0 || len(pod.Status.InitContainerStatuses) > 0
}

// removeOrphans deletes the files of pods that do not exist any more.
func (m *Manager) removeOrphans(ctx context.Context) {
	logger := klog.FromContext(ctx)
	entries, _ := os.ReadDir(m.d.layout.podsRoot())
	for _, e := range entries {
		uid := types.UID(e.Name())
		m.mu.Lock()
		_, known := m.workers[uid]
		m.mu.Unlock()
		if known {
			continue
		}
		if err := m.d.volumes.TearDown(ctx, uid, m.d.layout.podDir(uid)); err != nil {
			logger.Error(err, "Tearing down volumes of a removed pod failed", "podUID", uid)
		}
		if err := os.RemoveAll(m.d.layout.podDir(uid)); err != nil {
			logger.Error(err, "Removing files of a removed pod failed", "podUID", uid)
		} else {
			logger.Info("Removed files of a pod deleted while the agent was down", "podUID", uid)
		}
	}
	m.removeOrphanSandboxes(ctx)
	logDirs, _ := os.ReadDir(m.d.layout.logRoot())
	for _, e := range logDirs {
		uid := types.UID(lastField(e.Name()))
		m.mu.Lock()
		_, known := m.workers[uid]
		m.mu.Unlock()
		if !known {
			_ = os.RemoveAll(filepath.Join(m.d.layout.logRoot(), e.Name()))
		}
	}
}

// removeOrphanSandboxes removes the sandboxes (and so the containers) that
// providers whose runs outlive the agent still hold for pods that no longer
// exist.
func (m *Manager) removeOrphanSandboxes(ctx context.Context) {
	lister, ok := m.d.router.(interface{ Runtimes() []runtimeclass.Runtime })
	if !ok {
		return
	}
	logger := klog.FromContext(ctx)
	for _, r := range lister.Runtimes() {
		sb, ok := r.Provider.(provider.PodSandboxer)
		if !ok {
			continue
		}
		uids, err := sb.ListPods(ctx)
		if err != nil {
			logger.Error(err, "Listing the pod sandboxes of a provider failed", "provider", r.Name)
			continue
		}
		for _, uid := range uids {
			m.mu.Lock()
			_, known := m.workers[types.UID(uid)]
			m.mu.Unlock()
			if known {
				continue
			}
			if err := sb.RemovePod(ctx, uid); err != nil {
				logger.Error(err, "Removing the sandbox of a deleted pod failed", "provider", r.Name, "podUID", uid)
			} else {
				logger.Info("Removed the sandbox of a pod deleted while the agent was down", "provider", r.Name, "podUID", uid)
			}
		}
	}
}

func lastField(s string) string {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '_' {
			return s[i+1:]
		}
	}
	return s
}

// LogDir is the root of the container logs.
func (m *Manager) LogDir() string { return m.d.layout.logRoot() }

// Route returns the provider a pod was routed to, false until it is.
func (m *Manager) Route(uid types.UID) (runtimeclass.Route, bool) {
	m.mu.Lock()
	w := m.workers[uid]
	m.mu.Unlock()
	if w == nil {
		return runtimeclass.Route{}, false
	}
	r := w.route.Load()
	if r == nil {
		return runtimeclass.Route{}, false
	}
	return *r, true
}
