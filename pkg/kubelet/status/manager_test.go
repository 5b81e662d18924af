package status

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/klog/v2"
)

var podsResource = schema.GroupVersionResource{Version: "v1", Resource: "pods"}

type rig struct {
	t      *testing.T
	ctx    context.Context
	client *fake.Clientset
	m      *Manager
}

// newRig returns a manager over a fake clientset holding pods; the pod
// getter reads the fake API, as an up-to-date informer cache would.
func newRig(t *testing.T, pods ...*v1.Pod) *rig {
	objs := make([]runtime.Object, len(pods))
	for i, p := range pods {
		objs[i] = p
	}
	r := &rig{t: t, ctx: klog.NewContext(context.Background(), klog.Logger{}), client: fake.NewClientset(objs...)}
	r.m = NewManager(r.client, func(ns, name string) *v1.Pod {
		obj, err := r.client.Tracker().Get(podsResource, ns, name)
		if err != nil {
			return nil
		}
		return obj.(*v1.Pod)
	})
	t.Cleanup(r.m.queue.ShutDown)
	return r
}

// process handles the next queued pod, as one status worker would.
func (r *rig) process() {
	r.t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.m.processNext(r.ctx)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		r.t.Fatal("nothing to process")
	}
}

func (r *rig) patches() []k8stesting.PatchAction {
	var out []k8stesting.PatchAction
	for _, a := range r.client.Actions() {
		if p, ok := a.(k8stesting.PatchAction); ok {
			out = append(out, p)
		}
	}
	return out
}

func (r *rig) deletes() []k8stesting.DeleteActionImpl {
	var out []k8stesting.DeleteActionImpl
	for _, a := range r.client.Actions() {
		if d, ok := a.(k8stesting.DeleteActionImpl); ok {
			out = append(out, d)
		}
	}
	return out
}

func (r *rig) apiPod(p *v1.Pod) *v1.Pod {
	r.t.Helper()
	got, err := r.client.CoreV1().Pods(p.Namespace).Get(r.ctx, p.Name, metav1.GetOptions{})
	if err != nil {
		r.t.Fatal(err)
	}
	return got
}

func testPod() *v1.Pod {
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", UID: "uid-1"},
		Status: v1.PodStatus{Phase: v1.PodPending, Conditions: []v1.PodCondition{
			{Type: v1.PodScheduled, Status: v1.ConditionTrue},
		}},
	}
}

func runningStatus(restarts int32) v1.PodStatus {
	return v1.PodStatus{
		Phase:  v1.PodRunning,
		HostIP: "192.0.2.10",
		Conditions: []v1.PodCondition{
			{Type: v1.PodScheduled, Status: v1.ConditionTrue},
			{Type: v1.PodReady, Status: v1.ConditionTrue},
		},
		ContainerStatuses: []v1.ContainerStatus{{Name: "app", RestartCount: restarts, Ready: true,
			State: v1.ContainerState{Running: &v1.ContainerStateRunning{}}}},
	}
}

func TestPatchesOnlyOnChange(t *testing.T) {
	pod := testPod()
	r := newRig(t, pod)
	r.m.SetPodStatus(pod, runningStatus(0))
	r.process()
	if n := len(r.patches()); n != 1 {
		t.Fatalf("%d patches, want 1", n)
	}
	p := r.patches()[0]
	if p.GetSubresource() != "status" || p.GetPatchType() != types.StrategicMergePatchType || p.GetName() != "web" {
		t.Errorf("patch %s of %s/%s", p.GetPatchType(), p.GetName(), p.GetSubresource())
	}
	if got := r.apiPod(pod); got.Status.Phase != v1.PodRunning || got.Status.ContainerStatuses[0].Name != "app" || len(got.Status.Conditions) != 2 {
		t.Errorf("API status = %+v", got.Status)
	}

	// The same status again is not even queued.
	r.m.SetPodStatus(pod, runningStatus(0))
	if n := r.m.queue.Len(); n != 0 {
		t.Errorf("queue holds %d after an unchanged status", n)
	}
	// Queued for another reason, an unchanged status is not written.
	r.m.queue.Add(pod.UID)
	r.process()
	if n := len(r.patches()); n != 1 {
		t.Errorf("%d patches after an unchanged status, want 1", n)
	}
	// A change is.
	r.m.SetPodStatus(pod, runningStatus(1))
	r.process()
	if n := len(r.patches()); n != 2 {
		t.Fatalf("%d patches, want 2", n)
	}
	if got := r.apiPod(pod); got.Status.ContainerStatuses[0].RestartCount != 1 {
		t.Errorf("restartCount = %d", got.Status.ContainerStatuses[0].RestartCount)
	}
	if s, ok := r.m.Status(pod.UID); !ok || s.ContainerStatuses[0].RestartCount != 1 {
		t.Errorf("Status = %+v, %v", s, ok)
	}
}

