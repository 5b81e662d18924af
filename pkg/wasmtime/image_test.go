package wasmtime

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	v1 "k8s.io/api/core/v1"

	"github.com/krustlet/krustlet-go/pkg/provider"
)

// helloWAT prints "hello" and returns from _start (exit 0).
const helloWAT = `(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "hello\n")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 6))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))`

func TestPullLocalModule(t *testing.T) {
	p := shared(t)
	path := watModule(t, helloWAT)
	b, _ := os.ReadFile(path)
	sum := sha256.Sum256(b)
	for _, ref := range []string{"fs/" + path, "fs/" + path + ":v1"} {
		img, err := p.PullImage(testContext(t), provider.PullRequest{Image: ref, Policy: v1.PullAlways})
		if err != nil {
			t.Fatal(err)
		}
		want := provider.Image{Ref: "fs/" + path, ID: "fs/" + path + "@sha256:" + hex.EncodeToString(sum[:]), Size: int64(len(b)), AlreadyPresent: true}
		if img != want {
			t.Errorf("PullImage(%q) = %+v, want %+v", ref, img, want)
		}
	}
}

func TestPullErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	text := write("script.sh", "#!/bin/sh\necho hi\n")
	wat := write("hello.wat", helloWAT)
	invalid := write("invalid.wasm", string(wasmMagic)+"\x01\xff\xff\xff")
	component := write("component.wasm", "\x00asm\x0d\x00\x01\x00")
	reactor := watModule(t, `(module (memory (export "memory") 1) (func (export "_initialize")))`)

	local := shared(t)
	noLocal := newProvider(t, Options{})
	for _, tc := range []struct {
		name   string
		p      *Provider
		image  string
		policy v1.PullPolicy
		is     error
		want   string
	}{
		{"missing file, policy Never", local, "fs/" + dir + "/nope.wasm", v1.PullNever, provider.ErrImageNeverPull, "does not exist"},
		{"missing file", local, "fs/" + dir + "/nope.wasm", v1.PullIfNotPresent, provider.ErrImagePull, "no such file"},
		{"not WebAssembly", local, "fs/" + text, v1.PullIfNotPresent, provider.ErrImageInspect, "bad magic"},
		{"WebAssembly text", local, "fs/" + wat, v1.PullIfNotPresent, provider.ErrImageInspect, "compile it"},
		{"a component", local, "fs/" + component, v1.PullIfNotPresent, provider.ErrImageInspect, "component"},
		{"invalid module", local, "fs/" + invalid, v1.PullIfNotPresent, provider.ErrImageInspect, "not valid WebAssembly"},
		{"reactor module", local, "fs/" + reactor, v1.PullIfNotPresent, provider.ErrImageInspect, "no _start"},
		{"empty path", local, "fs/", v1.PullIfNotPresent, provider.ErrImageInspect, "names no file"},
		{"registry without a source", local, "ghcr.io/example/app:v1", v1.PullIfNotPresent, provider.ErrImagePull, "no registry is configured"},
		{"registry without a source, policy Never", local, "ghcr.io/example/app:v1", v1.PullNever, provider.ErrImageNeverPull, "not on this node"},
		{"local modules not allowed", noLocal, "fs/" + reactor, v1.PullIfNotPresent, provider.ErrImagePull, "--x-allow-local-modules"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.p.PullImage(testContext(t), provider.PullRequest{Image: tc.image, Policy: tc.policy})
			if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %v mentioning %q", err, tc.is, tc.want)
			}
		})
	}
}

// fakeSource serves one module from a file, as a registry client would.
type fakeSource struct {
	path, digest string
	fetches      int
	mu           sync.Mutex
}

func (f *fakeSource) Fetch(_ context.Context, req provider.PullRequest) (provider.Image, ModuleBlob, error) {
	f.mu.Lock()
	f.fetches++
	f.mu.Unlock()
	if req.Image != "registry.example/hello:v1" {
		return provider.Image{}, ModuleBlob{}, errors.Join(provider.ErrImagePull, errors.New("manifest unknown"))
	}
	return provider.Image{Ref: req.Image, ID: "registry.example/hello@sha256:" + strings.Repeat("ab", 32), Size: 1},
		ModuleBlob{Digest: f.digest, Path: f.path}, nil
}

