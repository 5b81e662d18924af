package volume

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/klog/v2"
)

// This file is a port of the kubelet's pkg/volume/util/atomic_writer.go.
// Changes: the logger is contextual, the timestamp comes from an injected
// clock, file ownership (FsUser) is not supported (modules run as the
// agent's user), and only the POSIX rename path is kept.

const (
	maxFileNameLength = 255
	maxPathLength     = 4096

	dataDirName    = "..data"
	newDataDirName = "..data_tmp"
)

// fileProjection is the content and mode of one file of a volume.
type fileProjection struct {
	Data []byte
	Mode int32
}

// atomicWriter atomically projects a set of files into a target directory.
//
// The visible files of the target directory are relative symlinks into the
// data directory, key -> ..data/key; ..data is itself a relative symlink to
// a hidden timestamped directory (..2026_01_02_15_04_05.123456789) holding
// the real files. An update writes a new timestamped directory, points a
// new symlink ..data_tmp at it and renames that over ..data: readers see
// either the old or the new set of files, never a mix.
//
// Paths starting with ".." are reserved. An atomicWriter must not be used
// concurrently on the same target directory.
type atomicWriter struct {
	targetDir string
	now       func() time.Time
	logger    klog.Logger
}

// write projects payload into the target directory (steps as in the
// kubelet):
//
//  1. validate the payload;
//  2. read the current timestamped directory from ..data;
//  3. find paths of the old version that the payload no longer has;
//  4. compare the payload with the old version: nothing to do if equal;
//  5. create a new timestamped directory;
//  6. write the payload into it;
//  7. create ..data_tmp pointing at it;
//  8. rename ..data_tmp to ..data (atomic);
//  9. create the user-visible symlinks that are new;
//  10. remove the user-visible paths that are gone;
//  11. remove the old timestamped directory.
//
// It reports whether anything changed on disk.
func (w *atomicWriter) write(payload map[string]fileProjection) (bool, error) {
	// (1)
	cleanPayload, err := validatePayload(payload)
	if err != nil {
		return false, err
	}

	// (2)
	dataDirPath := filepath.Join(w.targetDir, dataDirName)
	oldTsDir, err := os.Readlink(dataDirPath)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			return false, fmt.Errorf("reading link for data directory: %w", err)
		}
		oldTsDir = ""
	}
	oldTsPath := filepath.Join(w.targetDir, oldTsDir)

	var pathsToRemove sets.Set[string]
	shouldWrite := true
	if oldTsDir != "" {
		// (3)
		pathsToRemove, err = w.pathsToRemove(cleanPayload, oldTsPath)
		if err != nil {
			return false, fmt.Errorf("determining user-visible files to remove: %w", err)
		}
		// (4)
		should, err := shouldWritePayload(cleanPayload, oldTsPath)
		if err != nil {
			return false, fmt.Errorf("determining whether the payload changed: %w", err)
		}
		if !should && len(pathsToRemove) == 0 {
			// Up to date; still make sure the user-visible symlinks exist
			// (kubernetes#121472) and keep the data directory.
			shouldWrite = false
			oldTsDir = ""
		}
	}

	if shouldWrite {
		// (5)
		tsDir, err := w.newTimestampDir()
		if err != nil {
			return false, err
		}
		tsDirName := filepath.Base(tsDir)

		// (6)
		if err := writePayloadToDir(cleanPayload, tsDir); err != nil {
			_ = os.RemoveAll(tsDir)
			return false, err
		}

		// (7)
		newDataDirPath := filepath.Join(w.targetDir, newDataDirName)
		_ = os.Remove(newDataDirPath) // a leftover of an interrupted write
		if err := os.Symlink(tsDirName, newDataDirPath); err != nil {
			_ = os.RemoveAll(tsDir)
			return false, fmt.Errorf("creating symbolic link for atomic update: %w", err)
		}

		// (8)
		if err := os.Rename(newDataDirPath, dataDirPath); err != nil {
			_ = os.Remove(newDataDirPath)
			_ = os.RemoveAll(tsDir)
			return false, fmt.Errorf("renaming symbolic link for data directory: %w", err)
		}
		w.logger.V(4).Info("Wrote new volume data", "dir", w.targetDir, "data", tsDirName)
	}

	// (9)
	if err := w.createUserVisibleFiles(cleanPayload); err != nil {
		return shouldWrite, fmt.Errorf("creating visible symlinks in %s: %w", w.targetDir, err)
	}

	// (10)
	if err := w.removeUserVisiblePaths(pathsToRemove); err != nil {
		return shouldWrite, fmt.Errorf("removing old visible symlinks: %w", err)
	}

	// (11)
	if oldTsDir != "" {
		if err := os.RemoveAll(oldTsPath); err != nil {
			return shouldWrite, fmt.Errorf("removing old data directory %s: %w", oldTsDir, err)
		}
	}
	return shouldWrite, nil
}

// validatePayload returns a copy of payload with cleaned paths, or an
// error if a path is invalid.
func validatePayload(payload map[string]fileProjection) (map[string]fileProjection, error) {
	cleanPayload := make(map[string]fileProjection, len(payload))
	for k, content := range payload {
		if err := validatePath(k); err != nil {
			return nil, err
		}
		cleanPayload[filepath.Clean(k)] = content
	}
	return cleanPayload, nil
}

