package volume

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Directory layout under a pod's directory.
const (
	// volumesDir holds one directory per pod-local volume, by name.
	volumesDir = "volumes"
	// subPathsDir holds the copies made for subPath mounts of
	// configMap, secret, downwardAPI and projected volumes:
	// volume-subpaths/<volume>/<container>/<mount index>.
	subPathsDir = "volume-subpaths"
)

// ValidateSubPath refuses a subPath (or the expansion of a subPathExpr)
// that is absolute or steps back with "..", as the kubelet's makeMounts
// does.
func ValidateSubPath(subPath string) error {
	if filepath.IsAbs(subPath) || strings.HasPrefix(subPath, "/") {
		return fmt.Errorf("subPath %q must not be an absolute path", subPath)
	}
	for _, part := range strings.Split(filepath.ToSlash(subPath), "/") {
		if part == ".." {
			return fmt.Errorf("subPath %q must not contain '..'", subPath)
		}
	}
	return nil
}

// validateVolumeName refuses a name that could not be a single path
// element; the API server allows DNS-1123 labels only.
func validateVolumeName(name string) error {
	if errs := validation.IsDNS1123Label(name); len(errs) != 0 {
		return fmt.Errorf("invalid volume name %q: %s", name, strings.Join(errs, "; "))
	}
	return nil
}

// within reports whether path is root or inside it; both must be clean
// and absolute.
func within(root, path string) bool {
	if path == root {
		return true
	}
	return strings.HasPrefix(path, strings.TrimSuffix(root, string(os.PathSeparator))+string(os.PathSeparator))
}

// resolveInside resolves sub below root, following symlinks, and fails
// when the result is outside root. The path must exist.
func resolveInside(root, sub string) (string, error) {
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return "", err
	}
	real, err := filepath.EvalSymlinks(filepath.Join(realRoot, sub))
	if err != nil {
		return "", err
	}
	if !within(realRoot, real) {
		return "", fmt.Errorf("subPath %q resolves outside its volume", sub)
	}
	return real, nil
}

// mkdirInside creates the directories of sub below root one element at a
// time, with mode perm, never following a symlink out of root (the
// kubelet's SafeMakeDir does the same with openat).
func mkdirInside(root, sub string, perm os.FileMode) error {
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return err
	}
	cur := realRoot
	parts := strings.Split(filepath.Clean(sub), string(os.PathSeparator))
	for i, part := range parts {
		if part == "" || part == "." {
			continue
		}
		next := filepath.Join(cur, part)
		info, err := os.Lstat(next)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if err := os.Mkdir(next, perm); err != nil && !errors.Is(err, fs.ErrExist) {
				return err
			}
			if err := os.Chmod(next, perm); err != nil {
				return err
			}
		case err != nil:
			return err
		case info.Mode()&fs.ModeSymlink != 0:
			real, err := filepath.EvalSymlinks(next)
			if err != nil {
				return err
			}
			if !within(realRoot, real) {
				return fmt.Errorf("subPath %q resolves outside its volume", sub)
			}
			next = real
		}
		info, err = os.Stat(next)
		if err != nil {
			return err
		}
		if !info.IsDir() {
			if i == len(parts)-1 {
				return nil // the subPath names an existing file
			}
			return fmt.Errorf("subPath %q: %s is not a directory", sub, part)
		}
		cur = next
	}
	return nil
}

// checkSymlinks walks root and fails on any symlink whose target is
// absolute or resolves outside root, so that a module given root can never
// follow a link out of it.
func checkSymlinks(root string) error {
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return err
	}
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type()&fs.ModeSymlink == 0 {
			return nil
		}
		target, err := os.Readlink(path)
		if err != nil {
			return err
		}
		if filepath.IsAbs(target) {
			return fmt.Errorf("symlink %s points to absolute path %s", path, target)
		}
		real, err := filepath.EvalSymlinks(path)
		if err != nil {
			return fmt.Errorf("symlink %s: %w", path, err)
		}
		if !within(realRoot, real) {
			return fmt.Errorf("symlink %s resolves outside its volume", path)
		}
		return nil
	})
}

// copyInside copies src (a file or directory inside root) to dst,
// dereferencing symlinks that stay within root and refusing others. Files
// keep their permission bits.
func copyInside(root, src, dst string) error {
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return err
	}
	real, err := filepath.EvalSymlinks(src)
	if err != nil {
		return err
	}
	if !within(realRoot, real) {
		return fmt.Errorf("%s resolves outside its volume", src)
	}
	info, err := os.Stat(real)
	if err != nil {
		return err
	}
	switch {
	case info.IsDir():
		if err := os.Mkdir(dst, info.Mode().Perm()); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
		entries, err := os.ReadDir(real)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), "..") {
				// AtomicWriter's own entries (..data, ..2026_…).
				continue
			}
			if err := copyInside(realRoot, filepath.Join(real, e.Name()), filepath.Join(dst, e.Name())); err != nil {
				return err
			}
		}
		return os.Chmod(dst, info.Mode().Perm())
	case info.Mode().IsRegular():
		return copyFile(real, dst, info.Mode().Perm())
	default:
		return fmt.Errorf("%s is neither a file nor a directory", src)
	}
}

func copyFile(src, dst string, perm os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Chmod(dst, perm)
}
