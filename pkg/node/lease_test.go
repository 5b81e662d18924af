package node

import (
	"context"
	"reflect"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/klog/v2/ktesting"
	testingclock "k8s.io/utils/clock/testing"
)

func TestSetNodeOwner(t *testing.T) {
	node := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: testNode, UID: "node-uid-1"}}
	otherOwner := metav1.OwnerReference{APIVersion: "v1", Kind: "Node", Name: testNode, UID: "older-uid"}
	tests := []struct {
		name       string
		objects    []runtime.Object
		getErr     error
		owners     []metav1.OwnerReference
		wantOwners []metav1.OwnerReference
		wantGets   int
	}{
		{
			name:    "the Node becomes the owner, with its UID",
			objects: []runtime.Object{node},
			wantOwners: []metav1.OwnerReference{{
				APIVersion: "v1", Kind: "Node", Name: testNode, UID: "node-uid-1",
			}},
			wantGets: 1,
		},
		{
			name:       "existing owners are left alone",
			objects:    []runtime.Object{node},
			owners:     []metav1.OwnerReference{otherOwner},
			wantOwners: []metav1.OwnerReference{otherOwner},
		},
		{
			name:     "the Node cannot be read: no owner yet, no error",
			objects:  []runtime.Object{node},
			getErr:   errServer,
			wantGets: 1,
		},
		{
			name:     "the Node does not exist yet: no owner yet, no error",
			wantGets: 1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, ctx := ktesting.NewTestContext(t)
			client := fake.NewClientset(tc.objects...)
			if tc.getErr != nil {
				var calls int
				client.PrependReactor("get", "nodes", failN(-1, tc.getErr, &calls))
			}
			lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: testNode, OwnerReferences: tc.owners}}
			if err := setNodeOwner(ctx, client, testNode)(lease); err != nil {
				t.Fatalf("setNodeOwner() = %v, want nil", err)
			}
			if !reflect.DeepEqual(lease.OwnerReferences, tc.wantOwners) {
				t.Errorf("owners %+v, want %+v", lease.OwnerReferences, tc.wantOwners)
			}
			if got := countActions(client, "get", ""); got != tc.wantGets {
				t.Errorf("%d node reads, want %d", got, tc.wantGets)
			}
		})
	}
}

func TestNewLeaseController(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	client := fake.NewClientset(&v1.Node{ObjectMeta: metav1.ObjectMeta{Name: testNode, UID: "node-uid-1"}})
	created := make(chan struct{}, 1)
	client.PrependReactor("create", "leases", func(k8stesting.Action) (bool, runtime.Object, error) {
		select {
		case created <- struct{}{}:
		default:
		}
		return false, nil, nil
	})
	clk := testingclock.NewFakeClock(t0)
	c := NewLeaseController(ctx, clk, client, testNode, 40, func() {})
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	select {
	case <-created:
	case <-time.After(10 * time.Second):
		t.Fatal("no Lease created")
	}
	cancel()
	<-done

	obj, err := client.Tracker().Get(schema.GroupVersionResource{Group: "coordination.k8s.io", Version: "v1", Resource: "leases"}, v1.NamespaceNodeLease, testNode)
	if err != nil {
		t.Fatal(err)
	}
	l := obj.(*coordinationv1.Lease)
	if l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity != testNode {
		t.Errorf("holder %v, want %s", l.Spec.HolderIdentity, testNode)
	}
	if l.Spec.LeaseDurationSeconds == nil || *l.Spec.LeaseDurationSeconds != 40 {
		t.Errorf("duration %v, want 40", l.Spec.LeaseDurationSeconds)
	}
	if l.Spec.RenewTime == nil || !l.Spec.RenewTime.Time.Equal(t0) {
		t.Errorf("renew time %v, want the injected clock's %v", l.Spec.RenewTime, t0)
	}
	want := []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: testNode, UID: "node-uid-1"}}
	if !reflect.DeepEqual(l.OwnerReferences, want) {
		t.Errorf("owners %+v, want %+v", l.OwnerReferences, want)
	}
}
