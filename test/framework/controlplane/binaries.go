package controlplane

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"

	"github.com/krustlet/krustlet-go/test/framework/checkout"
)

// Binaries are the paths of the control-plane executables.
type Binaries struct {
	Etcd, APIServer, ControllerManager, Scheduler string
	// Kubectl matches the server's version; tests use it rather than
	// whatever kubectl the machine has.
	Kubectl string
	// Dir holds all of them.
	Dir string
	// KubernetesVersion is the version the Kubernetes binaries were built at,
	// for example "v1.37.2".
	KubernetesVersion string
}

// binaryModules are the module directories, relative to the repository root,
// whose contents decide what is built.
var binaryModules = []string{"hack/k8s", "hack/etcd"}

var kubernetesRequire = regexp.MustCompile(`(?m)^\s*(?:require\s+)?k8s\.io/kubernetes\s+(v\S+)`)

// DefaultCacheDir is where built binaries are kept between runs (see
// checkout.CacheDir).
func DefaultCacheDir() string { return checkout.CacheDir() }

// RepoRoot finds the root of the krustlet-go checkout (see checkout.Root).
func RepoRoot() (string, error) { return checkout.Root() }

// EnsureBinaries returns the control-plane binaries for the versions pinned
// under repoRoot/hack, building them into cacheDir when no build for exactly
// these inputs (module files, Go version, link flags) exists yet. Concurrent
// callers wait for one build.
func EnsureBinaries(ctx context.Context, repoRoot, cacheDir string, logf func(string, ...any)) (*Binaries, error) {
	goVersion, err := exec.CommandContext(ctx, "go", "env", "GOVERSION").Output()
	if err != nil {
		return nil, fmt.Errorf("finding the Go version: %w", err)
	}
	gomod, err := os.ReadFile(filepath.Join(repoRoot, "hack", "k8s", "go.mod"))
	if err != nil {
		return nil, fmt.Errorf("reading hack/k8s/go.mod: %w", err)
	}
	m := kubernetesRequire.FindSubmatch(gomod)
	if m == nil {
		return nil, errors.New("hack/k8s/go.mod does not require k8s.io/kubernetes")
	}
	kubeVersion := string(m[1])
	ldflags := kubernetesLDFlags(kubeVersion)

	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n", strings.TrimSpace(string(goVersion)), ldflags)
	for _, mod := range binaryModules {
		entries, err := os.ReadDir(filepath.Join(repoRoot, mod))
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", mod, err)
		}
		for _, e := range entries {
			if e.IsDir() {
				continue
			}
			data, err := os.ReadFile(filepath.Join(repoRoot, mod, e.Name()))
			if err != nil {
				return nil, err
			}
			fmt.Fprintf(h, "%s/%s %d\n", mod, e.Name(), len(data))
			h.Write(data)
		}
	}
	key := kubeVersion + "-" + hex.EncodeToString(h.Sum(nil))[:12]
	dir := filepath.Join(cacheDir, "controlplane", key)
	bins := &Binaries{
		Etcd:              filepath.Join(dir, "etcd"),
		APIServer:         filepath.Join(dir, "kube-apiserver"),
		ControllerManager: filepath.Join(dir, "kube-controller-manager"),
		Scheduler:         filepath.Join(dir, "kube-scheduler"),
		Kubectl:           filepath.Join(dir, "kubectl"),
		Dir:               dir,
		KubernetesVersion: kubeVersion,
	}
	if _, err := os.Stat(dir); err == nil {
		return bins, nil
	}

	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return nil, err
	}
	lock, err := os.OpenFile(filepath.Join(filepath.Dir(dir), ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return nil, fmt.Errorf("locking the binary cache: %w", err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) //nolint:errcheck
	if _, err := os.Stat(dir); err == nil {
		return bins, nil // built by another process while this one waited
	}

	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".build-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	logf("building etcd and Kubernetes %s control-plane binaries into %s (a first build takes about 10 minutes on 2 cores)", kubeVersion, dir)
	builds := []struct {
		mod  string
		args []string
	}{
		{"hack/etcd", []string{"build", "-trimpath", "-ldflags", "-s -w", "-o", filepath.Join(tmp, "etcd"), "."}},
		{"hack/k8s", []string{"build", "-trimpath", "-ldflags", ldflags, "-o", tmp + string(filepath.Separator),
			"k8s.io/kubernetes/cmd/kube-apiserver", "k8s.io/kubernetes/cmd/kube-controller-manager", "k8s.io/kubernetes/cmd/kube-scheduler",
			"k8s.io/kubernetes/cmd/kubectl"}},
	}
	for _, b := range builds {
		cmd := exec.CommandContext(ctx, "go", b.args...)
		cmd.Dir = filepath.Join(repoRoot, b.mod)
		cmd.Env = append(os.Environ(), "GOWORK=off")
		out, err := cmd.CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("building %s: %w\n%s", b.mod, err, out)
		}
	}
	if err := os.Rename(tmp, dir); err != nil {
		return nil, fmt.Errorf("storing built binaries: %w", err)
	}
	logf("control-plane binaries ready in %s", dir)
	return bins, nil
}

// kubernetesLDFlags stamps the version into the Kubernetes binaries; without
// it they report v0.0.0-master+$Format:%H$, which kubectl cannot parse.
func kubernetesLDFlags(v string) string {
	major, minor := "", ""
	if parts := strings.SplitN(strings.TrimPrefix(v, "v"), ".", 3); len(parts) >= 2 {
		major, minor = parts[0], parts[1]
	}
	flags := []string{"-s", "-w"}
	for _, pkg := range []string{"k8s.io/component-base/version", "k8s.io/client-go/pkg/version"} {
		flags = append(flags,
			"-X", pkg+".gitVersion="+v,
			"-X", pkg+".gitMajor="+major,
			"-X", pkg+".gitMinor="+minor,
			"-X", pkg+".gitTreeState=clean",
			"-X", pkg+".buildDate=1970-01-01T00:00:00Z",
		)
	}
	return strings.Join(flags, " ")
}
