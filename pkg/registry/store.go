package registry

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/utils/clock"
	"oras.land/oras-go/v2/content"
)

// Layout of the store's directory.
const (
	blobsDir  = "blobs/sha256"
	ingestDir = "ingest"
	indexFile = "images.json"
)

// Store keeps pulled images on disk, content-addressed: every blob
// (index, manifest, config, module) under blobs/sha256/HEX, written to a
// temporary file in ingest/ and renamed into place only once its size and
// digest checked out, so a blob file is always whole and correct. Which
// images the blobs make up, their tags and when each was last used are in
// images.json, rewritten (temporary file, rename) on every change. It is
// safe for concurrent use.
type Store struct {
	root  string
	clock clock.Clock

	mu     sync.Mutex
	images map[string]*imageRecord // by top-level digest
	tags   map[string]string       // repository:tag → top-level digest
	// pins counts the pulls that rely on a blob being kept; garbage
	// collection leaves pinned blobs alone.
	pins map[string]int
}

// imageRecord is one image: what a reference resolved to.
type imageRecord struct {
	// Digest is the top-level digest: the index's, or the manifest's.
	Digest string `json:"digest"`
	// Repos are the repositories it was pulled from (domain/path).
	Repos []string `json:"repos"`
	// Blobs are everything stored for it: top level, manifest, config,
	// module.
	Blobs []blobRef `json:"blobs"`
	// Module is the module layer's digest; ModuleSize its size.
	Module     string `json:"module"`
	ModuleSize int64  `json:"moduleSize"`
	// Pulled is when it was first stored; LastUsed when a pull last asked
	// for it or garbage collection last found it in use.
	Pulled   time.Time `json:"pulled"`
	LastUsed time.Time `json:"lastUsed"`
}

type blobRef struct {
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
	MediaType string `json:"mediaType,omitempty"`
}

// storeIndex is the content of images.json.
type storeIndex struct {
	Images map[string]*imageRecord `json:"images"`
	Tags   map[string]string       `json:"tags"`
}

// OpenStore opens (creating it if need be) the store in dir. Temporary
// files of an earlier process are removed.
func OpenStore(dir string, clk clock.Clock) (*Store, error) {
	if clk == nil {
		clk = clock.RealClock{}
	}
	s := &Store{root: dir, clock: clk, images: map[string]*imageRecord{}, tags: map[string]string{}, pins: map[string]int{}}
	if err := os.RemoveAll(filepath.Join(dir, ingestDir)); err != nil {
		return nil, fmt.Errorf("clearing %s: %w", ingestDir, err)
	}
	for _, d := range []string{blobsDir, ingestDir} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return nil, err
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, indexFile))
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, err
	default:
		var idx storeIndex
		if err := json.Unmarshal(b, &idx); err != nil {
			// The blobs are still there; unrecorded ones are garbage that
			// the next collection removes.
			return s, fmt.Errorf("image index %s is corrupt, starting empty: %w", filepath.Join(dir, indexFile), err)
		}
		if idx.Images != nil {
			s.images = idx.Images
		}
		if idx.Tags != nil {
			s.tags = idx.Tags
		}
	}
	return s, nil
}

// Root is the store's directory.
func (s *Store) Root() string { return s.root }

// BlobPath is where the blob with digest is kept (whether or not it is).
func (s *Store) BlobPath(digest string) string {
	return filepath.Join(s.root, blobsDir, strings.TrimPrefix(digest, "sha256:"))
}

// HasBlob reports whether the blob is stored.
func (s *Store) HasBlob(digest string) bool {
	fi, err := os.Stat(s.BlobPath(digest))
	return err == nil && fi.Mode().IsRegular()
}

// pin keeps digests from garbage collection until the returned func is
// called.
func (s *Store) pin(digests ...string) func() {
	s.mu.Lock()
	for _, d := range digests {
		s.pins[d]++
	}
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		for _, d := range digests {
			if s.pins[d]--; s.pins[d] <= 0 {
				delete(s.pins, d)
			}
		}
		s.mu.Unlock()
	}
}

