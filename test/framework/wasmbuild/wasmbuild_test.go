package wasmbuild

import (
	"bytes"
	"os"
	"sync"
	"testing"
)

var wasmMagic = []byte{0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00}

func TestBuildConcurrentCallersShareOneModule(t *testing.T) {
	t.Setenv("KRUSTLET_CACHE_DIR", t.TempDir())
	const callers = 4
	paths := make([]string, callers)
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() { paths[i], errs[i] = Build(t.Context(), "testmod") })
	}
	wg.Wait()
	for i := range callers {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if paths[i] != paths[0] {
			t.Errorf("caller %d got %s, caller 0 got %s", i, paths[i], paths[0])
		}
	}
	b, err := os.ReadFile(paths[0])
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, wasmMagic) {
		t.Errorf("%s is not a WebAssembly module", paths[0])
	}
	// A second build is a cache hit: same path, file untouched.
	fi, _ := os.Stat(paths[0])
	again, err := Build(t.Context(), "testmod")
	if err != nil || again != paths[0] {
		t.Fatalf("rebuild = %s, %v; want %s", again, err, paths[0])
	}
	if fi2, _ := os.Stat(again); !fi2.ModTime().Equal(fi.ModTime()) {
		t.Error("the cached module was rebuilt")
	}
}

func TestBuildWAT(t *testing.T) {
	t.Setenv("KRUSTLET_CACHE_DIR", t.TempDir())
	p := MustBuildWAT(t, "trap")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, wasmMagic) {
		t.Errorf("%s is not a WebAssembly module", p)
	}
}

func TestBuildUnknownModule(t *testing.T) {
	if _, err := Build(t.Context(), "no-such-module"); err == nil {
		t.Error("building an unknown module succeeded")
	}
	if _, err := BuildWAT(t.Context(), "no-such-module"); err == nil {
		t.Error("compiling an unknown text module succeeded")
	}
}
