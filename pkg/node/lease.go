package node

import (
	"context"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/component-helpers/apimachinery/lease"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
)

// NewLeaseController returns the controller of the node's Lease in
// kube-node-lease: duration leaseSeconds, renewed every quarter of it, owned
// by the Node (so it goes when the Node goes). onRepeatedFailure is called
// when renewals keep failing, to drop stale connections.
func NewLeaseController(ctx context.Context, clk clock.Clock, client kubernetes.Interface, nodeName string, leaseSeconds int32, onRepeatedFailure func()) lease.Controller {
	renew := time.Duration(leaseSeconds) * time.Second / 4
	return lease.NewController(clk, client, nodeName, leaseSeconds, onRepeatedFailure, renew,
		nodeName, v1.NamespaceNodeLease, setNodeOwner(ctx, client, nodeName))
}

// setNodeOwner makes the Node own the Lease, as the kubelet's
// util/nodelease.go SetNodeOwnerFunc does.
func setNodeOwner(ctx context.Context, client kubernetes.Interface, nodeName string) lease.ProcessLeaseFunc {
	return func(l *coordinationv1.Lease) error {
		if len(l.OwnerReferences) > 0 {
			return nil
		}
		node, err := client.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
		if err != nil {
			klog.FromContext(ctx).Error(err, "Cannot set the Node as owner of its Lease yet", "node", nodeName)
			return nil
		}
		l.OwnerReferences = []metav1.OwnerReference{{
			APIVersion: v1.SchemeGroupVersion.String(),
			Kind:       "Node",
			Name:       nodeName,
			UID:        node.UID,
		}}
		return nil
	}
}
