package main

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
)

// startWatchers runs the informers that feed the trackers until ctx ends,
// and waits for their caches.
func (e *Env) startWatchers(ctx context.Context) error {
	e.pods = &podTracker{pods: map[string]*podRecord{}, ch: make(chan struct{})}
	e.nodes = &nodeTracker{nodes: map[string]*v1.Node{}, ch: make(chan struct{})}
	e.leases = &leaseTracker{renewals: map[string][]time.Time{}}

	podFactory := informers.NewSharedInformerFactoryWithOptions(e.client, 0, informers.WithNamespace(benchNamespace))
	podInf := podFactory.Core().V1().Pods().Informer()
	if _, err := podInf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { e.pods.observe(obj, false) },
		UpdateFunc: func(_, obj any) { e.pods.observe(obj, false) },
		DeleteFunc: func(obj any) { e.pods.observe(obj, true) },
	}); err != nil {
		return err
	}
	clusterFactory := informers.NewSharedInformerFactory(e.client, 0)
	nodeInf := clusterFactory.Core().V1().Nodes().Informer()
	if _, err := nodeInf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { e.nodes.observe(obj, false) },
		UpdateFunc: func(_, obj any) { e.nodes.observe(obj, false) },
		DeleteFunc: func(obj any) { e.nodes.observe(obj, true) },
	}); err != nil {
		return err
	}
	leaseFactory := informers.NewSharedInformerFactoryWithOptions(e.client, 0, informers.WithNamespace(v1.NamespaceNodeLease))
	leaseInf := leaseFactory.Coordination().V1().Leases().Informer()
	if _, err := leaseInf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { e.leases.observe(obj) },
		UpdateFunc: func(_, obj any) { e.leases.observe(obj) },
	}); err != nil {
		return err
	}
	for _, f := range []informers.SharedInformerFactory{podFactory, clusterFactory, leaseFactory} {
		f.Start(ctx.Done())
	}
	if !cache.WaitForCacheSync(ctx.Done(), podInf.HasSynced, nodeInf.HasSynced, leaseInf.HasSynced) {
		return fmt.Errorf("informer caches did not sync")
	}
	return nil
}

// podRecord is what the watch showed of one pod, with the time each state
// was first seen.
type podRecord struct {
	Name, Node, Set string
	Added           time.Time
	Scheduled       time.Time // spec.nodeName set
	Running         time.Time // phase Running
	Ready           time.Time // condition Ready=True
	Completed       time.Time // phase Succeeded or Failed
	Deleted         time.Time
	Phase           v1.PodPhase
	// Reason and Message of a Failed pod (the node refused it, or it
	// failed), or of the Unschedulable PodScheduled condition.
	Reason, Message string
	Unschedulable   bool
	// StartedAt and FinishedAt of the first container, from its status:
	// the node's own clock, to the second.
	StartedAt, FinishedAt time.Time
	Image                 string
}

// podTracker keeps a podRecord per pod name (names are never reused within
// a run). It must be safe for concurrent use: informer handlers write,
// scenarios read.
type podTracker struct {
	mu   sync.Mutex
	pods map[string]*podRecord
	ch   chan struct{} // closed and replaced on every change
}

