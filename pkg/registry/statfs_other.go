//go:build !unix

package registry

import "errors"

// StatFS is not implemented on this platform.
func StatFS(path string) (DiskUsage, error) {
	return DiskUsage{}, errors.New("disk usage is not implemented on this platform")
}
