// Package wasmbuild builds the WebAssembly test modules kept under test/wasm
// so that the tests of any package can run them.
//
// A Go module test/wasm/NAME (a main package of this repository that uses
// the standard library only) is built with GOOS=wasip1 GOARCH=wasm and
// -trimpath; a text module test/wasm/NAME.wat is compiled with wasmtime's
// Wat2Wasm. Results are cached under CacheDir()/wasm, keyed by the content
// of the sources (every file under test/wasm/NAME) and the Go version, so
// only the first test run after a change pays for the build (a few seconds
// for a Go module).
// Concurrent callers, in one process or many (go test runs packages in
// parallel), share one build through a file lock.
//
//	path := wasmbuild.MustBuild(t, "testmod")
//	img, err := p.PullImage(ctx, provider.PullRequest{Image: "fs/" + path, Policy: v1.PullIfNotPresent})
package wasmbuild

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/bytecodealliance/wasmtime-go/v39"

	"github.com/krustlet/krustlet-go/test/framework/checkout"
	"github.com/krustlet/krustlet-go/test/framework/gobuild"
)

// CacheDir is where built modules are kept between runs, under wasm/ (see
// checkout.CacheDir).
func CacheDir() string { return checkout.CacheDir() }

// SourceDir returns test/wasm of the krustlet-go checkout.
func SourceDir() (string, error) {
	root, err := checkout.Root()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "test", "wasm"), nil
}

// Build returns the path of the module built from the Go main package
// test/wasm/NAME, building it if the cache does not hold it yet.
func Build(ctx context.Context, name string) (string, error) {
	src, err := SourceDir()
	if err != nil {
		return "", err
	}
	pkgDir := filepath.Join(src, name)
	if fi, err := os.Stat(pkgDir); err != nil || !fi.IsDir() {
		return "", fmt.Errorf("no test module %q: %s is not a directory", name, pkgDir)
	}
	goBin, goVersion, err := gobuild.GoTool(ctx)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	fmt.Fprintf(h, "go build GOOS=wasip1 GOARCH=wasm -trimpath\n%s\n", goVersion)
	if err := gobuild.HashTree(h, pkgDir); err != nil {
		return "", err
	}
	out := cachedPath(name, h.Sum(nil), ".wasm")
	err = buildOnce(out, func(tmp string) error {
		cmd := exec.CommandContext(ctx, goBin, "build", "-trimpath", "-o", tmp, ".")
		cmd.Dir = pkgDir
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("building test module %s: %w\n%s", name, err, b)
		}
		return nil
	})
	return out, err
}

// BuildWAT returns the path of the binary module compiled from the text
// module test/wasm/NAME.wat.
func BuildWAT(ctx context.Context, name string) (string, error) {
	src, err := SourceDir()
	if err != nil {
		return "", err
	}
	wat, err := os.ReadFile(filepath.Join(src, name+".wat"))
	if err != nil {
		return "", fmt.Errorf("no text test module %q: %w", name, err)
	}
	sum := sha256.Sum256(wat)
	out := cachedPath(name, sum[:], ".wasm")
	err = buildOnce(out, func(tmp string) error {
		wasm, err := wasmtime.Wat2Wasm(string(wat))
		if err != nil {
			return fmt.Errorf("compiling %s.wat: %w", name, err)
		}
		return os.WriteFile(tmp, wasm, 0o644)
	})
	return out, err
}

// MustBuild is Build for tests: it fails tb on error.
func MustBuild(tb testing.TB, name string) string {
	tb.Helper()
	p, err := Build(tb.Context(), name)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// MustBuildWAT is BuildWAT for tests: it fails tb on error.
func MustBuildWAT(tb testing.TB, name string) string {
	tb.Helper()
	p, err := BuildWAT(tb.Context(), name)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

func cachedPath(name string, sum []byte, ext string) string {
	return filepath.Join(CacheDir(), "wasm", name+"-"+hex.EncodeToString(sum)[:16]+ext)
}

// buildOnce makes out exist: it takes an exclusive lock beside it, and
// unless another caller made it meanwhile, build writes a temporary file
// that is renamed to out.
func buildOnce(out string, build func(tmp string) error) error {
	if _, err := os.Stat(out); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	lock, err := os.OpenFile(out+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := gobuild.Lock(lock); err != nil {
		return fmt.Errorf("locking %s: %w", lock.Name(), err)
	}
	if _, err := os.Stat(out); err == nil {
		return nil
	}
	tmp := fmt.Sprintf("%s.tmp%d", out, os.Getpid())
	defer os.Remove(tmp)
	if err := build(tmp); err != nil {
		return err
	}
	return os.Rename(tmp, out)
}