func (t *podTracker) observe(obj any, deleted bool) {
	now := time.Now()
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	p, ok := obj.(*v1.Pod)
	if !ok {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	r := t.pods[p.Name]
	if r == nil {
		r = &podRecord{Name: p.Name, Set: p.Labels[labelSet], Added: now}
		if len(p.Spec.Containers) > 0 {
			r.Image = p.Spec.Containers[0].Image
		}
		t.pods[p.Name] = r
	}
	setOnce := func(at *time.Time, cond bool) {
		if cond && at.IsZero() {
			*at = now
		}
	}
	r.Phase = p.Status.Phase
	if p.Spec.NodeName != "" {
		r.Node = p.Spec.NodeName
	}
	setOnce(&r.Scheduled, p.Spec.NodeName != "")
	setOnce(&r.Running, p.Status.Phase == v1.PodRunning)
	setOnce(&r.Completed, p.Status.Phase == v1.PodSucceeded || p.Status.Phase == v1.PodFailed)
	for _, c := range p.Status.Conditions {
		switch c.Type {
		case v1.PodReady:
			setOnce(&r.Ready, c.Status == v1.ConditionTrue)
		case v1.PodScheduled:
			if c.Status == v1.ConditionFalse && c.Reason == v1.PodReasonUnschedulable {
				r.Unschedulable, r.Reason, r.Message = true, c.Reason, c.Message
			}
		}
	}
	if p.Status.Phase == v1.PodFailed {
		r.Reason, r.Message = p.Status.Reason, p.Status.Message
	}
	if len(p.Status.ContainerStatuses) > 0 {
		cs := p.Status.ContainerStatuses[0]
		if s := cs.State.Running; s != nil && !s.StartedAt.IsZero() {
			r.StartedAt = s.StartedAt.Time
		}
		if s := cs.State.Terminated; s != nil {
			if !s.StartedAt.IsZero() {
				r.StartedAt = s.StartedAt.Time
			}
			r.FinishedAt = s.FinishedAt.Time
			if p.Status.Phase == v1.PodFailed && r.Reason == "" {
				r.Reason, r.Message = s.Reason, fmt.Sprintf("exit code %d: %s", s.ExitCode, s.Message)
			}
		}
	}
	setOnce(&r.Deleted, deleted)
	close(t.ch)
	t.ch = make(chan struct{})
}

// snapshot returns copies of the records of names (nil for a name never
// seen) and a channel closed on the next change.
func (t *podTracker) snapshot(names []string) ([]*podRecord, <-chan struct{}) {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]*podRecord, len(names))
	for i, n := range names {
		if r := t.pods[n]; r != nil {
			c := *r
			out[i] = &c
		}
	}
	return out, t.ch
}

// get returns a copy of the record of name, if seen.
func (t *podTracker) get(name string) *podRecord {
	rs, _ := t.snapshot([]string{name})
	return rs[0]
}

// podCheck says whether a pod reached what is waited for; an error stops
// the wait at once (the pod can never get there).
type podCheck func(*podRecord) (bool, error)

func isReady(r *podRecord) (bool, error) {
	if !r.Ready.IsZero() {
		return true, nil
	}
	return false, failedErr(r)
}

func isSucceeded(r *podRecord) (bool, error) {
	if r.Phase == v1.PodSucceeded {
		return true, nil
	}
	return false, failedErr(r)
}

func failedErr(r *podRecord) error {
	if r.Phase == v1.PodFailed {
		return fmt.Errorf("pod %s failed: %s %s", r.Name, r.Reason, r.Message)
	}
	if !r.Deleted.IsZero() {
		return fmt.Errorf("pod %s was deleted", r.Name)
	}
	return nil
}

// waitAll waits until check holds for every pod of names.
func (t *podTracker) waitAll(ctx context.Context, names []string, timeout time.Duration, check podCheck) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		rs, ch := t.snapshot(names)
		pending := 0
		for _, r := range rs {
			if r == nil {
				pending++
				continue
			}
			ok, err := check(r)
			if err != nil {
				return err
			}
			if !ok {
				pending++
			}
		}
		if pending == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d of %d pods not there after %v: %s", pending, len(names), timeout, describeRecords(rs))
		case <-ch:
		}
		// Coalesce bursts of updates: re-check at most every 20 ms.
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// waitGone waits until every pod of names was deleted.
func (t *podTracker) waitGone(ctx context.Context, names []string, timeout time.Duration) error {
	return t.waitAll(ctx, names, timeout, func(r *podRecord) (bool, error) { return !r.Deleted.IsZero(), nil })
}

// waitNone waits until no pod of the namespace is left.
func (t *podTracker) waitNone(ctx context.Context, timeout time.Duration) error {
	t.mu.Lock()
	var live []string
	for n, r := range t.pods {
		if r.Deleted.IsZero() {
			live = append(live, n)
		}
	}
	t.mu.Unlock()
	return t.waitGone(ctx, live, timeout)
}

// describeRecords summarises pods by phase, for error messages.
func describeRecords(rs []*podRecord) string {
	count := map[string]int{}
	var sample []string
	for _, r := range rs {
		key := "not seen"
		if r != nil {
			key = string(r.Phase)
			if r.Phase == "" {
				key = "no phase"
			}
			if r.Node == "" {
				key = "unscheduled"
			}
			if r.Unschedulable && r.Node == "" {
				key = "unschedulable"
				if len(sample) < 3 {
					sample = append(sample, r.Name+": "+r.Message)
				}
			}
		}
		count[key]++
	}
	keys := slices.Sorted(maps.Keys(count))
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%d ", k, count[k])
	}
	if len(sample) > 0 {
		fmt.Fprintf(&b, "(%s)", strings.Join(sample, "; "))
	}
	return strings.TrimSpace(b.String())
}

