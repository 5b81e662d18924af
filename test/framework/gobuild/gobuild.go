// Package gobuild holds what the test frameworks that build programs from
// the repo's Go sources share: the go command and its version, a content
// hash of a source tree (the key of their build caches), and an exclusive
// file lock for builders in concurrent test processes.
package gobuild

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
)

var (
	goMu             sync.Mutex
	goBin, goVersion string
)

// GoTool finds the go command and its version, once per process. go test
// puts the go command that runs it first in PATH.
func GoTool(ctx context.Context) (bin, version string, err error) {
	goMu.Lock()
	defer goMu.Unlock()
	if goBin != "" {
		return goBin, goVersion, nil
	}
	path, err := exec.LookPath("go")
	if err != nil {
		return "", "", fmt.Errorf("building test programs needs the go command: %w", err)
	}
	out, err := exec.CommandContext(ctx, path, "env", "GOVERSION").Output()
	if err != nil {
		return "", "", fmt.Errorf("%s env GOVERSION: %w", path, err)
	}
	goBin, goVersion = path, string(bytes.TrimSpace(out))
	return goBin, goVersion, nil
}

// HashTree adds every regular file under dir (name and content) to h.
func HashTree(h io.Writer, dir string) error {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	slices.Sort(files)
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fmt.Fprintf(h, "%s %d\n", filepath.ToSlash(rel), len(b))
		h.Write(b)
	}
	return nil
}

// Lock takes an exclusive lock on f, waiting for other processes.
func Lock(f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}
