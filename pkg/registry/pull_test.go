package registry

import (
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2/ktesting"

	"github.com/krustlet/krustlet-go/pkg/provider"
	fw "github.com/krustlet/krustlet-go/test/framework/registry"
)

// startRegistry starts a real registry for t (not in -short mode).
func startRegistry(t *testing.T, mode fw.AuthMode, users map[string]string) *fw.Registry {
	t.Helper()
	if testing.Short() {
		t.Skip("needs a real registry; skipped in -short mode")
	}
	r, err := fw.Start(context.Background(), fw.Options{Dir: t.TempDir(), Auth: mode, Users: users})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Stop(); err != nil {
			t.Errorf("stopping the registry: %v", err)
		}
	})
	return r
}

func newTestRegistry(t *testing.T, o Options) *Registry {
	t.Helper()
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	r, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func ctxFor(t *testing.T) context.Context {
	_, ctx := ktesting.NewTestContext(t)
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func pullOK(t *testing.T, r *Registry, image string, policy v1.PullPolicy, creds ...provider.Credential) (provider.Image, Module) {
	t.Helper()
	img, m, err := r.Pull(ctxFor(t), provider.PullRequest{Image: image, Policy: policy, Credentials: creds})
	if err != nil {
		t.Fatalf("pull %s: %v", image, err)
	}
	return img, m
}

func checkModule(t *testing.T, m Module, want []byte) {
	t.Helper()
	got, err := os.ReadFile(m.Path)
	if err != nil || !bytes.Equal(got, want) || m.Digest != digestOf(want) || m.Size != int64(len(want)) {
		t.Errorf("module %+v: content differs (%v)", m, err)
	}
}

// Both layouts, by tag and by digest, directly and through an image index.
func TestPullLayouts(t *testing.T) {
	reg := startRegistry(t, fw.Anonymous, nil)
	ctx := ctxFor(t)
	cncf, v1mod, artifact := module(1000, 1), module(1000, 2), module(1000, 3)

	// krustlet push writes the CNCF layout.
	cncfDesc, _, err := Push(ctx, cncf, reg.Host+"/cncf:v1", PushOptions{PlainHTTP: true, Title: "app.wasm"})
	if err != nil {
		t.Fatal(err)
	}
	again, _, err := Push(ctx, cncf, reg.Host+"/cncf:v1", PushOptions{PlainHTTP: true, Title: "app.wasm"})
	if err != nil || again.Digest != cncfDesc.Digest {
		t.Errorf("pushing again: %s, %v; want the same digest %s", again.Digest, err, cncfDesc.Digest)
	}
	// wasm-to-oci's layout and an OCI 1.1 artifact, pushed with oras-go.
	v1Desc, err := reg.Push(ctx, "wasm-to-oci:v1", fw.WasmToOCI(v1mod), "", "")
	if err != nil {
		t.Fatal(err)
	}
	artDesc, err := reg.Push(ctx, "artifact:v1", fw.Artifact{ArtifactType: MediaTypeWasmConfigV0, Layers: []fw.Layer{{MediaType: MediaTypeWasmLayer, Data: artifact}}}, "", "")
	if err != nil {
		t.Fatal(err)
	}
	// An index with a Linux image and the module for wasip1/wasm.
	linuxDesc, err := reg.Push(ctx, "multi:linux", fw.LinuxImage(), "", "")
	if err != nil {
		t.Fatal(err)
	}
	wasmDesc, err := reg.Push(ctx, "multi:wasm", fw.CNCF(cncf, "wasip1"), "", "")
	if err != nil {
		t.Fatal(err)
	}
	linuxDesc.Platform = &ocispec.Platform{OS: "linux", Architecture: "amd64"}
	wasmDesc.Platform = &ocispec.Platform{OS: "wasip1", Architecture: "wasm"}
	idxDesc, err := reg.PushIndex(ctx, "multi:v1", []ocispec.Descriptor{linuxDesc, wasmDesc}, "", "")
	if err != nil {
		t.Fatal(err)
	}

	r := newTestRegistry(t, Options{InsecureRegistries: []string{reg.Host}})
	for _, tc := range []struct {
		repo   string
		digest string
		module []byte
	}{
		{"cncf", cncfDesc.Digest.String(), cncf},
		{"wasm-to-oci", v1Desc.Digest.String(), v1mod},
		{"artifact", artDesc.Digest.String(), artifact},
		{"multi", idxDesc.Digest.String(), cncf},
	} {
		t.Run(tc.repo, func(t *testing.T) {
			repo := reg.Host + "/" + tc.repo
			img, m := pullOK(t, r, repo+":v1", v1.PullIfNotPresent)
			if img.ID != repo+"@"+tc.digest || img.Ref != repo+":v1" || img.AlreadyPresent || img.Size <= int64(len(tc.module)) {
				t.Errorf("by tag: %+v, want ID %s@%s", img, repo, tc.digest)
			}
			checkModule(t, m, tc.module)
			for _, ref := range []string{repo + "@" + tc.digest, repo + ":v1@" + tc.digest} {
				img, m = pullOK(t, r, ref, v1.PullIfNotPresent)
				if img.ID != repo+"@"+tc.digest || !img.AlreadyPresent {
					t.Errorf("by digest %s: %+v", ref, img)
				}
				checkModule(t, m, tc.module)
			}
		})
	}
	// One module is stored once, whatever refers to it.
	var names []string
	for _, img := range r.Images() {
		names = append(names, img.Names...)
	}
	for _, want := range []string{reg.Host + "/multi@" + idxDesc.Digest.String(), reg.Host + "/cncf:v1"} {
		if !strings.Contains(strings.Join(names, " "), want) {
			t.Errorf("images %v lack %s", names, want)
		}
	}
}

func TestPullPolicies(t *testing.T) {
	reg := startRegistry(t, fw.Anonymous, nil)
	ctx := ctxFor(t)
	first, second := module(2000, 1), module(2000, 2)
	d1, _, err := Push(ctx, first, reg.Host+"/app:v1", PushOptions{PlainHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	r := newTestRegistry(t, Options{InsecureRegistries: []string{reg.Host}})
	image := reg.Host + "/app:v1"
	blob := "/blobs/" + digestOf(first)

	pushed := len(reg.Requests())
	if _, _, err := r.Pull(ctx, provider.PullRequest{Image: image, Policy: v1.PullNever}); !errors.Is(err, provider.ErrImageNeverPull) {
		t.Errorf("Never with nothing local: %v", err)
	}
	if n := len(reg.Requests()) - pushed; n != 0 {
		t.Errorf("Never asked the registry %d times", n)
	}
	img, _ := pullOK(t, r, image, v1.PullAlways)
	if img.AlreadyPresent || reg.Count(http.MethodGet, blob) != 1 {
		t.Fatalf("first pull: %+v, %d module downloads", img, reg.Count(http.MethodGet, blob))
	}
	before := len(reg.Requests())
	for _, policy := range []v1.PullPolicy{v1.PullIfNotPresent, v1.PullNever} {
		if img, _ := pullOK(t, r, image, policy); !img.AlreadyPresent || img.ID != reg.Host+"/app@"+d1.Digest.String() {
			t.Errorf("%s: %+v", policy, img)
		}
	}
	if n := len(reg.Requests()); n != before {
		t.Errorf("IfNotPresent and Never with the image local asked the registry: %v", reg.Requests()[before:])
	}
	// Always with the tag unchanged: one HEAD of the manifest, no download.
	img, _ = pullOK(t, r, image, v1.PullAlways)
	if !img.AlreadyPresent || reg.Count(http.MethodGet, blob) != 1 {
		t.Errorf("Always, unchanged: %+v, %d module downloads", img, reg.Count(http.MethodGet, blob))
	}
	if got := reg.Requests()[before:]; len(got) != 1 || got[0].Method != http.MethodHead {
		t.Errorf("Always, unchanged: requests %v, want one HEAD", got)
	}
	// The tag moves: Always gets the new module, IfNotPresent keeps the old.
	d2, _, err := Push(ctx, second, image, PushOptions{PlainHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	if img, _ := pullOK(t, r, image, v1.PullIfNotPresent); img.ID != reg.Host+"/app@"+d1.Digest.String() {
		t.Errorf("IfNotPresent after the tag moved: %s", img.ID)
	}
	img, m := pullOK(t, r, image, v1.PullAlways)
	if img.AlreadyPresent || img.ID != reg.Host+"/app@"+d2.Digest.String() {
		t.Errorf("Always after the tag moved: %+v", img)
	}
	checkModule(t, m, second)
	if img, _ := pullOK(t, r, image, v1.PullIfNotPresent); img.ID != reg.Host+"/app@"+d2.Digest.String() {
		t.Errorf("IfNotPresent after Always moved the tag: %s", img.ID)
	}
	// The old digest is still there by digest.
	if img, m := pullOK(t, r, reg.Host+"/app@"+d1.Digest.String(), v1.PullNever); !img.AlreadyPresent {
		t.Errorf("old digest: %+v", img)
	} else {
		checkModule(t, m, first)
	}
	// A store opened again knows it all.
	r2 := newTestRegistry(t, Options{Dir: r.store.Root(), InsecureRegistries: []string{reg.Host}})
	if img, _ := pullOK(t, r2, image, v1.PullNever); img.ID != reg.Host+"/app@"+d2.Digest.String() {
		t.Errorf("after reopening: %+v", img)
	}
}

// Concurrent pulls of one image download it once.
func TestPullConcurrent(t *testing.T) {
	reg := startRegistry(t, fw.Anonymous, nil)
	ctx := ctxFor(t)
	mod := module(1<<20, 7)
	if _, _, err := Push(ctx, mod, reg.Host+"/app:v1", PushOptions{PlainHTTP: true}); err != nil {
		t.Fatal(err)
	}
	r := newTestRegistry(t, Options{InsecureRegistries: []string{reg.Host}})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if _, _, err := r.Pull(ctx, provider.PullRequest{Image: reg.Host + "/app:v1", Policy: v1.PullAlways}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := reg.Count(http.MethodGet, "/blobs/"+digestOf(mod)); n != 1 {
		t.Errorf("%d downloads of the module for 8 concurrent pulls", n)
	}
}

func TestPullAuth(t *testing.T) {
	users := map[string]string{"alice": "wonderland"}
	for _, mode := range []fw.AuthMode{fw.Htpasswd, fw.Token} {
		t.Run(mode.String(), func(t *testing.T) {
			reg := startRegistry(t, mode, users)
			ctx := ctxFor(t)
			mod := module(500, 1)
			good := provider.Credential{Registry: reg.Host, Username: "alice", Password: "wonderland"}
			bad := provider.Credential{Registry: "http://" + reg.Host + "/private", Username: "alice", Password: "wrong"}
			if _, _, err := Push(ctx, mod, reg.Host+"/private:v1", PushOptions{PlainHTTP: true}); err == nil {
				t.Error("anonymous push to a private registry worked")
			}
			if _, _, err := Push(ctx, mod, reg.Host+"/private:v1", PushOptions{PlainHTTP: true, Credentials: []provider.Credential{good}}); err != nil {
				t.Fatal(err)
			}
			r := newTestRegistry(t, Options{InsecureRegistries: []string{reg.Host}})
			image := reg.Host + "/private:v1"
			for _, tc := range []struct {
				name  string
				creds []provider.Credential
				want  []string
			}{
				{"no credentials", nil, []string{"401 Unauthorized", "no image pull secret or node credential matches " + reg.Host + "/private"}},
				{"credentials for another registry", []provider.Credential{{Registry: "ghcr.io", Username: "alice", Password: "wonderland"}}, []string{"401", "no image pull secret"}},
				{"wrong password", []provider.Credential{bad}, []string{"401 Unauthorized", "with the credentials for http://" + reg.Host + "/private"}},
			} {
				_, _, err := r.Pull(ctx, provider.PullRequest{Image: image, Policy: v1.PullAlways, Credentials: tc.creds})
				if !errors.Is(err, provider.ErrImagePull) {
					t.Errorf("%s: %v, want ErrImagePull", tc.name, err)
					continue
				}
				for _, w := range tc.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("%s: %q does not say %q", tc.name, err, w)
					}
				}
			}
			// The more specific (wrong) key is tried first, then the right one.
			img, m := pullOK(t, r, image, v1.PullAlways, good, bad)
			if img.AlreadyPresent {
				t.Errorf("first successful pull: %+v", img)
			}
			checkModule(t, m, mod)
			// Present locally: IfNotPresent needs no credentials (as in
			// the kubelet); Always does.
			pullOK(t, r, image, v1.PullIfNotPresent)
			if _, _, err := r.Pull(ctx, provider.PullRequest{Image: image, Policy: v1.PullAlways}); !errors.Is(err, provider.ErrImagePull) {
				t.Errorf("Always without credentials for a local private image: %v", err)
			}
		})
	}
}

func TestPullRefusals(t *testing.T) {
	reg := startRegistry(t, fw.Anonymous, nil)
	ctx := ctxFor(t)
	mod := module(3000, 9)
	push := func(repoTag string, a fw.Artifact) ocispec.Descriptor {
		t.Helper()
		d, err := reg.Push(ctx, repoTag, a, "", "")
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	push("linux:v1", fw.LinuxImage())
	push("component:v1", fw.CNCF(module(100, 1), "wasip2"))
	push("big:v1", fw.CNCF(mod, "wasip1"))
	push("tampered:v1", fw.CNCF(mod, "wasip1"))
	linux := push("multi:linux", fw.LinuxImage())
	linux.Platform = &ocispec.Platform{OS: "linux", Architecture: "arm64"}
	if _, err := reg.PushIndex(ctx, "multi:v1", []ocispec.Descriptor{linux}, "", ""); err != nil {
		t.Fatal(err)
	}
	reg.Tamper(digestOf(mod), module(3000, 8))

	r := newTestRegistry(t, Options{InsecureRegistries: []string{reg.Host}, MaxModuleSize: 2000})
	for _, tc := range []struct {
		image string
		is    error
		want  []string
	}{
		{"linux:v1", provider.ErrImageInspect, []string{"is a Linux container image (linux/amd64, layers application/vnd.oci.image.layer.v1.tar+gzip)", "this node runs WASI preview 1 core modules", MediaTypeWasmConfigV0}},
		{"component:v1", provider.ErrImageInspect, []string{"WASI preview 2 component", "this node runs"}},
		{"multi:v1", provider.ErrImageInspect, []string{"multi-platform image for linux/arm64", "no entry for wasip1/wasm"}},
		{"big:v1", provider.ErrImageInspect, []string{"module is 3008 bytes, more than this node's limit of 2000"}},
		{"nope:v1", provider.ErrImagePull, []string{"404 Not Found"}},
		{"linux:nope", provider.ErrImagePull, []string{"404 Not Found"}},
		{"UPPER:v1", provider.ErrImageInspect, []string{"lowercase"}},
	} {
		_, _, err := r.Pull(ctx, provider.PullRequest{Image: reg.Host + "/" + tc.image, Policy: v1.PullIfNotPresent})
		if !errors.Is(err, tc.is) {
			t.Errorf("%s: %v, want %v", tc.image, err, tc.is)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q does not say %q", tc.image, err, w)
			}
		}
	}
	if n := reg.Count(http.MethodGet, "/blobs/"+digestOf(mod)); n != 0 {
		t.Errorf("a module over the size limit was downloaded %d times", n)
	}

	// Other bytes for the module: refused, nothing stored.
	r2 := newTestRegistry(t, Options{InsecureRegistries: []string{reg.Host}})
	_, _, err := r2.Pull(ctx, provider.PullRequest{Image: reg.Host + "/tampered:v1", Policy: v1.PullIfNotPresent})
	if !errors.Is(err, provider.ErrImagePull) || !strings.Contains(err.Error(), "does not match its digest") {
		t.Errorf("tampered module: %v", err)
	}
	if r2.store.HasBlob(digestOf(mod)) || len(r2.Images()) != 0 {
		t.Errorf("tampered module stored: %v", r2.Images())
	}
	if entries, _ := os.ReadDir(r2.store.Root() + "/" + ingestDir); len(entries) != 0 {
		t.Errorf("temporary files left: %v", entries)
	}
	reg.Tamper(digestOf(mod), nil)
	pullOK(t, r2, reg.Host+"/tampered:v1", v1.PullIfNotPresent)

	// Not listed as insecure: HTTPS to a plain-HTTP registry says so.
	r3 := newTestRegistry(t, Options{})
	if _, _, err := r3.Pull(ctx, provider.PullRequest{Image: reg.Host + "/tampered:v1", Policy: v1.PullIfNotPresent}); !errors.Is(err, provider.ErrImagePull) || !strings.Contains(err.Error(), "--insecure-registries") {
		t.Errorf("HTTPS to an HTTP registry: %v", err)
	}
}

// A registry that does not answer fails the pull at the pull timeout.
func TestPullTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	host := strings.TrimPrefix(srv.URL, "http://")
	r := newTestRegistry(t, Options{InsecureRegistries: []string{host}, PullTimeout: 300 * time.Millisecond})
	start := time.Now()
	_, _, err := r.Pull(ctxFor(t), provider.PullRequest{Image: host + "/slow:v1", Policy: v1.PullIfNotPresent})
	if !errors.Is(err, provider.ErrImagePull) || !strings.Contains(err.Error(), "timed out after 300ms") {
		t.Errorf("slow registry: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("pull took %v", d)
	}
}

func TestOptions(t *testing.T) {
	for _, o := range []Options{{}, {Dir: "x", PullTimeout: -1}, {Dir: "x", MaxModuleSize: -1}, {Dir: "x", InsecureRegistries: []string{"http://"}}} {
		if err := o.Validate(); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
	o := Options{Dir: "x", InsecureRegistries: []string{"http://127.0.0.1:5000/", "localhost"}}
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	r := &Registry{opts: o}
	for host, want := range map[string]bool{"127.0.0.1:5000": true, "127.0.0.1:5001": false, "localhost:1234": true, "localhost": true, "ghcr.io": false} {
		if r.plainHTTP(host) != want {
			t.Errorf("plainHTTP(%s) = %v", host, !want)
		}
	}
	if _, err := NewTransport("/nonexistent"); err == nil {
		t.Error("missing CA file accepted")
	}
	empty := t.TempDir() + "/ca.pem"
	os.WriteFile(empty, []byte("not pem"), 0o600)
	if _, err := NewTransport(empty); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Errorf("CA file without certificates: %v", err)
	}
}

func TestPushRefusals(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		module []byte
		ref    string
		opts   PushOptions
		want   string
	}{
		{[]byte("#!/bin/sh"), "r.io/a:v1", PushOptions{}, "bad magic"},
		{[]byte("\x00asm\x0d\x00\x01\x00"), "r.io/a:v1", PushOptions{}, "component"},
		{module(1, 1), "r.io/a@sha256:" + strings.Repeat("a", 64), PushOptions{}, "push to a tag"},
		{module(1, 1), "r.io/A:v1", PushOptions{}, "lowercase"},
		{module(1, 1), "r.io/a:v1", PushOptions{Layout: "docker"}, "unknown layout"},
	} {
		if _, _, err := Push(ctx, tc.module, tc.ref, tc.opts); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Push(%q, %s): %v, want %q", tc.module, tc.ref, err, tc.want)
		}
	}
}

// A private TLS registry is trusted through CAFile.
func TestPullTLS(t *testing.T) {
	reg := startRegistry(t, fw.Anonymous, nil)
	ctx := ctxFor(t)
	mod := module(100, 4)
	if _, _, err := Push(ctx, mod, reg.Host+"/tls:v1", PushOptions{PlainHTTP: true}); err != nil {
		t.Fatal(err)
	}
	backend, _ := url.Parse("http://" + reg.Host)
	srv := httptest.NewUnstartedServer(httputil.NewSingleHostReverseProxy(backend))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake
	srv.StartTLS()
	defer srv.Close()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	image := strings.TrimPrefix(srv.URL, "https://") + "/tls:v1"
	if _, _, err := newTestRegistry(t, Options{}).Pull(ctx, provider.PullRequest{Image: image, Policy: v1.PullIfNotPresent}); !errors.Is(err, provider.ErrImagePull) || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("without the CA: %v", err)
	}
	_, m := pullOK(t, newTestRegistry(t, Options{CAFile: caFile}), image, v1.PullIfNotPresent)
	checkModule(t, m, mod)
}