func TestModuleSource(t *testing.T) {
	path := watModule(t, helloWAT)
	b, _ := os.ReadFile(path)
	sum := sha256.Sum256(b)
	src := &fakeSource{path: path, digest: "sha256:" + hex.EncodeToString(sum[:])}
	p := newProvider(t, Options{Source: src})
	ctx := testContext(t)

	// Concurrent pulls of one module compile it once.
	var wg sync.WaitGroup
	imgs := make([]provider.Image, 8)
	for i := range imgs {
		wg.Go(func() {
			var err error
			imgs[i], err = p.PullImage(ctx, provider.PullRequest{Image: "registry.example/hello:v1", Policy: v1.PullIfNotPresent})
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := p.compiles.Load(); n != 1 {
		t.Errorf("%d compiles for 8 concurrent pulls of one module", n)
	}
	cfg, stdout, stderr := config(imgs[0])
	if r := runToEnd(t, p, cfg, stdout, stderr); r.status.ExitCode != 0 || r.stdout != "hello\n" {
		t.Errorf("run: %+v, stdout %q", r.status, r.stdout)
	}

	if _, err := p.PullImage(ctx, provider.PullRequest{Image: "registry.example/other:v1", Policy: v1.PullIfNotPresent}); !errors.Is(err, provider.ErrImagePull) || !strings.Contains(err.Error(), "manifest unknown") {
		t.Errorf("source error: %v", err)
	}

	// A blob whose content does not match its digest is refused.
	bad := &fakeSource{path: path, digest: "sha256:" + strings.Repeat("0", 64)}
	p2 := newProvider(t, Options{Source: bad})
	if _, err := p2.PullImage(ctx, provider.PullRequest{Image: "registry.example/hello:v1", Policy: v1.PullIfNotPresent}); !errors.Is(err, provider.ErrImagePull) || !strings.Contains(err.Error(), "digest") {
		t.Errorf("digest mismatch: %v", err)
	}
}

func TestCompiledCacheRecovery(t *testing.T) {
	module := watModule(t, helloWAT)
	dir := t.TempDir()
	first := newProvider(t, Options{DataDir: dir, AllowLocalModules: true})
	img := pull(t, first, module)
	if n := first.compiles.Load(); n != 1 {
		t.Fatalf("first pull: %d compiles, want 1", n)
	}
	cached := first.cachePath(first.images[img.ID])
	good, err := os.ReadFile(cached)
	if err != nil {
		t.Fatal(err)
	}
	goodSum := good
	if goodSum, err = os.ReadFile(cached + sumSuffix); err != nil {
		t.Fatal(err)
	}

	sumOf := func(b []byte) []byte { s := sha256.Sum256(b); return []byte(hex.EncodeToString(s[:])) }
	garbage := []byte("this is not a compiled module")
	flipped := append([]byte(nil), good...)
	flipped[len(flipped)/2] ^= 0xff
	for _, tc := range []struct {
		name         string
		content, sum []byte
		compiles     int64
	}{
		{"intact", good, goodSum, 0},
		{"garbage", garbage, goodSum, 1},
		{"garbage with a matching sum", garbage, sumOf(garbage), 1},
		{"truncated", good[:len(good)/2], goodSum, 1},
		{"one byte changed", flipped, goodSum, 1},
		{"sum missing", good, nil, 1},
		{"entry missing", nil, nil, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			os.Remove(cached)
			os.Remove(cached + sumSuffix)
			if tc.content != nil {
				os.WriteFile(cached, tc.content, 0o644)
			}
			if tc.sum != nil {
				os.WriteFile(cached+sumSuffix, tc.sum, 0o644)
			}
			p := newProvider(t, Options{DataDir: dir, AllowLocalModules: true})
			img := pull(t, p, module)
			if n := p.compiles.Load(); n != tc.compiles {
				t.Errorf("%d compiles, want %d", n, tc.compiles)
			}
			cfg, stdout, stderr := config(img)
			if r := runToEnd(t, p, cfg, stdout, stderr); r.status.ExitCode != 0 || r.stdout != "hello\n" {
				t.Errorf("run: %+v, stdout %q", r.status, r.stdout)
			}
			// The entry is whole again.
			if _, err := p.loadCached(cached); err != nil {
				t.Errorf("cache entry after recovery: %v", err)
			}
		})
	}
	if tmp, _ := filepath.Glob(filepath.Join(dir, compiledDir, ".tmp-*")); len(tmp) > 0 {
		t.Errorf("temporary files left: %v", tmp)
	}
}

// ForgetModule drops the compiled module from memory and from the cache, so
// the next pull compiles it again.
func TestForgetModule(t *testing.T) {
	module := watModule(t, helloWAT)
	p := newProvider(t, Options{AllowLocalModules: true})
	img := pull(t, p, module)
	digest := p.images[img.ID]
	cached := p.cachePath(digest)
	if _, err := os.Stat(cached); err != nil {
		t.Fatalf("compiled module not cached: %v", err)
	}
	p.ForgetModule(digest)
	for _, f := range []string{cached, cached + sumSuffix} {
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Errorf("%s still exists (%v)", f, err)
		}
	}
	p.mu.Lock()
	_, inMemory := p.modules[digest]
	_, imageKnown := p.images[img.ID]
	p.mu.Unlock()
	if inMemory || imageKnown {
		t.Errorf("module in memory %v, image known %v after ForgetModule", inMemory, imageKnown)
	}
	if _, err := p.StartContainer(testContext(t), provider.ContainerConfig{ID: "forgotten", Image: img}); !errors.Is(err, provider.ErrCreateContainer) {
		t.Errorf("start of a forgotten image: %v, want ErrCreateContainer", err)
	}
	pull(t, p, module)
	if n := p.compiles.Load(); n != 2 {
		t.Errorf("%d compiles, want 2 (once more after ForgetModule)", n)
	}
	p.ForgetModule("not a digest") // no-op
}