func TestCoalescesBurst(t *testing.T) {
	pod := testPod()
	r := newRig(t, pod)
	for i := range int32(5) {
		r.m.SetPodStatus(pod, runningStatus(i))
	}
	if n := r.m.queue.Len(); n != 1 {
		t.Fatalf("queue holds %d, want the pod once", n)
	}
	r.process()
	if n := len(r.patches()); n != 1 {
		t.Fatalf("%d patches for a burst, want 1", n)
	}
	if got := r.apiPod(pod); got.Status.ContainerStatuses[0].RestartCount != 4 {
		t.Errorf("written restartCount = %d, want the last (4)", got.Status.ContainerStatuses[0].RestartCount)
	}
}

func TestPatchCarriesUIDPrecondition(t *testing.T) {
	pod := testPod()
	r := newRig(t, pod)
	r.m.SetPodStatus(pod, runningStatus(0))
	r.process()
	var patch struct {
		Metadata struct {
			UID types.UID `json:"uid"`
		} `json:"metadata"`
		Status map[string]any `json:"status"`
	}
	if err := json.Unmarshal(r.patches()[0].GetPatch(), &patch); err != nil {
		t.Fatal(err)
	}
	if patch.Metadata.UID != pod.UID {
		t.Errorf("patch %s has no UID precondition", r.patches()[0].GetPatch())
	}
	if patch.Status["phase"] != "Running" {
		t.Errorf("patch status = %v", patch.Status)
	}
	// The patch is a diff: the unchanged PodScheduled is not in it.
	if conds, _ := patch.Status["conditions"].([]any); len(conds) != 1 || conds[0].(map[string]any)["type"] != "Ready" {
		t.Errorf("patch repeats unchanged conditions: %s", r.patches()[0].GetPatch())
	}

	// A patch that would be empty is not sent.
	p, err := statusPatch(pod.UID, runningStatus(0), runningStatus(0))
	if err != nil || string(p) != "{}" {
		t.Errorf("statusPatch of equal statuses = %s, %v", p, err)
	}
}

func TestRetriesOnError(t *testing.T) {
	pod := testPod()
	r := newRig(t, pod)
	var calls atomic.Int32
	r.client.PrependReactor("patch", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		if calls.Add(1) == 1 {
			return true, nil, apierrors.NewInternalError(errors.New("etcd leader changed"))
		}
		return false, nil, nil
	})
	ctx, cancel := context.WithCancel(r.ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = r.m.Run(ctx, 2)
	}()
	defer func() { cancel(); <-done }()
	r.m.SetPodStatus(pod, runningStatus(0))
	deadline := time.Now().Add(10 * time.Second)
	for r.apiPod(pod).Status.Phase != v1.PodRunning {
		if time.Now().After(deadline) {
			t.Fatalf("status not written after %d tries", calls.Load())
		}
		time.Sleep(time.Millisecond)
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("%d patch calls, want a failure and a retry", n)
	}
}

func TestNeverMovesTerminalPhaseBack(t *testing.T) {
	pod := testPod()
	pod.Status.Phase = v1.PodSucceeded
	r := newRig(t, pod)
	s := runningStatus(0)
	r.m.SetPodStatus(pod, s)
	r.process()
	if got := r.apiPod(pod); got.Status.Phase != v1.PodSucceeded {
		t.Errorf("phase = %s, want Succeeded kept", got.Status.Phase)
	}
	for _, p := range r.patches() {
		if strings.Contains(string(p.GetPatch()), `"phase"`) {
			t.Errorf("patch changes the phase: %s", p.GetPatch())
		}
	}
	// The rest of the status is written.
	if got := r.apiPod(pod); len(got.Status.ContainerStatuses) != 1 {
		t.Errorf("container statuses not written: %+v", got.Status)
	}
}

