package images

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/krustlet/krustlet-go/test/framework/checkout"
	"github.com/krustlet/krustlet-go/test/framework/gobuild"
)

// The programs under test/ctr that have images.
const (
	// Pause sleeps until SIGTERM or SIGINT and reaps children: the sandbox
	// image.
	Pause = "pause"
	// CtrTest runs the actions its arguments name (see test/ctr/ctrtest);
	// the image's Cmd is "serve 8080".
	CtrTest = "ctrtest"
)

// layout names the image layout below; change it when the layout changes so
// that cached images are rebuilt.
const layout = "krustlet-ctr-image/1"

// config is what an image's config says beyond the platform and the layer.
type config struct {
	Entrypoint []string `json:"entrypoint"`
	Cmd        []string `json:"cmd,omitempty"`
	Env        []string `json:"env"`
	WorkingDir string   `json:"workingDir"`
}

// configFor returns the config of the image of program name.
func configFor(name string) config {
	c := config{
		Entrypoint: []string{"/bin/" + name},
		Env:        []string{"PATH=/bin"},
		WorkingDir: "/",
	}
	if name == CtrTest {
		c.Cmd = []string{"serve", "8080"}
		c.Env = append(c.Env, "CTRTEST_IMAGE=ctrtest")
		c.WorkingDir = "/tmp"
	}
	return c
}

// The files of every image beside its program.
const (
	passwd = "root:x:0:0:root:/root:/bin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/bin/nologin\n"
	group  = "root:x:0:\nnogroup:x:65534:\n"
)

// modTime is the time of every file in a layer, so that a layer depends on
// its content only.
var modTime = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// Image is a built image whose blobs are in the cache.
type Image struct {
	// Name is the program's name, the repository's name when pushed.
	Name string
	// Tag is derived from the content hash of the image's inputs.
	Tag string
	// Manifest, Config and Layer describe the image's blobs.
	Manifest, Config, Layer ocispec.Descriptor

	dir string
}

// CacheDir is where built images are kept between runs, under ctr/ (see
// checkout.CacheDir).
func CacheDir() string { return checkout.CacheDir() }

// SourceDir returns test/ctr of the krustlet-go checkout.
func SourceDir() (string, error) {
	root, err := checkout.Root()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "test", "ctr"), nil
}

// Build returns the image of the Go main package test/ctr/NAME, building it
// if the cache does not hold it yet.
func Build(ctx context.Context, name string) (*Image, error) {
	src, err := SourceDir()
	if err != nil {
		return nil, err
	}
	pkgDir := filepath.Join(src, name)
	if fi, err := os.Stat(pkgDir); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("no test program %q: %s is not a directory", name, pkgDir)
	}
	goBin, goVersion, err := gobuild.GoTool(ctx)
	if err != nil {
		return nil, err
	}
	cfg := configFor(name)
	h := sha256.New()
	cfgJSON, _ := json.Marshal(cfg)
	fmt.Fprintf(h, "%s\n%s\ngo build CGO_ENABLED=0 GOOS=linux GOARCH=amd64 -trimpath\n%s\n", layout, goVersion, cfgJSON)
	if err := gobuild.HashTree(h, pkgDir); err != nil {
		return nil, err
	}
	sum := hex.EncodeToString(h.Sum(nil))[:16]
	dir := filepath.Join(CacheDir(), "ctr", name+"-"+sum)
	err = buildOnce(dir, func(tmp string) error {
		bin := filepath.Join(tmp, name)
		cmd := exec.CommandContext(ctx, goBin, "build", "-trimpath", "-o", bin, ".")
		cmd.Dir = pkgDir
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("building test program %s: %w\n%s", name, err, b)
		}
		err := pack(tmp, name, bin, cfg)
		os.Remove(bin)
		return err
	})
	if err != nil {
		return nil, err
	}
	return load(dir, name, sum)
}

// Files of an image in its cache directory.
const (
	layerFile    = "layer.tar.gz"
	configFile   = "config.json"
	manifestFile = "manifest.json"
)

