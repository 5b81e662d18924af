package volume

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	v1 "k8s.io/api/core/v1"
)

// SubPath returns the host path to expose for a volumeMount with a subPath
// (or the expansion of its subPathExpr): the mountIndex-th mount of
// container containerName of pod, of its volume volumeName. SetUp must
// have run for the pod.
//
// The subPath is refused if it is absolute or contains "..", or if it
// resolves (through symlinks) outside the volume. Then, as the kubelet's
// bind mounts behave:
//
//   - emptyDir and hostPath volumes are live: the path inside the volume is
//     returned (its directories created if missing, without following a
//     symlink out of the volume), so writes are shared with the volume;
//   - configMap, secret, downwardAPI and projected volumes are copied once,
//     at the first mount, to podDir/volume-subpaths/<volume>/<container>/
//     <index>, and that copy is returned from then on, also when the
//     container restarts. Like the kubelet's bind mount of the resolved
//     file, it does not receive later updates of the volume. A subPath
//     missing from such a volume gives an empty directory. Copies of
//     memory-backed volumes are on a tmpfs (volume-subpaths/<volume>)
//     when the volume itself could be.
func (m *Manager) SubPath(pod *v1.Pod, containerName string, mountIndex int, volumeName, subPath string) (string, error) {
	if err := ValidateSubPath(subPath); err != nil {
		return "", err
	}
	var vol *v1.Volume
	for i := range pod.Spec.Volumes {
		if pod.Spec.Volumes[i].Name == volumeName {
			vol = &pod.Spec.Volumes[i]
		}
	}
	if vol == nil {
		return "", fmt.Errorf("pod has no volume %q", volumeName)
	}
	m.mu.Lock()
	st, ok := m.pods[pod.UID]
	m.mu.Unlock()
	if !ok {
		return "", fmt.Errorf("volumes of pod %s are not set up", pod.UID)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.podDir == "" {
		return "", fmt.Errorf("volumes of pod %s are not set up", pod.UID)
	}
	volumePath := filepath.Join(st.podDir, volumesDir, volumeName)
	if vol.HostPath != nil {
		volumePath = filepath.Clean(vol.HostPath.Path)
	} else if err := validateVolumeName(volumeName); err != nil {
		return "", err
	}

	if !ForcedReadOnly(vol) {
		info, err := os.Stat(volumePath)
		if err != nil {
			return "", err
		}
		perm := info.Mode().Perm()
		if !info.IsDir() {
			return "", fmt.Errorf("subPath %q: volume %q is not a directory", subPath, volumeName)
		}
		if err := mkdirInside(volumePath, subPath, perm); err != nil {
			return "", fmt.Errorf("preparing subPath %q of volume %q: %w", subPath, volumeName, err)
		}
		return resolveInside(volumePath, subPath)
	}

	if err := validateVolumeName(containerName); err != nil {
		return "", fmt.Errorf("container name: %w", err)
	}
	volCopies := filepath.Join(st.podDir, subPathsDir, volumeName)
	base := filepath.Join(volCopies, containerName)
	dst := filepath.Join(base, strconv.Itoa(mountIndex))
	if _, err := os.Lstat(dst); err == nil {
		return dst, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	if _, err := ensureDir(filepath.Join(st.podDir, subPathsDir), memoryVolumeMode); err != nil {
		return "", err
	}
	var err error
	if memoryBacked(vol) {
		// Copies of secrets stay in memory too: the volume's copies get a
		// tmpfs of their own when the node allows it.
		err = m.ensureMemoryDir(m.logger, volCopies, m.memorySize(nil))
	} else {
		_, err = ensureDir(volCopies, memoryVolumeMode)
	}
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(base, memoryVolumeMode); err != nil {
		return "", err
	}
	tmp := dst + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return "", err
	}
	src := filepath.Join(volumePath, subPath)
	if _, err := os.Lstat(src); errors.Is(err, fs.ErrNotExist) {
		err = os.Mkdir(tmp, 0o755)
		if err != nil {
			return "", err
		}
	} else if err := copyInside(volumePath, src, tmp); err != nil {
		_ = os.RemoveAll(tmp)
		return "", fmt.Errorf("copying subPath %q of volume %q: %w", subPath, volumeName, err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		_ = os.RemoveAll(tmp)
		return "", err
	}
	return dst, nil
}
