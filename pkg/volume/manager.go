package volume

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
)

// TmpfsPolicy says whether memory-backed volumes may be tmpfs mounts.
type TmpfsPolicy string

const (
	// TmpfsAuto (the default) mounts a tmpfs when the agent runs as root
	// and mount(2) works, and falls back to 0700 directories for good
	// after the first failure.
	TmpfsAuto TmpfsPolicy = "Auto"
	// TmpfsNever always uses 0700 directories.
	TmpfsNever TmpfsPolicy = "Never"
)

// Options configure a Manager.
type Options struct {
	// Client reads ConfigMaps, Secrets and ClusterTrustBundles and
	// requests service account tokens. Required.
	Client kubernetes.Interface
	// Objects is the cache to read ConfigMaps and Secrets through; share
	// it with pkg/env. Nil: a new one on Client with CacheTTL.
	Objects *ObjectCache
	// CacheTTL is how long a ConfigMap or Secret read is reused when
	// Objects is nil; zero means DefaultCacheTTL (10 s).
	CacheTTL time.Duration
	// Allocatable returns the node's allocatable resources: the limits
	// of containers without one for resourceFieldRef, and the size of
	// memory-backed volumes. Nil: none.
	Allocatable func() v1.ResourceList
	// Clock is the time source; nil means the real clock.
	Clock clock.Clock
	// Tmpfs says whether memory-backed volumes may be tmpfs; empty means
	// TmpfsAuto.
	Tmpfs TmpfsPolicy
	// Logger is for what happens outside a call with a context (SubPath);
	// nil means klog.Background(). SetUp and TearDown log to the logger of
	// their context.
	Logger *klog.Logger
}

// Manager materialises pod volumes under each pod's directory. It
// implements the core's VolumeManager and is safe for concurrent use.
type Manager struct {
	objects     *ObjectCache
	tokens      *tokenManager
	allocatable func() v1.ResourceList
	clock       clock.Clock
	tmpfs       TmpfsPolicy
	tmpfsFailed atomic.Bool
	logger      klog.Logger

	mu   sync.Mutex
	pods map[types.UID]*podState
}

// podState is what the Manager knows of a pod between calls.
type podState struct {
	// mu serialises SetUp, SubPath and TearDown of one pod.
	mu     sync.Mutex
	podDir string
	// setUp is true once SetUp succeeded: later ones may use cached
	// objects, the first reads them fresh.
	setUp bool
}

