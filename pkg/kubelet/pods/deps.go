package pods

import (
	"context"
	"net"
	"path/filepath"
	"sync"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/flowcontrol"
	"k8s.io/utils/clock"

	"github.com/krustlet/krustlet-go/pkg/kubelet/logs"
	"github.com/krustlet/krustlet-go/pkg/kubelet/runtimeclass"
	"github.com/krustlet/krustlet-go/pkg/kubelet/status"
	"github.com/krustlet/krustlet-go/pkg/provider"
)

// deps is what a worker uses beyond its own pod: the parts shared by every
// worker of the manager. Every field is safe for concurrent use.
type deps struct {
	// ctx ends when the manager stops; runs are waited for under it.
	ctx context.Context

	clock       clock.WithTicker
	recorder    record.EventRecorder
	status      *status.Manager
	volumes     VolumeManager
	containers  ConfigBuilder
	credentials provider.CredentialSource // optional
	router      Router
	metrics     *metrics
	nodeIPs     []net.IP
	layout      layout
	logOptions  logs.Options

	restartBackoff *flowcontrol.Backoff
	pullBackoff    *flowcontrol.Backoff
	// sandboxBackoff spaces retries of a pod whose sandbox (or route)
	// failed.
	sandboxBackoff *flowcontrol.Backoff

	images *imageSet
	runs   *runSet
}

// Router picks the provider that runs a pod (runtimeclass.Router). It must
// be safe for concurrent use.
type Router interface {
	Route(pod *v1.Pod) (runtimeclass.Route, error)
}

// layout is where a pod's files live under the node's data dir.
type layout struct{ dataDir string }

func (l layout) podsRoot() string            { return filepath.Join(l.dataDir, "pods") }
func (l layout) podDir(uid types.UID) string { return filepath.Join(l.podsRoot(), string(uid)) }
func (l layout) logRoot() string             { return filepath.Join(l.dataDir, "logs", "pods") }

// imageSet remembers the images the node pulled or found, so that a worker
// announces "Pulling" only for an image it has not used yet.
type imageSet struct {
	mu   sync.Mutex
	seen map[string]bool
}

func (s *imageSet) has(image string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seen[image]
}

func (s *imageSet) add(image string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seen == nil {
		s.seen = map[string]bool{}
	}
	s.seen[image] = true
}

// runSet is the registry of runs in progress, read by the node API.
type runSet struct {
	mu      sync.Mutex
	running map[string]RunningContainer
}

func (s *runSet) add(rc RunningContainer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running == nil {
		s.running = map[string]RunningContainer{}
	}
	s.running[rc.ID] = rc
}

func (s *runSet) remove(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.running, id)
}

func (s *runSet) has(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.running[id]
	return ok
}

func (s *runSet) list() []RunningContainer {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]RunningContainer, 0, len(s.running))
	for _, rc := range s.running {
		out = append(out, rc)
	}
	return out
}
