//go:build !linux

package volume

import (
	"errors"
	"os"
)

func mountTmpfs(string, os.FileMode, int64) error { return errors.ErrUnsupported }
func unmount(string) error                        { return errors.ErrUnsupported }
func isMountPoint(string) (bool, error)           { return false, nil }
func canMount() bool                              { return false }