func TestDeleteWhenWritten(t *testing.T) {
	deleting := func() *v1.Pod {
		p := testPod()
		p.DeletionTimestamp = &metav1.Time{Time: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
		p.DeletionGracePeriodSeconds = new(int64(30))
		return p
	}
	t.Run("after the final status", func(t *testing.T) {
		pod := deleting()
		r := newRig(t, pod)
		final := runningStatus(0)
		final.Phase = v1.PodFailed
		final.ContainerStatuses[0].State = v1.ContainerState{Terminated: &v1.ContainerStateTerminated{ExitCode: 143, Reason: "Error"}}
		r.m.SetPodStatus(pod, final)
		r.m.DeletePodWhenWritten(pod)
		r.process()
		acts := r.client.Actions()
		if len(acts) != 2 || acts[0].GetVerb() != "patch" || acts[1].GetVerb() != "delete" {
			t.Fatalf("actions = %v, want patch then delete", acts)
		}
		opts := r.deletes()[0].DeleteOptions
		if opts.GracePeriodSeconds == nil || *opts.GracePeriodSeconds != 0 {
			t.Errorf("grace = %v, want 0", opts.GracePeriodSeconds)
		}
		if opts.Preconditions == nil || opts.Preconditions.UID == nil || *opts.Preconditions.UID != pod.UID {
			t.Errorf("preconditions = %+v, want UID %s", opts.Preconditions, pod.UID)
		}
		if _, ok := r.m.Status(pod.UID); ok {
			t.Error("a deleted pod is still kept")
		}
	})
	t.Run("nothing left to write", func(t *testing.T) {
		// A pod that only has to go: the status is the API's.
		pod := deleting()
		r := newRig(t, pod)
		r.m.DeletePodWhenWritten(pod)
		r.process()
		if len(r.patches()) != 0 || len(r.deletes()) != 1 {
			t.Errorf("actions = %v, want one delete", r.client.Actions())
		}
	})
	t.Run("not deleting", func(t *testing.T) {
		pod := testPod()
		r := newRig(t, pod)
		r.m.DeletePodWhenWritten(pod)
		r.process()
		if len(r.deletes()) != 0 {
			t.Error("deleted a pod the API does not delete")
		}
	})
	t.Run("already gone or replaced", func(t *testing.T) {
		pod := deleting()
		r := newRig(t, pod)
		r.client.PrependReactor("delete", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
			return true, nil, apierrors.NewConflict(podsResource.GroupResource(), pod.Name, errors.New("UID precondition failed"))
		})
		r.m.DeletePodWhenWritten(pod)
		r.process()
		if r.m.queue.Len() != 0 {
			t.Error("a conflict is retried")
		}
		if _, ok := r.m.Status(pod.UID); ok {
			t.Error("pod still kept")
		}
	})
	t.Run("delete fails", func(t *testing.T) {
		pod := deleting()
		r := newRig(t, pod)
		var calls atomic.Int32
		r.client.PrependReactor("delete", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
			if calls.Add(1) == 1 {
				return true, nil, apierrors.NewServiceUnavailable("try later")
			}
			return false, nil, nil
		})
		r.m.DeletePodWhenWritten(pod)
		r.process()
		r.process() // the rate-limited retry
		if n := calls.Load(); n != 2 {
			t.Errorf("%d delete calls, want 2", n)
		}
		if _, err := r.client.CoreV1().Pods(pod.Namespace).Get(r.ctx, pod.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("pod not deleted: %v", err)
		}
	})
}

func TestForget(t *testing.T) {
	pod := testPod()
	r := newRig(t, pod)
	r.m.SetPodStatus(pod, runningStatus(0))
	r.m.Forget(pod.UID)
	if _, ok := r.m.Status(pod.UID); ok {
		t.Error("Status after Forget")
	}
	r.process()
	if n := len(r.client.Actions()); n != 0 {
		t.Errorf("%d API calls for a forgotten pod", n)
	}
}

func TestPodGoneFromAPI(t *testing.T) {
	t.Run("not found on patch", func(t *testing.T) {
		pod := testPod()
		r := newRig(t, pod)
		if err := r.client.Tracker().Delete(podsResource, pod.Namespace, pod.Name); err != nil {
			t.Fatal(err)
		}
		// The cache still has it: the patch finds it gone.
		r.m.getPod = func(string, string) *v1.Pod { return pod }
		r.m.SetPodStatus(pod, runningStatus(0))
		r.process()
		if _, ok := r.m.Status(pod.UID); ok {
			t.Error("a pod the API does not have is kept")
		}
		if r.m.queue.Len() != 0 {
			t.Error("retried")
		}
	})
	t.Run("replaced by a pod of the same name", func(t *testing.T) {
		pod := testPod()
		other := testPod()
		other.UID = "uid-2"
		r := newRig(t, other)
		r.m.SetPodStatus(pod, runningStatus(0))
		r.process()
		if len(r.patches()) != 0 {
			t.Error("patched another pod of the same name")
		}
		// It is retried until the informer tells the worker.
		if _, ok := r.m.Status(pod.UID); !ok {
			t.Error("status dropped")
		}
	})
}

func TestRunStopsWithContext(t *testing.T) {
	r := newRig(t)
	ctx, cancel := context.WithCancel(r.ctx)
	done := make(chan error)
	go func() { done <- r.m.Run(ctx, 3) }()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
}