// Ingest stores the blob desc read from r: at most desc.Size bytes are
// read, and the blob is kept only if exactly desc.Size bytes with
// desc.Digest came. An existing blob is not written again (r is not read).
func (s *Store) Ingest(desc ocispec.Descriptor, r io.Reader) error {
	if err := desc.Digest.Validate(); err != nil || desc.Digest.Algorithm() != "sha256" {
		return fmt.Errorf("invalid digest %q", desc.Digest)
	}
	final := s.BlobPath(desc.Digest.String())
	if s.HasBlob(desc.Digest.String()) {
		return nil
	}
	f, err := os.CreateTemp(filepath.Join(s.root, ingestDir), desc.Digest.Encoded()[:12]+"-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op once renamed
	vr := content.NewVerifyReader(r, desc)
	_, err = io.Copy(f, vr)
	if err == nil {
		err = vr.Verify()
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Chmod(tmp, 0o444); err != nil {
		return err
	}
	return os.Rename(tmp, final)
}

// ReadBlob reads a stored blob, checked against desc.
func (s *Store) ReadBlob(desc ocispec.Descriptor) ([]byte, error) {
	f, err := os.Open(s.BlobPath(desc.Digest.String()))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return content.ReadAll(f, desc)
}

// lookup returns the stored image that ref names, if it is complete on
// disk: by digest (pulled from ref's repository), or by tag.
func (s *Store) lookup(ref Reference) (*imageRecord, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var rec *imageRecord
	if ref.Digest != "" {
		rec = s.images[ref.Digest]
		if rec != nil && !slices.Contains(rec.Repos, ref.Repository()) {
			rec = nil
		}
	} else if d, ok := s.tags[ref.TaggedName()]; ok {
		rec = s.images[d]
	}
	if rec == nil || !s.completeLocked(rec) {
		return nil, false
	}
	rec.LastUsed = s.clock.Now()
	cp := *rec
	return &cp, true
}

// completeLocked reports whether every blob of rec is on disk.
func (s *Store) completeLocked(rec *imageRecord) bool {
	for _, b := range rec.Blobs {
		if !s.HasBlob(b.Digest) {
			return false
		}
	}
	return true
}

// existing returns the stored image with top-level digest, if complete,
// recording that ref names it now.
func (s *Store) existing(ref Reference, digest string) (*imageRecord, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := s.images[digest]
	if rec == nil || !s.completeLocked(rec) {
		return nil, false, nil
	}
	s.nameLocked(rec, ref)
	rec.LastUsed = s.clock.Now()
	cp := *rec
	return &cp, true, s.saveLocked()
}

// record stores what a pull found: the image with its blobs (which must be
// stored already), named by ref.
func (s *Store) record(ref Reference, rec imageRecord) (*imageRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	old := s.images[rec.Digest]
	if old != nil {
		rec.Repos = old.Repos
		rec.Pulled = old.Pulled
	} else {
		rec.Pulled = now
	}
	rec.LastUsed = now
	r := &rec
	s.images[rec.Digest] = r
	s.nameLocked(r, ref)
	cp := *r
	return &cp, s.saveLocked()
}

func (s *Store) nameLocked(rec *imageRecord, ref Reference) {
	if !slices.Contains(rec.Repos, ref.Repository()) {
		rec.Repos = append(rec.Repos, ref.Repository())
		slices.Sort(rec.Repos)
	}
	if t := ref.TaggedName(); t != "" {
		s.tags[t] = rec.Digest
	}
}

func (s *Store) saveLocked() error {
	b, err := json.MarshalIndent(storeIndex{Images: s.images, Tags: s.tags}, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Join(s.root, ingestDir), indexFile+"-*")
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), filepath.Join(s.root, indexFile))
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("writing image index: %w", err)
	}
	return nil
}

// Images lists the stored images for the Node's status.images: each with
// its names (repository@digest for each repository it came from, then
// repository:tag for each tag that points at it) and its size on disk,
// largest first, as the kubelet sorts them.
func (s *Store) Images() []v1.ContainerImage {
	s.mu.Lock()
	defer s.mu.Unlock()
	tagsOf := map[string][]string{}
	for t, d := range s.tags {
		tagsOf[d] = append(tagsOf[d], t)
	}
	out := make([]v1.ContainerImage, 0, len(s.images))
	for _, rec := range s.images {
		var names []string
		for _, r := range rec.Repos {
			names = append(names, r+"@"+rec.Digest)
		}
		t := tagsOf[rec.Digest]
		slices.Sort(t)
		names = append(names, t...)
		out = append(out, v1.ContainerImage{Names: names, SizeBytes: rec.size()})
	}
	slices.SortFunc(out, func(a, b v1.ContainerImage) int {
		if c := cmp.Compare(b.SizeBytes, a.SizeBytes); c != 0 {
			return c
		}
		return cmp.Compare(strings.Join(a.Names, ","), strings.Join(b.Names, ","))
	})
	return out
}

