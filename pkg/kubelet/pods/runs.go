package pods

import (
	"errors"
	"fmt"
	"slices"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/krustlet/krustlet-go/pkg/kubelet/logs"
	"github.com/krustlet/krustlet-go/pkg/provider"
)

// RunningContainer is one container run in progress, for the node API's
// statistics.
type RunningContainer struct {
	Pod       *v1.Pod
	Container string
	// ID is the provider's ContainerConfig.ID of the run.
	ID        string
	StartedAt time.Time
	// Provider runs it.
	Provider provider.Provider
}

// ErrNotFound marks a pod or container the node does not have.
var ErrNotFound = errors.New("not found")

// ErrBadRequest marks a request that cannot be served as asked.
var ErrBadRequest = errors.New("bad request")

// RunningContainers lists the container runs in progress.
func (m *Manager) RunningContainers() []RunningContainer { return m.d.runs.list() }

// LogFile returns the log file of a container's latest run (or the run
// before it, with previous) and a function that reports whether that run
// still writes to it.
func (m *Manager) LogFile(namespace, name, container string, previous bool) (string, func() bool, error) {
	pod := m.Pod(namespace, name)
	if pod == nil {
		return "", nil, fmt.Errorf("%w: pod %q in namespace %q is not on this node", ErrNotFound, name, namespace)
	}
	if !hasContainer(pod, container) {
		return "", nil, fmt.Errorf("%w: container %q is not in pod %q", ErrNotFound, container, name)
	}
	dir := logs.ContainerDir(m.d.layout.logRoot(), namespace, name, string(pod.UID), container)
	path, run, err := logs.RunFile(dir, previous)
	switch {
	case errors.Is(err, logs.ErrNoPreviousRun):
		return "", nil, fmt.Errorf("%w: previous terminated container %q in pod %q not found", ErrBadRequest, container, name)
	case err != nil:
		return "", nil, fmt.Errorf("%w: container %q in pod %q is waiting to start: no log yet", ErrBadRequest, container, name)
	}
	id := runID(pod.UID, container, run)
	return path, func() bool { return m.d.runs.has(id) }, nil
}

func hasContainer(pod *v1.Pod, name string) bool {
	for _, list := range [][]v1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		if slices.ContainsFunc(list, func(c v1.Container) bool { return c.Name == name }) {
			return true
		}
	}
	return false
}

// Pods returns the pods bound to this node, as the API has them.
func (m *Manager) Pods() []*v1.Pod {
	lister := m.podLister()
	if lister == nil {
		return nil
	}
	pods, _ := lister.List(everything)
	return pods
}

// ImagesInUse lists the images of every pod the node holds, whatever its
// phase, by reference and by the image ID its runs used, for image garbage
// collection. It is safe for concurrent use.
func (m *Manager) ImagesInUse() []string {
	m.mu.Lock()
	workers := make([]*worker, 0, len(m.workers))
	for _, w := range m.workers {
		workers = append(workers, w)
	}
	m.mu.Unlock()
	var out []string
	for _, w := range workers {
		pod, _ := w.snapshot()
		for _, list := range [][]v1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
			for _, c := range list {
				out = append(out, c.Image)
			}
		}
		for _, e := range pod.Spec.EphemeralContainers {
			out = append(out, e.Image)
		}
		for _, list := range [][]v1.ContainerStatus{pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses} {
			for _, s := range list {
				if s.ImageID != "" {
					out = append(out, s.ImageID)
				}
			}
		}
	}
	return out
}
