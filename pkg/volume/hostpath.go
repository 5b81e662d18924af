package volume

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	v1 "k8s.io/api/core/v1"
)

// setUpHostPath checks a hostPath volume's type, as the kubelet's hostpath
// plugin does, and returns the path: the volume is the host path itself,
// nothing is copied. DirectoryOrCreate and FileOrCreate create what is
// missing on the host (the parent of a file must exist), the only writes
// this package makes outside a pod's directory, because the pod asked.
func setUpHostPath(src *v1.HostPathVolumeSource) (string, error) {
	if !filepath.IsAbs(src.Path) {
		return "", fmt.Errorf("hostPath %q must be an absolute path", src.Path)
	}
	path := filepath.Clean(src.Path)
	t := v1.HostPathUnset
	if src.Type != nil {
		t = *src.Type
	}
	return path, checkHostPathType(path, t)
}

func checkHostPathType(path string, t v1.HostPathType) error {
	switch t {
	case v1.HostPathUnset:
		return nil
	case v1.HostPathDirectoryOrCreate:
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			if err := os.MkdirAll(path, 0o755); err != nil {
				return fmt.Errorf("hostPath type check failed: creating directory %s: %w", path, err)
			}
		}
		return typeMatches(path, "directory", func(m fs.FileMode) bool { return m.IsDir() })
	case v1.HostPathDirectory:
		return typeMatches(path, "directory", func(m fs.FileMode) bool { return m.IsDir() })
	case v1.HostPathFileOrCreate:
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o644)
			if err != nil && !errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("hostPath type check failed: creating file %s: %w", path, err)
			}
			if f != nil {
				f.Close()
			}
		}
		return typeMatches(path, "file", func(m fs.FileMode) bool { return m.IsRegular() })
	case v1.HostPathFile:
		return typeMatches(path, "file", func(m fs.FileMode) bool { return m.IsRegular() })
	case v1.HostPathSocket:
		return typeMatches(path, "socket file", func(m fs.FileMode) bool { return m&fs.ModeSocket != 0 })
	case v1.HostPathCharDev:
		return typeMatches(path, "character device", func(m fs.FileMode) bool {
			return m&fs.ModeDevice != 0 && m&fs.ModeCharDevice != 0
		})
	case v1.HostPathBlockDev:
		return typeMatches(path, "block device", func(m fs.FileMode) bool {
			return m&fs.ModeDevice != 0 && m&fs.ModeCharDevice == 0
		})
	default:
		return fmt.Errorf("%s is an invalid volume type", t)
	}
}

// typeMatches fails with the kubelet's message unless path (followed) is
// of the expected type.
func typeMatches(path, expected string, match func(fs.FileMode) bool) error {
	info, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("hostPath type check failed, %s is not a %s, unable to determine its type: %w", path, expected, err)
	}
	if !match(info.Mode()) {
		return fmt.Errorf("hostPath type check failed: %s is not a %s, it's a %s", path, expected, typeName(info.Mode()))
	}
	return nil
}

func typeName(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "directory"
	case m.IsRegular():
		return "file"
	case m&fs.ModeSocket != 0:
		return "socket file"
	case m&fs.ModeDevice != 0 && m&fs.ModeCharDevice != 0:
		return "character device"
	case m&fs.ModeDevice != 0:
		return "block device"
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	default:
		return "unknown file type"
	}
}