// NewManager returns a Manager, or an error if opts are invalid.
func NewManager(opts Options) (*Manager, error) {
	if opts.Client == nil {
		return nil, errors.New("volume: Options.Client is required")
	}
	switch opts.Tmpfs {
	case "":
		opts.Tmpfs = TmpfsAuto
	case TmpfsAuto, TmpfsNever:
	default:
		return nil, fmt.Errorf("volume: invalid Options.Tmpfs %q (want %q or %q)", opts.Tmpfs, TmpfsAuto, TmpfsNever)
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.Objects == nil {
		opts.Objects = NewObjectCache(opts.Client, opts.Clock, opts.CacheTTL)
	}
	logger := klog.Background()
	if opts.Logger != nil {
		logger = *opts.Logger
	}
	return &Manager{
		logger:      logger,
		objects:     opts.Objects,
		tokens:      newTokenManager(opts.Client, opts.Clock),
		allocatable: opts.Allocatable,
		clock:       opts.Clock,
		tmpfs:       opts.Tmpfs,
		pods:        map[types.UID]*podState{},
	}, nil
}

// Objects returns the cache the Manager reads through, to share with
// pkg/env.
func (m *Manager) Objects() *ObjectCache { return m.objects }

func (m *Manager) state(uid types.UID) *podState {
	m.mu.Lock()
	defer m.mu.Unlock()
	st, ok := m.pods[uid]
	if !ok {
		st = &podState{}
		m.pods[uid] = st
	}
	return st
}

// SetUp makes every volume of pod ready under podDir/volumes/<name>
// (hostPath volumes are the host path itself) and returns the host path of
// each by volume name. It is idempotent and meant to be called again
// while the pod runs: configMap, secret, downwardAPI and projected volumes
// are then brought up to date in place (atomically, see atomicWriter) and
// service account tokens refreshed.
//
// Every volume is tried; the map holds those that are ready and the error
// joins one error per failed volume, "volume %q: …". A ConfigMap, Secret
// or key that is missing wraps ErrSourceMissing; an unsupported volume type
// wraps ErrUnsupported.
func (m *Manager) SetUp(ctx context.Context, pod *v1.Pod, podDir string) (map[string]string, error) {
	if !filepath.IsAbs(podDir) {
		return nil, fmt.Errorf("pod directory %q must be absolute", podDir)
	}
	podDir = filepath.Clean(podDir)
	logger := klog.FromContext(ctx).WithValues("pod", klog.KObj(pod))
	st := m.state(pod.UID)
	st.mu.Lock()
	defer st.mu.Unlock()
	st.podDir = podDir

	if len(pod.Spec.Volumes) > 0 {
		if err := os.MkdirAll(podDir, 0o750); err != nil {
			return nil, err
		}
		if _, err := ensureDir(filepath.Join(podDir, volumesDir), 0o750); err != nil {
			return nil, err
		}
	}
	paths := make(map[string]string, len(pod.Spec.Volumes))
	var errs []error
	for i := range pod.Spec.Volumes {
		vol := &pod.Spec.Volumes[i]
		path, err := m.setUpVolume(ctx, logger, pod, vol, podDir, !st.setUp)
		if err != nil {
			errs = append(errs, fmt.Errorf("volume %q: %w", vol.Name, err))
			continue
		}
		paths[vol.Name] = path
	}
	if len(errs) == 0 {
		st.setUp = true
	}
	return paths, errors.Join(errs...)
}

func (m *Manager) setUpVolume(ctx context.Context, logger klog.Logger, pod *v1.Pod, vol *v1.Volume, podDir string, fresh bool) (string, error) {
	if vol.HostPath != nil {
		return setUpHostPath(vol.HostPath)
	}
	if err := validateVolumeName(vol.Name); err != nil {
		return "", err
	}
	dir := filepath.Join(podDir, volumesDir, vol.Name)
	var payload map[string]fileProjection
	var err error
	switch {
	case vol.EmptyDir != nil:
		return dir, m.setUpEmptyDir(logger, vol.EmptyDir, dir)
	case vol.ConfigMap != nil:
		payload, err = m.configMapVolume(ctx, pod, vol.ConfigMap, fresh)
	case vol.Secret != nil:
		payload, err = m.secretVolume(ctx, pod, vol.Secret, fresh)
	case vol.DownwardAPI != nil:
		payload, err = downwardAPIPayload(vol.DownwardAPI.Items, pod, modeOrDefault(vol.DownwardAPI.DefaultMode), m.nodeAllocatable())
	case vol.Projected != nil:
		payload, err = m.projectedPayload(ctx, pod, vol.Projected, fresh)
	default:
		return "", fmt.Errorf("%w: %s", ErrUnsupported, volumeKind(vol))
	}
	if err != nil {
		return "", err
	}
	if memoryBacked(vol) {
		err = m.ensureMemoryDir(logger, dir, m.memorySize(nil))
	} else {
		_, err = ensureDir(dir, diskVolumeMode)
	}
	if err != nil {
		return "", err
	}
	w := &atomicWriter{targetDir: dir, now: m.clock.Now, logger: logger.WithValues("volume", vol.Name)}
	changed, err := w.write(payload)
	if err != nil {
		return "", err
	}
	if changed {
		// Only relative symlinks inside the volume, as the writer makes
		// them; a module given the volume cannot follow one out of it.
		if err := checkSymlinks(dir); err != nil {
			return "", err
		}
		logger.V(3).Info("Volume content updated", "volume", vol.Name)
	}
	return dir, nil
}

func (m *Manager) nodeAllocatable() v1.ResourceList {
	if m.allocatable == nil {
		return nil
	}
	return m.allocatable()
}

func (m *Manager) configMapVolume(ctx context.Context, pod *v1.Pod, src *v1.ConfigMapVolumeSource, fresh bool) (map[string]fileProjection, error) {
	optional := src.Optional != nil && *src.Optional
	cm, err := m.objects.configMap(ctx, pod.Namespace, src.Name, fresh)
	if err != nil {
		if !(optional && isMissing(err)) {
			return nil, err
		}
		cm = &v1.ConfigMap{}
		cm.Namespace, cm.Name = pod.Namespace, src.Name
	}
	return configMapPayload(src.Items, cm, modeOrDefault(src.DefaultMode), optional)
}

func (m *Manager) secretVolume(ctx context.Context, pod *v1.Pod, src *v1.SecretVolumeSource, fresh bool) (map[string]fileProjection, error) {
	optional := src.Optional != nil && *src.Optional
	s, err := m.objects.secret(ctx, pod.Namespace, src.SecretName, fresh)
	if err != nil {
		if !(optional && isMissing(err)) {
			return nil, err
		}
		s = &v1.Secret{}
		s.Namespace, s.Name = pod.Namespace, src.SecretName
	}
	return secretPayload(src.Items, s, modeOrDefault(src.DefaultMode), optional)
}

// memoryBacked reports whether the kubelet backs a volume with memory:
// secret, downwardAPI and projected volumes (which may hold tokens), and
// emptyDir with medium Memory.
func memoryBacked(vol *v1.Volume) bool {
	return vol.Secret != nil || vol.DownwardAPI != nil || vol.Projected != nil ||
		(vol.EmptyDir != nil && vol.EmptyDir.Medium == v1.StorageMediumMemory)
}

// ForcedReadOnly reports whether the kubelet mounts a volume read-only
// whatever the volumeMount says: configMap, secret, downwardAPI and
// projected volumes.
func ForcedReadOnly(vol *v1.Volume) bool {
	return vol.ConfigMap != nil || vol.Secret != nil || vol.DownwardAPI != nil || vol.Projected != nil
}

// volumeKind names the type of an unsupported volume for its error.
func volumeKind(vol *v1.Volume) string {
	switch {
	case vol.PersistentVolumeClaim != nil:
		return "persistentVolumeClaim"
	case vol.CSI != nil:
		return "csi"
	case vol.Ephemeral != nil:
		return "ephemeral"
	case vol.Image != nil:
		return "image"
	case vol.NFS != nil:
		return "nfs"
	case vol.GitRepo != nil:
		return "gitRepo"
	case vol.ISCSI != nil:
		return "iscsi"
	case vol.FC != nil:
		return "fc"
	}
	return "this volume type"
}

// NextTokenRefresh returns when the earliest service account token of pod
// uid reaches 80 % of its lifetime (or 24 h), so that the core can call
// SetUp then (the SetUp at or after that time renews it); false if the pod
// has no token. Calling SetUp periodically (every 10–60 s) is enough too:
// a token then is renewed within one period after 80 % of its lifetime.
func (m *Manager) NextTokenRefresh(uid types.UID) (time.Time, bool) {
	return m.tokens.nextRefresh(uid)
}

// TearDown removes what SetUp made for a pod: it unmounts its tmpfs
// volumes, removes podDir/volumes and podDir/volume-subpaths (never
// following symlinks, never touching hostPath volumes) and forgets its
// tokens. The core calls it once the pod's containers have stopped.
func (m *Manager) TearDown(ctx context.Context, uid types.UID, podDir string) error {
	if !filepath.IsAbs(podDir) {
		return fmt.Errorf("pod directory %q must be absolute", podDir)
	}
	podDir = filepath.Clean(podDir)
	st := m.state(uid)
	st.mu.Lock()
	defer st.mu.Unlock()
	defer func() {
		m.mu.Lock()
		delete(m.pods, uid)
		m.mu.Unlock()
	}()
	m.tokens.forget(uid)

	// tmpfs mounts are podDir/volumes/<name> and
	// podDir/volume-subpaths/<name>.
	roots := []string{filepath.Join(podDir, volumesDir), filepath.Join(podDir, subPathsDir)}
	var errs []error
	for _, root := range roots {
		entries, err := os.ReadDir(root)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
			continue
		}
		for _, e := range entries {
			if !e.IsDir() {
				continue
			}
			dir := filepath.Join(root, e.Name())
			mounted, err := isMountPoint(dir)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if mounted {
				if err := unmount(dir); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	if len(errs) > 0 {
		// Never remove what might still be a mount.
		return fmt.Errorf("tearing down volumes of pod %s: %w", uid, errors.Join(errs...))
	}
	for _, dir := range roots {
		if err := os.RemoveAll(dir); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("tearing down volumes of pod %s: %w", uid, err)
	}
	klog.FromContext(ctx).V(3).Info("Volumes torn down", "podUID", uid)
	return nil
}
