package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	v1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	nodeutil "k8s.io/component-helpers/node/util"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
)

// nodeStatusUpdateRetry is how often one sync tries, as in the kubelet.
const nodeStatusUpdateRetry = 5

// StatusController keeps the Node's status current.
type StatusController struct {
	Client   kubernetes.Interface
	NodeName string
	Setters  []Setter
	Clock    clock.WithTicker
	// UpdateFrequency is how often the status is computed (10 s);
	// ReportFrequency is how often it is written when nothing changed (5 min).
	UpdateFrequency, ReportFrequency time.Duration
	// Register creates the Node again when it is gone.
	Register func(ctx context.Context) error

	lastReport time.Time
	trigger    chan struct{}
}

// Trigger asks for a sync soon, e.g. after something a setter reads
// changed. It never blocks.
func (c *StatusController) Trigger() {
	select {
	case c.trigger <- struct{}{}:
	default:
	}
}

// Run syncs the status every UpdateFrequency until ctx ends.
func (c *StatusController) Run(ctx context.Context) error {
	if c.trigger == nil {
		c.trigger = make(chan struct{}, 1)
	}
	logger := klog.FromContext(ctx).WithName("node-status")
	ctx = klog.NewContext(ctx, logger)
	ticker := c.Clock.NewTicker(c.UpdateFrequency)
	defer ticker.Stop()
	for {
		if err := c.sync(ctx); err != nil && ctx.Err() == nil {
			logger.Error(err, "Updating node status failed; retrying at the next interval")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C():
		case <-c.trigger:
		}
	}
}

func (c *StatusController) sync(ctx context.Context) error {
	var err error
	for i := range nodeStatusUpdateRetry {
		if err = c.tryUpdate(ctx, i); err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return nil
		}
		klog.FromContext(ctx).V(2).Info("Node status update failed, will retry", "attempt", i+1, "err", err)
	}
	return fmt.Errorf("updating node status: exceeded retry count: %w", err)
}

func (c *StatusController) tryUpdate(ctx context.Context, attempt int) error {
	opts := metav1.GetOptions{}
	if attempt == 0 {
		// The first try reads from the API server's cache, as the kubelet's.
		opts.ResourceVersion = "0"
	}
	node, err := c.Client.CoreV1().Nodes().Get(ctx, c.NodeName, opts)
	if apierrors.IsNotFound(err) {
		klog.FromContext(ctx).Info("Node object is gone; registering again", "node", c.NodeName)
		if err := c.Register(ctx); err != nil {
			return err
		}
		c.lastReport = c.Clock.Now()
		return nil
	}
	if err != nil {
		return fmt.Errorf("getting node %q: %w", c.NodeName, err)
	}
	updated := node.DeepCopy()
	var errs []error
	for _, set := range c.Setters {
		if err := set(ctx, updated); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		klog.FromContext(ctx).Error(errors.Join(errs...), "Some node status setters failed")
	}
	now := c.Clock.Now()
	if !StatusChanged(&node.Status, &updated.Status) && now.Sub(c.lastReport) < c.ReportFrequency {
		return nil
	}
	// PatchNodeStatus formats the API error with %v, so a NotFound cannot
	// be told apart here: when the Node went away since the Get, the next
	// try's Get finds it gone and registers it again.
	if _, _, err := nodeutil.PatchNodeStatus(c.Client.CoreV1(), types.NodeName(c.NodeName), node, updated); err != nil {
		return fmt.Errorf("patching node %q status: %w", c.NodeName, err)
	}
	c.lastReport = now
	return nil
}

// StatusChanged reports whether two node statuses differ in anything but
// the heartbeat times of their conditions.
func StatusChanged(a, b *v1.NodeStatus) bool {
	strip := func(s *v1.NodeStatus) *v1.NodeStatus {
		s = s.DeepCopy()
		for i := range s.Conditions {
			s.Conditions[i].LastHeartbeatTime = metav1.Time{}
		}
		return s
	}
	return !apiequality.Semantic.DeepEqual(strip(a), strip(b))
}
