//go:build !unix

package volume

import "io/fs"

func diskUsage(info fs.FileInfo) (int64, uint64, bool) { return info.Size(), 0, false }
