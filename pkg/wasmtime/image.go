package wasmtime

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"

	"github.com/krustlet/krustlet-go/pkg/provider"
)

// ModuleSource fetches the modules of images that are not local files, e.g.
// from an OCI registry (package registry implements it). It must be safe for
// concurrent use.
type ModuleSource interface {
	// Fetch makes the module of req.Image available on this node,
	// honouring req.Policy and trying req.Credentials, and returns the
	// image and where its module is. Errors wrap provider.ErrImagePull,
	// provider.ErrImageNeverPull or provider.ErrImageInspect.
	Fetch(ctx context.Context, req provider.PullRequest) (provider.Image, ModuleBlob, error)
}

// ModuleBlob locates the bytes of one module.
type ModuleBlob struct {
	// Digest is the digest of the module's bytes, "sha256:" and 64 hex
	// digits. It keys the compiled-module cache: a module compiled before
	// is not read again. When the module is read, its digest is checked.
	Digest string
	// Path is a file holding exactly the module; if empty, Data is the
	// module.
	Path string
	Data []byte
}

// localPrefix starts an image reference that names a local file, as in
// krustlet: fs//abs/path.wasm (or fs/relative/path.wasm, relative to the
// node's working directory).
const localPrefix = "fs/"

// wasmMagic starts every core WebAssembly module: "\0asm" and version 1.
var wasmMagic = []byte{0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00}

// PullImage makes the module of req.Image available and compiled on this
// node: a local file (fs/PATH, when AllowLocalModules is set) or whatever
// the ModuleSource fetches. It returns once the module is compiled, so a
// module that is not valid WebAssembly fails here, wrapping
// provider.ErrImageInspect, rather than at start.
func (p *Provider) PullImage(ctx context.Context, req provider.PullRequest) (provider.Image, error) {
	logger := klog.FromContext(ctx).WithValues("image", req.Image)
	var (
		img  provider.Image
		blob ModuleBlob
		err  error
	)
	switch path, local := strings.CutPrefix(req.Image, localPrefix); {
	case local && p.opts.AllowLocalModules:
		img, blob, err = p.localModule(path, req.Policy)
	case local:
		err = fmt.Errorf("%w: %q names a local module file, but this node does not allow local modules (--x-allow-local-modules)", provider.ErrImagePull, req.Image)
	case p.opts.Source != nil:
		img, blob, err = p.opts.Source.Fetch(ctx, req)
	case req.Policy == v1.PullNever:
		err = fmt.Errorf("%w: %q is not on this node, and it has no registry configured", provider.ErrImageNeverPull, req.Image)
	default:
		err = fmt.Errorf("%w: cannot pull %q: no registry is configured on this node (only local modules, fs/PATH, can run)", provider.ErrImagePull, req.Image)
	}
	if err != nil {
		return provider.Image{}, err
	}
	if _, err := parseDigest(blob.Digest); err != nil {
		return provider.Image{}, fmt.Errorf("%w: %q: module source gave %w", provider.ErrImagePull, req.Image, err)
	}
	if _, err := p.module(ctx, blob); err != nil {
		return provider.Image{}, err
	}
	p.mu.Lock()
	p.images[img.ID] = blob.Digest
	p.mu.Unlock()
	logger.V(2).Info("Module ready", "imageID", img.ID, "size", img.Size)
	return img, nil
}

// localModule reads a local module file. Every pull policy reads the file
// again: it is on this node already, and it may have been rebuilt.
func (p *Provider) localModule(path string, policy v1.PullPolicy) (provider.Image, ModuleBlob, error) {
	if path == "" {
		return provider.Image{}, ModuleBlob{}, fmt.Errorf("%w: %q names no file", provider.ErrImageInspect, localPrefix)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return provider.Image{}, ModuleBlob{}, fmt.Errorf("%w: %w", provider.ErrImagePull, err)
	}
	data, err := os.ReadFile(abs)
	if errors.Is(err, fs.ErrNotExist) {
		// krustlet ignored a :tag after the path.
		if i := strings.LastIndexByte(abs, ':'); i > strings.LastIndexByte(abs, '/') {
			if d, err2 := os.ReadFile(abs[:i]); err2 == nil {
				abs, data, err = abs[:i], d, nil
			}
		}
	}
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) && policy == v1.PullNever {
			return provider.Image{}, ModuleBlob{}, fmt.Errorf("%w: local module %s does not exist", provider.ErrImageNeverPull, abs)
		}
		return provider.Image{}, ModuleBlob{}, fmt.Errorf("%w: reading local module: %w", provider.ErrImagePull, err)
	}
	if err := checkMagic(data); err != nil {
		return provider.Image{}, ModuleBlob{}, fmt.Errorf("%w: %s %w", provider.ErrImageInspect, abs, err)
	}
	sum := sha256.Sum256(data)
	digest := "sha256:" + hex.EncodeToString(sum[:])
	img := provider.Image{
		Ref:            localPrefix + abs,
		ID:             localPrefix + abs + "@" + digest,
		Size:           int64(len(data)),
		AlreadyPresent: true, // a local file is never downloaded
	}
	return img, ModuleBlob{Digest: digest, Data: data}, nil
}

// checkMagic tells a core module from anything else, with a message a user
// understands.
func checkMagic(b []byte) error {
	switch {
	case bytes.HasPrefix(b, wasmMagic):
		return nil
	case len(b) >= 8 && bytes.Equal(b[:4], wasmMagic[:4]):
		return errors.New("is a WebAssembly component or a future module format; only WASI preview 1 core modules can run")
	case bytes.HasPrefix(bytes.TrimSpace(b), []byte("(")) || bytes.HasPrefix(bytes.TrimSpace(b), []byte(";;")):
		return errors.New("is WebAssembly text; compile it to a binary module first")
	default:
		return errors.New("is not a WebAssembly module (bad magic number)")
	}
}

// parseDigest returns the hex part of a sha256 digest.
func parseDigest(d string) (string, error) {
	h, ok := strings.CutPrefix(d, "sha256:")
	if !ok || len(h) != sha256.Size*2 {
		return "", fmt.Errorf("invalid module digest %q", d)
	}
	if _, err := hex.DecodeString(h); err != nil {
		return "", fmt.Errorf("invalid module digest %q", d)
	}
	return h, nil
}

// readBlob returns the module's bytes, checked against its digest.
func readBlob(b ModuleBlob) ([]byte, error) {
	data := b.Data
	if b.Path != "" {
		f, err := os.Open(b.Path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		if data, err = io.ReadAll(f); err != nil {
			return nil, err
		}
	}
	sum := sha256.Sum256(data)
	if got := "sha256:" + hex.EncodeToString(sum[:]); got != b.Digest {
		return nil, fmt.Errorf("module content has digest %s, want %s", got, b.Digest)
	}
	return data, nil
}
