package registry

import (
	"context"
	"errors"
	"fmt"
	"time"

	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
)

// Defaults of ImageGC, the kubelet's where it has them.
const (
	DefaultGCHighThresholdPercent = 85
	DefaultGCLowThresholdPercent  = 80
	// DefaultGCMinAge is the kubelet's --minimum-image-ttl-duration.
	DefaultGCMinAge = 2 * time.Minute
	// DefaultGCInterval and DefaultGCFirstRun: the kubelet collects every
	// 5 minutes, starting a minute after it starts.
	DefaultGCInterval = 5 * time.Minute
	DefaultGCFirstRun = time.Minute
)

// DiskUsage is a reading of the file system that holds the store.
type DiskUsage struct {
	CapacityBytes  uint64
	AvailableBytes uint64
}

// ImageGC removes images that no pod uses when the disk fills, as the
// kubelet's image garbage collector does (pkg/kubelet/images/image_gc_manager.go):
// once the file system holding the store is used HighThresholdPercent or
// more, it frees enough to bring use down to LowThresholdPercent, removing
// unused images least recently used first, never one used in the last
// MinAge. What changed: images are the store's Wasm modules; their
// compiled forms are dropped through OnRemove; and blobs left without an
// image are removed first.
type ImageGC struct {
	// Store is what is collected. Required.
	Store *Store
	// InUse lists the images the node's pods use: references as written in
	// the pods and/or image IDs (repository@digest). Required; it is
	// called once per collection, and must be safe to call from the GC's
	// goroutine.
	InUse func() []string
	// OnRemove is told the digests of the modules deleted, e.g. to drop
	// their compiled forms. Optional.
	OnRemove func(moduleDigest string)
	// HighThresholdPercent and LowThresholdPercent are
	// --image-gc-high-threshold and --image-gc-low-threshold. Default 85
	// and 80; 100 as high threshold disables collection.
	HighThresholdPercent, LowThresholdPercent int
	// MinAge keeps images used more recently. Default 2 minutes.
	MinAge time.Duration
	// DiskUsage reads the file system that holds path. Default: statfs.
	DiskUsage func(path string) (DiskUsage, error)
	// Clock times the loop. Default: the real clock.
	Clock clock.WithTicker
	// Interval between collections, and FirstRun, the wait before the
	// first. Defaults: 5 minutes and 1 minute.
	Interval, FirstRun time.Duration
}

func (g *ImageGC) defaults() error {
	if g.Store == nil || g.InUse == nil {
		return errors.New("image GC: Store and InUse are required")
	}
	if g.HighThresholdPercent == 0 {
		g.HighThresholdPercent = DefaultGCHighThresholdPercent
	}
	if g.LowThresholdPercent == 0 {
		g.LowThresholdPercent = DefaultGCLowThresholdPercent
	}
	if g.HighThresholdPercent < 0 || g.HighThresholdPercent > 100 || g.LowThresholdPercent < 0 || g.LowThresholdPercent > g.HighThresholdPercent {
		return fmt.Errorf("image GC: thresholds high %d%%, low %d%%: want 0 <= low <= high <= 100", g.HighThresholdPercent, g.LowThresholdPercent)
	}
	if g.MinAge == 0 {
		g.MinAge = DefaultGCMinAge
	}
	if g.DiskUsage == nil {
		g.DiskUsage = StatFS
	}
	if g.Clock == nil {
		g.Clock = clock.RealClock{}
	}
	if g.Interval <= 0 {
		g.Interval = DefaultGCInterval
	}
	if g.FirstRun <= 0 {
		g.FirstRun = DefaultGCFirstRun
	}
	return nil
}

// Run collects garbage after FirstRun and then every Interval until ctx
// ends. A failed collection is logged, and the next one tries again. It
// returns an error only for invalid settings.
func (g *ImageGC) Run(ctx context.Context) error {
	if err := g.defaults(); err != nil {
		return err
	}
	logger := klog.FromContext(ctx).WithName("image-gc")
	ctx = klog.NewContext(ctx, logger)
	if g.HighThresholdPercent == 100 {
		logger.Info("Image garbage collection disabled (high threshold 100%)")
		<-ctx.Done()
		return nil
	}
	first := g.Clock.NewTimer(g.FirstRun)
	defer first.Stop()
	select {
	case <-ctx.Done():
		return nil
	case <-first.C():
	}
	t := g.Clock.NewTicker(g.Interval)
	defer t.Stop()
	for {
		if _, err := g.GarbageCollect(ctx); err != nil {
			logger.Error(err, "Image garbage collection failed")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C():
		}
	}
}

// GarbageCollect runs one collection and returns what it removed.
func (g *ImageGC) GarbageCollect(ctx context.Context) (Removed, error) {
	if err := g.defaults(); err != nil {
		return Removed{}, err
	}
	logger := klog.FromContext(ctx)
	du, err := g.DiskUsage(g.Store.Root())
	if err != nil {
		return Removed{}, fmt.Errorf("reading disk usage of %s: %w", g.Store.Root(), err)
	}
	if du.CapacityBytes == 0 || du.AvailableBytes > du.CapacityBytes {
		return Removed{}, fmt.Errorf("invalid disk usage of %s: capacity %d, available %d", g.Store.Root(), du.CapacityBytes, du.AvailableBytes)
	}
	usedPercent := 100 - int(du.AvailableBytes*100/du.CapacityBytes)
	if usedPercent < g.HighThresholdPercent {
		logger.V(4).Info("Disk use below the image GC threshold", "usedPercent", usedPercent, "highThresholdPercent", g.HighThresholdPercent)
		return Removed{}, nil
	}
	toFree := int64(du.CapacityBytes*uint64(100-g.LowThresholdPercent)/100) - int64(du.AvailableBytes)
	logger.Info("Disk use above the image GC threshold; removing unused images", "usedPercent", usedPercent,
		"highThresholdPercent", g.HighThresholdPercent, "lowThresholdPercent", g.LowThresholdPercent, "bytesToFree", toFree)
	rm, err := g.Store.FreeSpace(toFree, g.InUse(), g.MinAge)
	for _, m := range rm.Modules {
		if g.OnRemove != nil {
			g.OnRemove(m)
		}
	}
	if len(rm.Images) > 0 {
		logger.Info("Removed unused images", "images", rm.Images, "bytesFreed", rm.Bytes)
	}
	if err != nil {
		return rm, err
	}
	if rm.Bytes < toFree {
		return rm, fmt.Errorf("wanted to free %d bytes, but freed %d bytes: the rest of the disk is used by images in use or by other files", toFree, rm.Bytes)
	}
	return rm, nil
}