func (r *imageRecord) size() int64 {
	var n int64
	for _, b := range r.Blobs {
		n += b.Size
	}
	return n
}

// Removed describes what one garbage collection removed.
type Removed struct {
	// Images are the IDs (repository@digest) of the images removed.
	Images []string
	// Modules are the digests of the module blobs deleted, whose compiled
	// forms are useless now.
	Modules []string
	// Bytes is the size of the blobs deleted.
	Bytes int64
}

// FreeSpace removes images that no name in inUse refers to, least
// recently used first, until at least bytes were freed; blobs that no
// image refers to go first. An image used (pulled, or found in use) less
// than minAge ago is kept, as is any blob a pull in progress relies on.
// inUse holds image references as pods write them (resolved through the
// store's tags) or image IDs (repository@digest); images they name get
// their last use set to now.
func (s *Store) FreeSpace(bytes int64, inUse []string, minAge time.Duration) (Removed, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	used := map[string]bool{}
	for _, name := range inUse {
		ref, err := ParseReference(name)
		if err != nil {
			continue
		}
		d := ref.Digest
		if d == "" {
			d = s.tags[ref.TaggedName()]
		}
		if rec := s.images[d]; rec != nil {
			used[d] = true
			rec.LastUsed = now
		}
	}
	var rm Removed
	referenced := s.referencedLocked()
	// Blobs no image refers to: left by a crash between storing a blob and
	// recording its image, or by a pull that failed after some blobs.
	entries, err := os.ReadDir(filepath.Join(s.root, blobsDir))
	if err != nil {
		return rm, err
	}
	for _, e := range entries {
		d := "sha256:" + e.Name()
		if referenced[d] > 0 || s.pins[d] > 0 {
			continue
		}
		if fi, err := e.Info(); err == nil && now.Sub(fi.ModTime()) >= minAge {
			if err := os.Remove(s.BlobPath(d)); err == nil {
				rm.Bytes += fi.Size()
			}
		}
	}

	candidates := make([]*imageRecord, 0, len(s.images))
	for d, rec := range s.images {
		if used[d] || now.Sub(rec.LastUsed) < minAge || s.pinnedLocked(rec) {
			continue
		}
		candidates = append(candidates, rec)
	}
	slices.SortFunc(candidates, func(a, b *imageRecord) int {
		if c := a.LastUsed.Compare(b.LastUsed); c != 0 {
			return c
		}
		if c := a.Pulled.Compare(b.Pulled); c != 0 {
			return c
		}
		return cmp.Compare(a.Digest, b.Digest)
	})
	var errs []error
	for _, rec := range candidates {
		if rm.Bytes >= bytes {
			break
		}
		delete(s.images, rec.Digest)
		for t, d := range s.tags {
			if d == rec.Digest {
				delete(s.tags, t)
			}
		}
		for _, r := range rec.Repos {
			rm.Images = append(rm.Images, r+"@"+rec.Digest)
		}
		for _, b := range rec.Blobs {
			if referenced[b.Digest]--; referenced[b.Digest] > 0 || s.pins[b.Digest] > 0 {
				continue
			}
			if err := os.Remove(s.BlobPath(b.Digest)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
				continue
			}
			rm.Bytes += b.Size
			if b.Digest == rec.Module {
				rm.Modules = append(rm.Modules, b.Digest)
			}
		}
	}
	if len(rm.Images) > 0 {
		if err := s.saveLocked(); err != nil {
			errs = append(errs, err)
		}
	}
	return rm, errors.Join(errs...)
}

// referencedLocked counts, per blob, the images that refer to it.
func (s *Store) referencedLocked() map[string]int {
	n := map[string]int{}
	for _, rec := range s.images {
		for _, b := range rec.Blobs {
			n[b.Digest]++
		}
	}
	return n
}

func (s *Store) pinnedLocked(rec *imageRecord) bool {
	if s.pins[rec.Digest] > 0 {
		return true
	}
	for _, b := range rec.Blobs {
		if s.pins[b.Digest] > 0 {
			return true
		}
	}
	return false
}
