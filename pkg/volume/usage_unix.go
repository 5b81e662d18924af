//go:build unix

package volume

import (
	"io/fs"
	"syscall"
)

// diskUsage is what a file occupies on disk, in bytes, and its inode, for
// counting hard links once.
func diskUsage(info fs.FileInfo) (int64, uint64, bool) {
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok {
		return info.Size(), 0, false
	}
	return int64(st.Blocks) * 512, uint64(st.Ino), st.Nlink > 1
}