// validatePath refuses a path that is empty, absolute, contains '..' as an
// element, starts with '..', has an element longer than 255 characters or
// is longer than 4096.
func validatePath(targetPath string) error {
	if targetPath == "" {
		return fmt.Errorf("invalid path: must not be empty: %q", targetPath)
	}
	if filepath.IsAbs(targetPath) {
		return fmt.Errorf("invalid path: must be relative path: %s", targetPath)
	}
	if len(targetPath) > maxPathLength {
		return fmt.Errorf("invalid path: must be less than or equal to %d characters", maxPathLength)
	}
	items := strings.Split(targetPath, string(os.PathSeparator))
	for _, item := range items {
		if item == ".." {
			return fmt.Errorf("invalid path: must not contain '..': %s", targetPath)
		}
		if len(item) > maxFileNameLength {
			return fmt.Errorf("invalid path: filenames must be less than or equal to %d characters", maxFileNameLength)
		}
	}
	if strings.HasPrefix(items[0], "..") && len(items[0]) > 2 {
		return fmt.Errorf("invalid path: must not start with '..': %s", targetPath)
	}
	return nil
}

// shouldWritePayload reports whether any file of payload differs from the
// old version.
func shouldWritePayload(payload map[string]fileProjection, oldTsDir string) (bool, error) {
	for userVisiblePath, fp := range payload {
		should, err := shouldWriteFile(filepath.Join(oldTsDir, userVisiblePath), fp)
		if err != nil || should {
			return should, err
		}
	}
	return false, nil
}

// shouldWriteFile reports whether a file's content or mode changed. (The
// kubelet compares content only; a changed mode is rewritten here too.)
func shouldWriteFile(path string, fp fileProjection) (bool, error) {
	info, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	if !info.Mode().IsRegular() || info.Mode().Perm() != os.FileMode(fp.Mode).Perm() {
		return true, nil
	}
	contentOnFs, err := os.ReadFile(path)
	if err != nil {
		return false, err
	}
	return !bytes.Equal(fp.Data, contentOnFs), nil
}

// pathsToRemove walks the old version of the data directory and returns
// the paths that the payload no longer has.
func (w *atomicWriter) pathsToRemove(payload map[string]fileProjection, oldTsDir string) (sets.Set[string], error) {
	paths := sets.New[string]()
	err := filepath.WalkDir(oldTsDir, func(path string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(oldTsDir, path)
		if err != nil || rel == "." {
			return err
		}
		paths.Insert(rel)
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}

	newPaths := sets.New[string]()
	for file := range payload {
		// Add every parent of each file so that non-empty directories are
		// not removed.
		for subPath := file; subPath != "" && subPath != "."; subPath = filepath.Dir(subPath) {
			newPaths.Insert(subPath)
		}
	}
	return paths.Difference(newPaths), nil
}

// newTimestampDir creates a new timestamped directory, mode 0755 whatever
// the umask.
func (w *atomicWriter) newTimestampDir() (string, error) {
	tsDir, err := os.MkdirTemp(w.targetDir, w.now().UTC().Format("..2006_01_02_15_04_05."))
	if err != nil {
		return "", fmt.Errorf("creating new data directory: %w", err)
	}
	if err := os.Chmod(tsDir, 0o755); err != nil {
		return "", fmt.Errorf("setting mode of new data directory: %w", err)
	}
	return tsDir, nil
}

// writePayloadToDir writes payload into the existing directory dir, each
// file with exactly its mode whatever the umask.
func writePayloadToDir(payload map[string]fileProjection, dir string) error {
	for userVisiblePath, fp := range payload {
		mode := os.FileMode(fp.Mode).Perm()
		fullPath := filepath.Join(dir, userVisiblePath)
		if err := os.MkdirAll(filepath.Dir(fullPath), 0o755); err != nil {
			return fmt.Errorf("creating directory for %s: %w", userVisiblePath, err)
		}
		if err := os.WriteFile(fullPath, fp.Data, mode); err != nil {
			return fmt.Errorf("writing %s: %w", userVisiblePath, err)
		}
		if err := os.Chmod(fullPath, mode); err != nil {
			return fmt.Errorf("setting mode %v of %s: %w", mode, userVisiblePath, err)
		}
	}
	return nil
}

// createUserVisibleFiles creates the relative symlink of the first element
// of each payload path, e.g. for "bar", "foo/bar" and "foo/baz":
// bar -> ..data/bar and foo -> ..data/foo.
func (w *atomicWriter) createUserVisibleFiles(payload map[string]fileProjection) error {
	for userVisiblePath := range payload {
		linkname, _, _ := strings.Cut(userVisiblePath, string(os.PathSeparator))
		visibleFile := filepath.Join(w.targetDir, linkname)
		if _, err := os.Readlink(visibleFile); err != nil && errors.Is(err, fs.ErrNotExist) {
			if err := os.Symlink(filepath.Join(dataDirName, linkname), visibleFile); err != nil {
				return err
			}
		}
	}
	return nil
}

// removeUserVisiblePaths removes paths of the volume root (those without a
// separator) from the target directory.
func (w *atomicWriter) removeUserVisiblePaths(paths sets.Set[string]) error {
	var errs []error
	for p := range paths {
		if strings.Contains(p, string(os.PathSeparator)) {
			continue
		}
		if err := os.Remove(filepath.Join(w.targetDir, p)); err != nil {
			errs = append(errs, fmt.Errorf("pruning old user-visible path %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}
