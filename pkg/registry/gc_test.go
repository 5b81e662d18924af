package registry

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	testingclock "k8s.io/utils/clock/testing"
)

// addImage stores an image of repo:tag whose module is module, as a pull
// would, and returns its top-level digest.
func addImage(t *testing.T, s *Store, ref string, module []byte) string {
	t.Helper()
	r, err := ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	mod := blobDescriptor(MediaTypeWasmLayer, module)
	manifest := []byte(fmt.Sprintf(`{"schemaVersion":2,"layers":[{"digest":%q}],"ref":%q}`, mod.Digest, ref))
	man := blobDescriptor(ocispec.MediaTypeImageManifest, manifest)
	for _, b := range []struct {
		d ocispec.Descriptor
		b []byte
	}{{man, manifest}, {mod, module}} {
		if err := s.Ingest(b.d, bytes.NewReader(b.b)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.record(r, imageRecord{
		Digest: man.Digest.String(), Module: mod.Digest.String(), ModuleSize: mod.Size,
		Blobs: []blobRef{{man.Digest.String(), man.Size, man.MediaType}, {mod.Digest.String(), mod.Size, mod.MediaType}},
	}); err != nil {
		t.Fatal(err)
	}
	return man.Digest.String()
}

func module(n int, fill byte) []byte {
	return append([]byte("\x00asm\x01\x00\x00\x00"), bytes.Repeat([]byte{fill}, n)...)
}

func TestStoreIngest(t *testing.T) {
	s, err := OpenStore(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	good := module(100, 1)
	d := blobDescriptor(MediaTypeWasmLayer, good)
	for name, body := range map[string][]byte{"other bytes": module(100, 2), "short": good[:50], "long": append(good, 0)} {
		if err := s.Ingest(d, bytes.NewReader(body)); err == nil {
			t.Errorf("%s: ingested", name)
		}
		if s.HasBlob(d.Digest.String()) {
			t.Errorf("%s: blob stored", name)
		}
	}
	if entries, _ := os.ReadDir(s.root + "/" + ingestDir); len(entries) != 0 {
		t.Errorf("temporary files left: %v", entries)
	}
	if err := s.Ingest(d, bytes.NewReader(good)); err != nil || !s.HasBlob(d.Digest.String()) {
		t.Fatalf("good blob: %v", err)
	}
	if b, err := s.ReadBlob(d); err != nil || !bytes.Equal(b, good) {
		t.Errorf("read back: %v", err)
	}
}

func TestStorePersistsAndLists(t *testing.T) {
	dir := t.TempDir()
	clk := testingclock.NewFakeClock(time.Unix(1e9, 0))
	s, _ := OpenStore(dir, clk)
	a := addImage(t, s, "r.io/a:v1", module(300, 1))
	addImage(t, s, "r.io/b:v1", module(100, 2))
	// Another repository and tag for a's digest.
	ra, _ := ParseReference("r.io/c:latest")
	if _, ok, err := s.existing(ra, a); !ok || err != nil {
		t.Fatal(ok, err)
	}
	s2, err := OpenStore(dir, clk)
	if err != nil {
		t.Fatal(err)
	}
	imgs := s2.Images()
	if len(imgs) != 2 {
		t.Fatalf("images: %+v", imgs)
	}
	want := []string{"r.io/a@" + a, "r.io/c@" + a, "r.io/a:v1", "r.io/c:latest"}
	if !slices.Equal(imgs[0].Names, want) || imgs[0].SizeBytes <= imgs[1].SizeBytes {
		t.Errorf("largest image %+v, want names %v", imgs[0], want)
	}
	ref, _ := ParseReference("r.io/c:latest")
	if rec, ok := s2.lookup(ref); !ok || rec.Digest != a {
		t.Errorf("lookup by tag after reopening: %v %v", rec, ok)
	}
	byDigest, _ := ParseReference("r.io/a@" + a)
	if _, ok := s2.lookup(byDigest); !ok {
		t.Error("lookup by digest failed")
	}
	otherRepo, _ := ParseReference("r.io/b@" + a)
	if _, ok := s2.lookup(otherRepo); ok {
		t.Error("a digest pulled from another repository counts as present")
	}
	// A record whose module file is gone is not present.
	os.Remove(s2.BlobPath(s2.images[a].Module))
	if _, ok := s2.lookup(ref); ok {
		t.Error("incomplete image counts as present")
	}
}

func TestImageGC(t *testing.T) {
	// Real time: blob files' modification times tell the age of orphans.
	clk := testingclock.NewFakeClock(time.Now())
	s, _ := OpenStore(t.TempDir(), clk)
	step := func() { clk.Step(time.Hour) }
	oldest := addImage(t, s, "r.io/oldest:v1", module(400, 1))
	step()
	shared := addImage(t, s, "r.io/shared:v1", module(400, 1)) // same module as oldest
	step()
	older := addImage(t, s, "r.io/older:v1", module(400, 2))
	step()
	usedByTag := addImage(t, s, "r.io/used:v1", module(400, 3))
	usedByID := addImage(t, s, "r.io/pinned:v1", module(400, 4))
	step()
	recent := addImage(t, s, "r.io/recent:v1", module(400, 5))
	orphan := module(50, 6)
	if err := s.Ingest(blobDescriptor(MediaTypeWasmLayer, orphan), bytes.NewReader(orphan)); err != nil {
		t.Fatal(err)
	}
	clk.Step(time.Minute) // recent is younger than MinAge
	var forgotten []string
	available := uint64(2000)
	gc := &ImageGC{
		Store:    s,
		InUse:    func() []string { return []string{"r.io/used:v1", "r.io/pinned@" + usedByID, "not a reference!"} },
		OnRemove: func(d string) { forgotten = append(forgotten, d) },
		DiskUsage: func(string) (DiskUsage, error) {
			return DiskUsage{CapacityBytes: 10000, AvailableBytes: available}, nil
		},
		Clock: clk,
	}
	ctx := context.Background()

	// 80% used: below the high threshold, nothing happens.
	if rm, err := gc.GarbageCollect(ctx); err != nil || len(rm.Images) != 0 || rm.Bytes != 0 {
		t.Fatalf("below threshold: %+v, %v", rm, err)
	}
	// 90% used: free 10000*20% - 1000 = 1000 bytes: the orphan, then the
	// least recently used images, until enough is freed.
	available = 1000
	rm, err := gc.GarbageCollect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantRemoved := []string{"r.io/oldest@" + oldest, "r.io/shared@" + shared, "r.io/older@" + older}
	if !slices.Equal(rm.Images, wantRemoved) {
		t.Errorf("removed %v, want %v", rm.Images, wantRemoved)
	}
	// oldest's module stayed until shared, which has it too, went.
	if len(forgotten) != 2 || rm.Bytes < 1000 {
		t.Errorf("forgotten modules %v, freed %d", forgotten, rm.Bytes)
	}
	for _, d := range []string{oldest, shared, older} {
		if _, ok := s.images[d]; ok {
			t.Errorf("%s still recorded", d)
		}
	}
	for _, d := range []string{usedByTag, usedByID, recent} {
		rec := s.images[d]
		if rec == nil || !s.completeLocked(rec) {
			t.Errorf("image %s in use or recent was removed", d)
		}
	}
	if s.HasBlob(blobDescriptor("", orphan).Digest.String()) {
		t.Error("orphan blob kept")
	}
	names := fmt.Sprint(s.Images())
	if strings.Contains(names, "oldest") || !strings.Contains(names, "r.io/used:v1") {
		t.Errorf("images after GC: %s", names)
	}

	// Nothing left to remove: an error says why.
	s.images[recent].LastUsed = clk.Now()
	unpin := s.pin(s.images[recent].Module)
	defer unpin()
	clk.Step(time.Hour) // recent is old enough now, but pinned by a pull
	rm, err = gc.GarbageCollect(ctx)
	if err == nil || !strings.Contains(err.Error(), "wanted to free 1000 bytes") || len(rm.Images) != 0 {
		t.Errorf("nothing removable: %+v, %v", rm, err)
	}
}

func TestImageGCRun(t *testing.T) {
	clk := testingclock.NewFakeClock(time.Unix(1e9, 0))
	s, _ := OpenStore(t.TempDir(), clk)
	calls := make(chan struct{}, 10)
	gc := &ImageGC{
		Store: s,
		InUse: func() []string { return nil },
		DiskUsage: func(string) (DiskUsage, error) {
			calls <- struct{}{}
			return DiskUsage{CapacityBytes: 100, AvailableBytes: 50}, nil
		},
		Clock: clk,
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- gc.Run(ctx) }()
	waitForWaiters := func() {
		for !clk.HasWaiters() {
			time.Sleep(time.Millisecond)
		}
	}
	expectCall := func(what string) {
		select {
		case <-calls:
		case <-time.After(10 * time.Second):
			t.Fatalf("no collection %s", what)
		}
	}
	waitForWaiters()
	clk.Step(59 * time.Second)
	select {
	case <-calls:
		t.Fatal("collected before the first minute")
	case <-time.After(20 * time.Millisecond):
	}
	clk.Step(time.Second)
	expectCall("after a minute")
	waitForWaiters()
	clk.Step(DefaultGCInterval)
	expectCall("after the interval")
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}

	bad := &ImageGC{Store: s, InUse: func() []string { return nil }, HighThresholdPercent: 50, LowThresholdPercent: 60}
	if err := bad.Run(context.Background()); err == nil {
		t.Error("low threshold above high accepted")
	}
}
