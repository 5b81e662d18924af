package node

import (
	"github.com/krustlet/krustlet-go/pkg/config"
)

// Pressure says which resources are below their hard eviction thresholds.
type Pressure struct {
	Memory, Disk, PID bool
}

// EvaluatePressure compares a reading with the thresholds. The image
// filesystem is the node filesystem: modules live under the data dir.
func EvaluatePressure(u Usage, thresholds []config.EvictionThreshold) Pressure {
	var p Pressure
	below := func(t config.EvictionThreshold, available, capacity int64) bool {
		if t.Quantity != nil {
			return available < t.Quantity.Value()
		}
		// As the kubelet (and thresholdQuantity): the percentage becomes a
		// whole amount first; float32 0.1 is a little above 0.1.
		return available < int64(float64(capacity)*float64(t.Percentage))
	}
	for _, t := range thresholds {
		switch t.Signal {
		case config.SignalMemoryAvailable:
			p.Memory = p.Memory || below(t, u.MemoryAvailableBytes, u.MemoryCapacityBytes)
		case config.SignalNodeFsAvailable, config.SignalImageFsAvailable:
			p.Disk = p.Disk || below(t, u.FsAvailableBytes, u.FsCapacityBytes)
		case config.SignalNodeFsInodesFree, config.SignalImageFsInodesFree:
			p.Disk = p.Disk || below(t, u.FsInodesFree, u.FsInodes)
		case config.SignalPIDAvailable:
			p.PID = p.PID || below(t, u.PIDsAvailable, u.PIDsMax)
		}
	}
	return p
}
