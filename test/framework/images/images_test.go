package images

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/krustlet/krustlet-go/test/framework/registry"
)

// layerFiles returns name → content (directories with a trailing slash and
// no content) and name → mode of the image's layer.
func layerFiles(t *testing.T, img *Image) (map[string]string, map[string]int64, digest.Digest) {
	t.Helper()
	b, err := img.Blob(img.Layer)
	if err != nil {
		t.Fatal(err)
	}
	gz, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(gz)
	if err != nil {
		t.Fatal(err)
	}
	files, modes := map[string]string{}, map[string]int64{}
	tr := tar.NewReader(bytes.NewReader(raw))
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(tr)
		files[hdr.Name], modes[hdr.Name] = string(body), hdr.Mode
	}
	return files, modes, digest.FromBytes(raw)
}

func TestBuildCtrTest(t *testing.T) {
	t.Setenv("KRUSTLET_CACHE_DIR", t.TempDir())
	const callers = 3
	imgs := make([]*Image, callers)
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() { imgs[i], errs[i] = Build(t.Context(), CtrTest) })
	}
	wg.Wait()
	for i := range callers {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if imgs[i].Manifest.Digest != imgs[0].Manifest.Digest {
			t.Errorf("caller %d got manifest %s, caller 0 got %s", i, imgs[i].Manifest.Digest, imgs[0].Manifest.Digest)
		}
	}
	img := imgs[0]

	files, modes, diffID := layerFiles(t, img)
	if bin := files["bin/ctrtest"]; !strings.HasPrefix(bin, "\x7fELF") {
		t.Errorf("bin/ctrtest is not an ELF executable (%d bytes)", len(bin))
	}
	if modes["bin/ctrtest"] != 0o755 || modes["tmp/"] != 0o1777 {
		t.Errorf("modes: bin/ctrtest %o, tmp/ %o; want 755, 1777", modes["bin/ctrtest"], modes["tmp/"])
	}
	for _, user := range []string{"root:x:0:0:", "nobody:x:65534:65534:"} {
		if !strings.Contains(files["etc/passwd"], user) {
			t.Errorf("etc/passwd has no %q line:\n%s", user, files["etc/passwd"])
		}
	}

	b, err := img.Blob(img.Config)
	if err != nil {
		t.Fatal(err)
	}
	var cfg ocispec.Image
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.OS != "linux" || cfg.Architecture != "amd64" {
		t.Errorf("platform %s/%s, want linux/amd64", cfg.OS, cfg.Architecture)
	}
	if got := strings.Join(cfg.Config.Entrypoint, " ") + " | " + strings.Join(cfg.Config.Cmd, " "); got != "/bin/ctrtest | serve 8080" {
		t.Errorf("entrypoint | cmd = %q", got)
	}
	if cfg.Config.WorkingDir != "/tmp" || len(cfg.Config.Env) == 0 || cfg.Config.Env[0] != "PATH=/bin" {
		t.Errorf("working dir %q, env %q", cfg.Config.WorkingDir, cfg.Config.Env)
	}
	if len(cfg.RootFS.DiffIDs) != 1 || cfg.RootFS.DiffIDs[0] != diffID {
		t.Errorf("diff IDs %v, want [%s] (the uncompressed layer)", cfg.RootFS.DiffIDs, diffID)
	}

	// A second build is a cache hit: same image, files untouched.
	fi, err := os.Stat(filepath.Join(img.dir, layerFile))
	if err != nil {
		t.Fatal(err)
	}
	again, err := Build(t.Context(), CtrTest)
	if err != nil || again.Manifest.Digest != img.Manifest.Digest {
		t.Fatalf("rebuild = %v, %v; want manifest %s", again, err, img.Manifest.Digest)
	}
	if fi2, _ := os.Stat(filepath.Join(again.dir, layerFile)); !fi2.ModTime().Equal(fi.ModTime()) {
		t.Error("the cached image was rebuilt")
	}
}

func TestBuildUnknownProgram(t *testing.T) {
	if _, err := Build(t.Context(), "no-such-program"); err == nil {
		t.Error("building an unknown program succeeded")
	}
}

func TestPush(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a registry")
	}
	if _, err := registry.FindBinary(); err != nil {
		t.Skip(err)
	}
	reg, err := registry.Start(t.Context(), registry.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Stop()

	img, err := Build(t.Context(), Pause)
	if err != nil {
		t.Fatal(err)
	}
	ref := MustPush(t, reg.Host, Pause)
	if want := reg.Host + "/pause:" + img.Tag; ref != want {
		t.Errorf("ref %s, want %s", ref, want)
	}
	// The registry serves the manifest under the tag, as an OCI manifest.
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+reg.Host+"/v2/pause/manifests/"+img.Tag, nil)
	req.Header.Set("Accept", ocispec.MediaTypeImageManifest)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || digest.FromBytes(body) != img.Manifest.Digest {
		t.Fatalf("GET manifest: %s, digest %s, want %s", resp.Status, digest.FromBytes(body), img.Manifest.Digest)
	}
	// A second push sends no blob again.
	uploads := reg.Count(http.MethodPost, "/blobs/uploads/")
	if uploads == 0 {
		t.Fatal("the first push started no blob upload")
	}
	if _, err := Push(t.Context(), reg.Host, Pause); err != nil {
		t.Fatal(err)
	}
	if n := reg.Count(http.MethodPost, "/blobs/uploads/"); n != uploads {
		t.Errorf("a second push started %d blob uploads", n-uploads)
	}
}
