package wasmtime

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/bytecodealliance/wasmtime-go/v39"

	"github.com/krustlet/krustlet-go/pkg/provider"
)

const (
	compiledDir = "compiled"
	runsDir     = "runs"
	// wasmPage is the size of a WebAssembly memory page.
	wasmPage = 64 << 10
)

// compiled is a module ready to instantiate, with what runs need to know of
// it. It is shared by every run of the module.
type compiled struct {
	module *wasmtime.Module
	digest string
	// minMemory is the initial size in bytes of the memory the module
	// defines, 0 if it defines none.
	minMemory uint64
	// missing lists the imports the linker cannot satisfy, as module::name.
	missing []string
	// noStart is set when the module exports no _start function.
	noStart bool
}

// module returns the compiled module for blob: from memory, from the
// on-disk cache, or compiled now. Concurrent callers for one digest share
// one load; a caller whose ctx ends stops waiting but the load goes on, so a
// retry finds it done.
func (p *Provider) module(ctx context.Context, blob ModuleBlob) (*compiled, error) {
	p.mu.Lock()
	c := p.modules[blob.Digest]
	p.mu.Unlock()
	if c != nil {
		return c, nil
	}
	ch := p.compileGroup.DoChan(blob.Digest, func() (any, error) {
		c, err := p.load(blob)
		if err != nil {
			return nil, err
		}
		p.mu.Lock()
		p.modules[blob.Digest] = c
		p.mu.Unlock()
		return c, nil
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		return res.Val.(*compiled), nil
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: waiting for module %s to compile: %w", provider.ErrImagePull, blob.Digest, ctx.Err())
	}
}

// cachePath is where the compiled form of the module with digest is kept.
// The name carries the wasmtime version and the engine settings, so an
// upgraded node never tries a module compiled by another wasmtime (wasmtime
// would refuse it anyway; the key saves the attempt).
func (p *Provider) cachePath(digest string) string {
	h := sha256.Sum256([]byte(p.version + "\n" + engineSettings + "\n" + runtime.GOARCH))
	hexDigest, _ := parseDigest(digest)
	return filepath.Join(p.opts.DataDir, compiledDir, hexDigest+"-"+hex.EncodeToString(h[:6])+".cwasm")
}

// load returns the module from the compiled cache, or compiles it and fills
// the cache. A cache entry that is missing, corrupt or stale is compiled
// again, never an error; failing to write the cache is only logged.
func (p *Provider) load(blob ModuleBlob) (*compiled, error) {
	logger := p.log.WithValues("digest", blob.Digest)
	path := p.cachePath(blob.Digest)
	m, err := p.loadCached(path)
	switch {
	case err == nil:
		logger.V(4).Info("Loaded compiled module from cache", "path", path)
	case os.IsNotExist(err):
	default:
		logger.Info("Compiled module cache entry unusable; compiling again", "path", path, "err", err)
		os.Remove(path)
		os.Remove(path + sumSuffix)
	}
	if m == nil {
		data, err := readBlob(blob)
		if err != nil {
			return nil, fmt.Errorf("%w: reading module %s: %w", provider.ErrImagePull, blob.Digest, err)
		}
		if err := checkMagic(data); err != nil {
			return nil, fmt.Errorf("%w: module %s %w", provider.ErrImageInspect, blob.Digest, err)
		}
		start := p.opts.Clock.Now()
		p.compiles.Add(1)
		if m, err = wasmtime.NewModule(p.engine, data); err != nil {
			return nil, fmt.Errorf("%w: module %s is not valid WebAssembly: %s", provider.ErrImageInspect, blob.Digest, cleanMessage(err.Error()))
		}
		logger.V(2).Info("Compiled module", "duration", p.opts.Clock.Since(start), "size", len(data))
		if err := p.storeCached(path, m); err != nil {
			logger.Info("Could not cache compiled module", "path", path, "err", err)
		}
	}
	c := p.inspect(m)
	c.digest = blob.Digest
	if c.noStart {
		return nil, fmt.Errorf("%w: module %s exports no _start function: it is not a WASI command (reactor modules cannot run as containers)", provider.ErrImageInspect, blob.Digest)
	}
	return c, nil
}

// sumSuffix names the file beside a cache entry that holds the SHA-256 of
// the entry. wasmtime checks the header of a serialized module but not its
// code, so a damaged entry is caught by the sum before it is mapped.
const sumSuffix = ".sha256"

func (p *Provider) loadCached(path string) (*wasmtime.Module, error) {
	want, err := os.ReadFile(path + sumSuffix)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	_, err = io.Copy(h, f)
	f.Close()
	if err != nil {
		return nil, err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != strings.TrimSpace(string(want)) {
		return nil, fmt.Errorf("checksum mismatch: content has %s, %s%s says %s", got, filepath.Base(path), sumSuffix, want)
	}
	m, err := wasmtime.NewModuleDeserializeFile(p.engine, path)
	if err != nil {
		return nil, fmt.Errorf("deserializing: %s", cleanMessage(err.Error()))
	}
	return m, nil
}

// storeCached writes the compiled module and its sum, each to a temporary
// file renamed into place, so readers never see a partial file.
func (p *Provider) storeCached(path string, m *wasmtime.Module) error {
	b, err := m.Serialize()
	if err != nil {
		return err
	}
	sum := sha256.Sum256(b)
	if err := writeAtomic(path, b); err != nil {
		return err
	}
	return writeAtomic(path+sumSuffix, []byte(hex.EncodeToString(sum[:])+"\n"))
}

func writeAtomic(path string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

// inspect reads what runs need from the module's imports and exports.
func (p *Provider) inspect(m *wasmtime.Module) *compiled {
	c := &compiled{module: m, noStart: true}
	for _, e := range m.Exports() {
		ty := e.Type()
		if ft := ty.FuncType(); ft != nil && e.Name() == "_start" {
			c.noStart = false
		}
		if mt := ty.MemoryType(); mt != nil && e.Name() == "memory" {
			c.minMemory = mt.Minimum() * wasmPage
		}
	}
	store := wasmtime.NewStore(p.engine)
	defer store.Close()
	for _, imp := range m.Imports() {
		name := ""
		if n := imp.Name(); n != nil {
			name = *n
		}
		if p.linker.Get(store, imp.Module(), name) == nil {
			c.missing = append(c.missing, imp.Module()+"::"+name)
		}
	}
	return c
}

// ForgetModule drops the compiled form of the module with digest, from
// memory and from the on-disk cache: image garbage collection calls it once
// the module's bytes are gone from the node. Runs in progress keep the
// compiled module they hold; a later pull of an image with this module
// compiles it again. It is safe for concurrent use.
func (p *Provider) ForgetModule(digest string) {
	p.mu.Lock()
	delete(p.modules, digest)
	for id, d := range p.images {
		if d == digest {
			delete(p.images, id)
		}
	}
	p.mu.Unlock()
	if _, err := parseDigest(digest); err != nil {
		return
	}
	path := p.cachePath(digest)
	for _, f := range []string{path, path + sumSuffix} {
		if err := os.Remove(f); err != nil && !os.IsNotExist(err) {
			p.log.Info("Could not remove compiled module", "path", f, "err", err)
		}
	}
}