// nodeTracker keeps the latest Node objects.
type nodeTracker struct {
	mu    sync.Mutex
	nodes map[string]*v1.Node
	ch    chan struct{}
}

func (t *nodeTracker) observe(obj any, deleted bool) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	n, ok := obj.(*v1.Node)
	if !ok {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if deleted {
		delete(t.nodes, n.Name)
	} else {
		t.nodes[n.Name] = n
	}
	close(t.ch)
	t.ch = make(chan struct{})
}

// schedulable reports whether the node is Ready and carries none of the
// taints the node lifecycle controller puts on a node that is not.
func schedulable(n *v1.Node) bool {
	if n == nil || !nodeReady(n) {
		return false
	}
	for _, t := range n.Spec.Taints {
		if t.Key == v1.TaintNodeNotReady || t.Key == v1.TaintNodeUnreachable {
			return false
		}
	}
	return true
}

func nodeReady(n *v1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == v1.NodeReady {
			return c.Status == v1.ConditionTrue
		}
	}
	return false
}

// readyCount returns how many of names are Ready now.
func (t *nodeTracker) readyCount(names []string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	ready := 0
	for _, n := range names {
		if node := t.nodes[n]; node != nil && nodeReady(node) {
			ready++
		}
	}
	return ready
}

// waitSchedulable waits until every node of names is Ready and untainted.
// alive is checked every second: an agent that exited fails the wait at
// once rather than at the timeout.
func (t *nodeTracker) waitSchedulable(ctx context.Context, timeout time.Duration, alive func() error, names ...string) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		t.mu.Lock()
		var waiting []string
		for _, n := range names {
			if !schedulable(t.nodes[n]) {
				waiting = append(waiting, n)
			}
		}
		ch := t.ch
		t.mu.Unlock()
		if len(waiting) == 0 {
			return nil
		}
		if err := alive(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			sort.Strings(waiting)
			return fmt.Errorf("nodes not Ready and schedulable after %v: %v", timeout, waiting)
		case <-ch:
		case <-tick.C:
		}
	}
}

// leaseTracker records every distinct renewTime of every node Lease.
type leaseTracker struct {
	mu       sync.Mutex
	renewals map[string][]time.Time
}

func (t *leaseTracker) observe(obj any) {
	l, ok := obj.(*coordinationv1.Lease)
	if !ok || l.Spec.RenewTime == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	rs := t.renewals[l.Name]
	at := l.Spec.RenewTime.Time
	if len(rs) == 0 || at.After(rs[len(rs)-1]) {
		t.renewals[l.Name] = append(rs, at)
	}
}

// LeaseStats describe the renewals of one lease within a window.
type LeaseStats struct {
	Renewals int `json:"renewals"`
	// MaxInterval is the longest time between two renewals seen within
	// the window (counting the one before it began and the open interval
	// at its end): the renewal delay is MaxInterval minus the renew
	// interval (10 s for krustlet and kwok alike).
	MaxInterval time.Duration `json:"maxIntervalNs"`
	// Age is how old the last renewal was at the end of the window.
	Age time.Duration `json:"ageNs"`
}

// stats returns the renewals of the lease of node in [from, to].
func (t *leaseTracker) stats(node string, from, to time.Time) LeaseStats {
	t.mu.Lock()
	rs := slices.Clone(t.renewals[node])
	t.mu.Unlock()
	var s LeaseStats
	var prev time.Time
	for _, r := range rs {
		if r.After(to) {
			break
		}
		if !r.Before(from) {
			s.Renewals++
			if !prev.IsZero() {
				s.MaxInterval = max(s.MaxInterval, r.Sub(prev))
			}
		}
		prev = r
	}
	if prev.IsZero() {
		return LeaseStats{MaxInterval: to.Sub(from), Age: -1}
	}
	s.Age = to.Sub(prev)
	s.MaxInterval = max(s.MaxInterval, s.Age)
	return s
}
