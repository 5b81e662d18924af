package volume

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/klog/v2"
)

// Modes of the directories made for volumes. Only the agent's user reads
// them (modules run in-process); memory-backed volumes, which hold
// secrets and tokens, are never readable by anyone else.
const (
	diskVolumeMode   os.FileMode = 0o750
	memoryVolumeMode os.FileMode = 0o700
)

// setUpEmptyDir makes an emptyDir volume: a directory under the pod's
// directory, or a tmpfs for medium Memory when the node allows it.
func (m *Manager) setUpEmptyDir(logger klog.Logger, src *v1.EmptyDirVolumeSource, dir string) error {
	switch src.Medium {
	case v1.StorageMediumDefault:
		_, err := ensureDir(dir, diskVolumeMode)
		return err
	case v1.StorageMediumMemory:
		size := m.memorySize(src.SizeLimit)
		return m.ensureMemoryDir(logger, dir, size)
	default:
		return fmt.Errorf("%w: emptyDir medium %q", ErrUnsupported, src.Medium)
	}
}

// memorySize is the size of a memory-backed volume's tmpfs: its sizeLimit
// when set and smaller than the node's allocatable memory, else the
// allocatable memory, else 0 (the kernel's default). This is the kubelet's
// calculateEmptyDirMemorySize without the pod's memory limit, which Wasm
// pods do not have as a cgroup.
func (m *Manager) memorySize(sizeLimit *resource.Quantity) int64 {
	var alloc int64
	if m.allocatable != nil {
		if q, ok := m.allocatable()[v1.ResourceMemory]; ok {
			alloc = q.Value()
		}
	}
	if sizeLimit != nil && sizeLimit.Sign() > 0 && (alloc == 0 || sizeLimit.Value() < alloc) {
		return sizeLimit.Value()
	}
	return alloc
}

// ensureDir makes dir with mode perm if it does not exist and reports
// whether it did. An existing non-directory (or symlink) is an error.
func ensureDir(dir string, perm os.FileMode) (bool, error) {
	info, err := os.Lstat(dir)
	if err == nil {
		if !info.IsDir() {
			return false, fmt.Errorf("%s exists and is not a directory", dir)
		}
		return false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	if err := os.Mkdir(dir, perm); err != nil {
		return false, err
	}
	return true, os.Chmod(dir, perm)
}

// ensureMemoryDir makes dir a tmpfs when mount(2) works (the agent runs as
// root with CAP_SYS_ADMIN and Options.Tmpfs allows it). Otherwise the
// volume is a plain directory of mode 0700 on the data dir's disk: its
// content is then not kept out of swap or off disk, and an emptyDir's
// sizeLimit is only enforced by SizeLimitViolations.
func (m *Manager) ensureMemoryDir(logger klog.Logger, dir string, size int64) error {
	created, err := ensureDir(dir, memoryVolumeMode)
	if err != nil {
		return err
	}
	if !m.tmpfsAllowed() {
		return nil
	}
	mounted, err := isMountPoint(dir)
	if err != nil || mounted {
		return err
	}
	if !created {
		// A directory made earlier (before a restart, or while tmpfs did
		// not work): mounting over it would hide what is in it.
		if entries, err := os.ReadDir(dir); err != nil || len(entries) > 0 {
			return err
		}
	}
	if err := mountTmpfs(dir, memoryVolumeMode, size); err != nil {
		m.tmpfsFailed.Store(true)
		logger.Info("Cannot mount tmpfs; memory-backed volumes are plain directories of mode 0700 from now on", "err", err)
		return nil
	}
	return nil
}

func (m *Manager) tmpfsAllowed() bool {
	return m.tmpfs != TmpfsNever && canMount() && !m.tmpfsFailed.Load()
}

// SizeLimitViolation is an emptyDir volume that uses more than its
// sizeLimit.
type SizeLimitViolation struct {
	Volume string
	Limit  resource.Quantity
	// Used is the volume's usage in bytes.
	Used int64
}

// Message is the kubelet's eviction message for the violation.
func (v SizeLimitViolation) Message() string {
	return fmt.Sprintf("Usage of EmptyDir volume %q exceeds the limit %q. ", v.Volume, v.Limit.String())
}

// EmptyDirUsage measures each emptyDir volume of pod under podDir, in
// bytes on disk (st_blocks, hard links counted once, symlinks not
// followed), as du does. Volumes not set up yet are left out.
func (m *Manager) EmptyDirUsage(pod *v1.Pod, podDir string) (map[string]int64, error) {
	out := map[string]int64{}
	var errs []error
	for i := range pod.Spec.Volumes {
		vol := &pod.Spec.Volumes[i]
		if vol.EmptyDir == nil || validateVolumeName(vol.Name) != nil {
			continue
		}
		used, err := dirUsage(filepath.Join(podDir, volumesDir, vol.Name))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("volume %q: %w", vol.Name, err))
			continue
		}
		out[vol.Name] = used
	}
	return out, errors.Join(errs...)
}

// SizeLimitViolations returns the emptyDir volumes of pod that use more
// than their sizeLimit. The core calls it periodically for every running
// pod (the kubelet's eviction manager does every 10 s) and evicts a pod
// with a violation: phase Failed, reason Evicted, v.Message().
func (m *Manager) SizeLimitViolations(pod *v1.Pod, podDir string) ([]SizeLimitViolation, error) {
	usage, err := m.EmptyDirUsage(pod, podDir)
	var out []SizeLimitViolation
	for i := range pod.Spec.Volumes {
		vol := &pod.Spec.Volumes[i]
		if vol.EmptyDir == nil || vol.EmptyDir.SizeLimit == nil || vol.EmptyDir.SizeLimit.Sign() <= 0 {
			continue
		}
		used, ok := usage[vol.Name]
		if ok && used > vol.EmptyDir.SizeLimit.Value() {
			out = append(out, SizeLimitViolation{Volume: vol.Name, Limit: vol.EmptyDir.SizeLimit.DeepCopy(), Used: used})
		}
	}
	return out, err
}

// dirUsage sums the disk usage of everything under dir.
func dirUsage(dir string) (int64, error) {
	var total int64
	seen := map[uint64]bool{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path != dir && errors.Is(err, fs.ErrNotExist) {
				return nil // removed while walking
			}
			return err
		}
		info, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		size, ino, linked := diskUsage(info)
		if linked {
			if seen[ino] {
				return nil
			}
			seen[ino] = true
		}
		total += size
		return nil
	})
	return total, err
}
