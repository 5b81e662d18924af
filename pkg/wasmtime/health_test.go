package wasmtime

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestHealthy(t *testing.T) {
	p := newProvider(t, Options{DataDir: t.TempDir()})
	ctx := context.Background()
	if err := p.Healthy(ctx); err != nil {
		t.Fatalf("new provider: %v", err)
	}
	// The cache dir replaced by a file: root ignores modes, so this is how
	// a broken disk looks to the provider.
	cache := filepath.Join(p.opts.DataDir, compiledDir)
	if err := os.Rename(cache, cache+".away"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cache, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	err := p.Healthy(ctx)
	if err == nil || !strings.Contains(err.Error(), "compiled-module cache "+cache+" is not usable") {
		t.Fatalf("broken cache: err = %v", err)
	}
	if err := os.Remove(cache); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(cache+".away", cache); err != nil {
		t.Fatal(err)
	}
	if err := p.Healthy(ctx); err != nil {
		t.Fatalf("repaired cache: %v", err)
	}
	p.Close()
	if err := p.Healthy(ctx); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("closed provider: err = %v", err)
	}
}
