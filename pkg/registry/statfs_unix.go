//go:build unix

package registry

import "golang.org/x/sys/unix"

// StatFS reads the capacity and the space available to unprivileged users
// of the file system that holds path, as the kubelet's image GC does.
func StatFS(path string) (DiskUsage, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return DiskUsage{}, err
	}
	bsize := uint64(st.Bsize)
	return DiskUsage{CapacityBytes: uint64(st.Blocks) * bsize, AvailableBytes: uint64(st.Bavail) * bsize}, nil
}
