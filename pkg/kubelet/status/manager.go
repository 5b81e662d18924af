package status

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	v1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
)

// PodGetter returns the API's current view of a pod (from an informer
// cache), or nil when it has none.
type PodGetter func(namespace, name string) *v1.Pod

// Manager keeps and writes pod statuses. Its methods are safe for
// concurrent use.
type Manager struct {
	client kubernetes.Interface
	getPod PodGetter

	mu   sync.Mutex
	pods map[types.UID]*entry

	queue workqueue.TypedRateLimitingInterface[types.UID]
}

type entry struct {
	namespace, name string
	status          v1.PodStatus
	// written is the status last written, nil until one was.
	written *v1.PodStatus
	// deleteWhenWritten asks for the final delete once status is written.
	deleteWhenWritten bool
}

// NewManager returns a manager that writes with client and reads the current
// pods through getPod.
func NewManager(client kubernetes.Interface, getPod PodGetter) *Manager {
	return &Manager{
		client: client,
		getPod: getPod,
		pods:   map[types.UID]*entry{},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[types.UID](),
			workqueue.TypedRateLimitingQueueConfig[types.UID]{Name: "pod-status"}),
	}
}

// SetPodStatus records the status pod should have and schedules a write.
func (m *Manager) SetPodStatus(pod *v1.Pod, status v1.PodStatus) {
	m.mu.Lock()
	e, ok := m.pods[pod.UID]
	if !ok {
		e = &entry{namespace: pod.Namespace, name: pod.Name}
		m.pods[pod.UID] = e
	}
	if ok && apiequality.Semantic.DeepEqual(e.status, status) && !e.deleteWhenWritten {
		m.mu.Unlock()
		return
	}
	e.status = *status.DeepCopy()
	m.mu.Unlock()
	m.queue.Add(pod.UID)
}

// Status returns the status last set for a pod.
func (m *Manager) Status(uid types.UID) (v1.PodStatus, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.pods[uid]
	if !ok {
		return v1.PodStatus{}, false
	}
	return *e.status.DeepCopy(), true
}

// DeletePodWhenWritten asks for the pod object to be deleted (grace 0, UID
// precondition) once its current status is written: its containers have
// stopped and nothing of it runs any more.
func (m *Manager) DeletePodWhenWritten(pod *v1.Pod) {
	m.mu.Lock()
	if e, ok := m.pods[pod.UID]; ok {
		e.deleteWhenWritten = true
	} else {
		m.pods[pod.UID] = &entry{namespace: pod.Namespace, name: pod.Name, status: *pod.Status.DeepCopy(), written: pod.Status.DeepCopy(), deleteWhenWritten: true}
	}
	m.mu.Unlock()
	m.queue.Add(pod.UID)
}

// Forget drops what is kept for a pod that is gone.
func (m *Manager) Forget(uid types.UID) {
	m.mu.Lock()
	delete(m.pods, uid)
	m.mu.Unlock()
}

// Run writes statuses with workers goroutines until ctx ends.
func (m *Manager) Run(ctx context.Context, workers int) error {
	logger := klog.FromContext(ctx).WithName("status-manager")
	ctx = klog.NewContext(ctx, logger)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for m.processNext(ctx) {
			}
		})
	}
	<-ctx.Done()
	m.queue.ShutDown()
	wg.Wait()
	return nil
}

func (m *Manager) processNext(ctx context.Context) bool {
	uid, quit := m.queue.Get()
	if quit {
		return false
	}
	defer m.queue.Done(uid)
	if err := m.sync(ctx, uid); err != nil {
		klog.FromContext(ctx).V(2).Info("Writing pod status failed; retrying", "podUID", uid, "err", err)
		m.queue.AddRateLimited(uid)
		return true
	}
	m.queue.Forget(uid)
	return true
}

func (m *Manager) sync(ctx context.Context, uid types.UID) error {
	m.mu.Lock()
	e, ok := m.pods[uid]
	if !ok {
		m.mu.Unlock()
		return nil
	}
	namespace, name := e.namespace, e.name
	status := *e.status.DeepCopy()
	deleteWhenWritten := e.deleteWhenWritten
	var written *v1.PodStatus
	if e.written != nil {
		written = e.written.DeepCopy()
	}
	m.mu.Unlock()
	logger := klog.FromContext(ctx).WithValues("pod", klog.KRef(namespace, name), "podUID", uid)

	current := m.getPod(namespace, name)
	if current == nil || current.UID != uid {
		if !deleteWhenWritten {
			// Not in the cache yet, or already replaced; the informer
			// will tell the workers.
			return fmt.Errorf("pod %s/%s (%s) is not in the cache", namespace, name, uid)
		}
		m.Forget(uid)
		return nil
	}
	if isTerminal(current.Status.Phase) && !isTerminal(status.Phase) {
		logger.Info("Not moving a terminal pod back", "phase", current.Status.Phase, "wanted", status.Phase)
		status.Phase = current.Status.Phase
	}
	// Write when the status differs from what this manager wrote last (the
	// API's own copy may differ in ways it normalises, such as time
	// precision, which must not cause endless writes).
	if written == nil || !apiequality.Semantic.DeepEqual(*written, status) {
		patch, err := statusPatch(uid, current.Status, status)
		if err != nil {
			return err
		}
		if string(patch) != "{}" {
			_, err = m.client.CoreV1().Pods(namespace).Patch(ctx, name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "status")
			if apierrors.IsNotFound(err) {
				m.Forget(uid)
				return nil
			}
			if err != nil {
				return fmt.Errorf("patching status: %w", err)
			}
			logger.V(3).Info("Wrote pod status", "phase", status.Phase, "patch", string(patch))
		}
	}
	m.mu.Lock()
	if e, ok := m.pods[uid]; ok {
		e.written = status.DeepCopy()
	}
	m.mu.Unlock()

	if deleteWhenWritten && current.DeletionTimestamp != nil {
		grace := int64(0)
		err := m.client.CoreV1().Pods(namespace).Delete(ctx, name, metav1.DeleteOptions{
			GracePeriodSeconds: &grace,
			Preconditions:      metav1.NewUIDPreconditions(string(uid)),
		})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return fmt.Errorf("deleting pod: %w", err)
		}
		logger.V(2).Info("Pod deleted")
		m.Forget(uid)
	}
	return nil
}

// statusPatch is a strategic-merge patch from old to new status, with the
// UID as a precondition, as the kubelet's PatchPodStatus makes.
func statusPatch(uid types.UID, old, new v1.PodStatus) ([]byte, error) {
	oldJSON, err := json.Marshal(v1.Pod{ObjectMeta: metav1.ObjectMeta{UID: uid}, Status: old})
	if err != nil {
		return nil, err
	}
	newJSON, err := json.Marshal(v1.Pod{ObjectMeta: metav1.ObjectMeta{UID: uid}, Status: new})
	if err != nil {
		return nil, err
	}
	patch, err := strategicpatch.CreateTwoWayMergePatch(oldJSON, newJSON, v1.Pod{})
	if err != nil {
		return nil, fmt.Errorf("making status patch: %w", err)
	}
	if string(patch) == "{}" {
		return patch, nil
	}
	// Add the UID so that the API server refuses a patch for another pod
	// of the same name.
	var m map[string]any
	if err := json.Unmarshal(patch, &m); err != nil {
		return nil, err
	}
	m["metadata"] = map[string]any{"uid": uid}
	return json.Marshal(m)
}

func isTerminal(p v1.PodPhase) bool { return p == v1.PodSucceeded || p == v1.PodFailed }