// pack writes the layer, config and manifest of the image of program name
// (built at bin) into dir.
func pack(dir, name, bin string, cfg config) error {
	program, err := os.ReadFile(bin)
	if err != nil {
		return err
	}
	var tarball bytes.Buffer
	tw := tar.NewWriter(&tarball)
	entries := []struct {
		name string
		mode int64
		body string
	}{
		{"bin/", 0o755, ""},
		{"bin/" + name, 0o755, string(program)},
		{"etc/", 0o755, ""},
		{"etc/group", 0o644, group},
		{"etc/passwd", 0o644, passwd},
		{"tmp/", 0o1777, ""},
	}
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Mode: e.mode, ModTime: modTime, Format: tar.FormatPAX}
		if strings.HasSuffix(e.name, "/") {
			hdr.Typeflag = tar.TypeDir
		} else {
			hdr.Typeflag, hdr.Size = tar.TypeReg, int64(len(e.body))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := io.WriteString(tw, e.body); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	var layer bytes.Buffer
	gz := gzip.NewWriter(&layer)
	if _, err := gz.Write(tarball.Bytes()); err != nil {
		return err
	}
	if err := gz.Close(); err != nil {
		return err
	}
	img := ocispec.Image{
		Created:  &modTime,
		Platform: ocispec.Platform{Architecture: "amd64", OS: "linux"},
		Config: ocispec.ImageConfig{
			Entrypoint: cfg.Entrypoint,
			Cmd:        cfg.Cmd,
			Env:        cfg.Env,
			WorkingDir: cfg.WorkingDir,
		},
		// The diff ID is the digest of the uncompressed layer; containerd
		// checks it when it unpacks.
		RootFS: ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{digest.FromBytes(tarball.Bytes())}},
	}
	configJSON, err := json.Marshal(img)
	if err != nil {
		return err
	}
	manifest := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    descriptor(ocispec.MediaTypeImageConfig, configJSON),
		Layers:    []ocispec.Descriptor{descriptor(ocispec.MediaTypeImageLayerGzip, layer.Bytes())},
	}
	manifestJSON, err := json.Marshal(manifest)
	if err != nil {
		return err
	}
	for file, data := range map[string][]byte{layerFile: layer.Bytes(), configFile: configJSON, manifestFile: manifestJSON} {
		if err := os.WriteFile(filepath.Join(dir, file), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func descriptor(mediaType string, data []byte) ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(data), Size: int64(len(data))}
}

// load reads the descriptors of a cached image.
func load(dir, name, tag string) (*Image, error) {
	b, err := os.ReadFile(filepath.Join(dir, manifestFile))
	if err != nil {
		return nil, fmt.Errorf("reading cached image %s: %w", name, err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(b, &m); err != nil || len(m.Layers) != 1 {
		return nil, fmt.Errorf("cached image %s has a bad manifest (%v); remove %s", name, err, dir)
	}
	return &Image{
		Name:     name,
		Tag:      tag,
		Manifest: descriptor(ocispec.MediaTypeImageManifest, b),
		Config:   m.Config,
		Layer:    m.Layers[0],
		dir:      dir,
	}, nil
}

// Blob returns the content of one of the image's blobs (its manifest,
// config or layer), checked against the descriptor.
func (img *Image) Blob(d ocispec.Descriptor) ([]byte, error) {
	var file string
	switch d.Digest {
	case img.Manifest.Digest:
		file = manifestFile
	case img.Config.Digest:
		file = configFile
	case img.Layer.Digest:
		file = layerFile
	default:
		return nil, fmt.Errorf("image %s has no blob %s", img.Name, d.Digest)
	}
	b, err := os.ReadFile(filepath.Join(img.dir, file))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) != d.Size || digest.FromBytes(b) != d.Digest {
		return nil, fmt.Errorf("cached blob %s of image %s does not match its descriptor; remove %s", file, img.Name, img.dir)
	}
	return b, nil
}

// Push pushes the image to the plain-HTTP registry at host (host:port) as
// repository Name, tag Tag, and returns the reference, host/name:tag. Blobs
// the registry has already are not sent again.
func (img *Image) Push(ctx context.Context, host string) (string, error) {
	ref := host + "/" + img.Name + ":" + img.Tag
	repo, err := remote.NewRepository(host + "/" + img.Name)
	if err != nil {
		return "", err
	}
	repo.PlainHTTP = true
	repo.Client = http.DefaultClient
	for _, d := range []ocispec.Descriptor{img.Layer, img.Config} {
		if ok, err := repo.Exists(ctx, d); err != nil {
			return "", fmt.Errorf("pushing %s: %w", ref, err)
		} else if ok {
			continue
		}
		b, err := img.Blob(d)
		if err != nil {
			return "", err
		}
		if err := repo.Push(ctx, d, bytes.NewReader(b)); err != nil {
			return "", fmt.Errorf("pushing blob %s of %s: %w", d.Digest, ref, err)
		}
	}
	b, err := img.Blob(img.Manifest)
	if err != nil {
		return "", err
	}
	if err := repo.PushReference(ctx, img.Manifest, bytes.NewReader(b), img.Tag); err != nil {
		return "", fmt.Errorf("pushing the manifest of %s: %w", ref, err)
	}
	return ref, nil
}

// Push builds the image of program name (see Build) and pushes it to the
// plain-HTTP registry at registryHost (host:port); it returns the image's
// reference, registryHost/name:tag.
func Push(ctx context.Context, registryHost, name string) (ref string, err error) {
	img, err := Build(ctx, name)
	if err != nil {
		return "", err
	}
	return img.Push(ctx, registryHost)
}

// MustPush is Push for tests: it fails tb on error.
func MustPush(tb testing.TB, registryHost, name string) string {
	tb.Helper()
	ref, err := Push(tb.Context(), registryHost, name)
	if err != nil {
		tb.Fatal(err)
	}
	return ref
}

// buildOnce makes dir exist: it takes an exclusive lock beside it, and
// unless another caller made it meanwhile, build fills a temporary
// directory that is renamed to dir.
func buildOnce(dir string, build func(tmp string) error) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	lock, err := os.OpenFile(dir+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := gobuild.Lock(lock); err != nil {
		return fmt.Errorf("locking %s: %w", lock.Name(), err)
	}
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".build-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := build(tmp); err != nil {
		return err
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	return os.Rename(tmp, dir)
}
