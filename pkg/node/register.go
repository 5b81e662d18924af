package node

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
)

// Registrar creates the Node, or reconciles the one that exists.
type Registrar struct {
	Client   kubernetes.Interface
	NodeName string
	// Labels are the labels this node owns: the defaults, the provider's
	// and --node-labels. They are set at creation and restored on an
	// existing Node.
	Labels map[string]string
	// Taints are set at creation only: the API server's NodeRestriction
	// refuses a node changing its own taints later, as for the kubelet.
	Taints []v1.Taint
	// Setters fill the status of a new Node.
	Setters []Setter
}

// Register retries with back-off (up to 7 s between tries, as the kubelet)
// until the Node exists with this node's labels, or ctx ends.
func (r *Registrar) Register(ctx context.Context) error {
	logger := klog.FromContext(ctx)
	backoff := wait.Backoff{Duration: 100 * time.Millisecond, Factor: 2, Cap: 7 * time.Second, Steps: 1 << 30}
	return wait.ExponentialBackoffWithContext(ctx, backoff, func(ctx context.Context) (bool, error) {
		if err := r.tryRegister(ctx); err != nil {
			logger.Error(err, "Registering the node failed; retrying", "node", r.NodeName)
			return false, nil
		}
		return true, nil
	})
}

func (r *Registrar) tryRegister(ctx context.Context) error {
	node := &v1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: r.NodeName, Labels: maps.Clone(r.Labels)},
		Spec:       v1.NodeSpec{Taints: r.Taints},
	}
	for _, set := range r.Setters {
		if err := set(ctx, node); err != nil {
			return err
		}
	}
	_, err := r.Client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if err == nil {
		klog.FromContext(ctx).Info("Registered node", "node", r.NodeName)
		return nil
	}
	if !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating node %q: %w", r.NodeName, err)
	}
	existing, err := r.Client.CoreV1().Nodes().Get(ctx, r.NodeName, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("getting existing node %q: %w", r.NodeName, err)
	}
	changed := map[string]string{}
	for k, v := range r.Labels {
		if cur, ok := existing.Labels[k]; !ok || cur != v {
			changed[k] = v
		}
	}
	if len(changed) == 0 {
		klog.FromContext(ctx).Info("Node already registered", "node", r.NodeName)
		return nil
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"labels": changed}})
	if err != nil {
		return err
	}
	if _, err := r.Client.CoreV1().Nodes().Patch(ctx, r.NodeName, types.StrategicMergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("reconciling labels of node %q: %w", r.NodeName, err)
	}
	klog.FromContext(ctx).Info("Node already registered; labels reconciled", "node", r.NodeName, "labels", changed)
	return nil
}
