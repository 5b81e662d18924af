package main

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/krustlet/krustlet-go/test/framework/controlplane"
)

const (
	// kwokUser is the common name of kwok's client certificate, so that
	// its writes are attributable in the audit log.
	kwokUser = "kwok-bench"
	// kwokNodeLabel selects the nodes kwok manages.
	kwokNodeLabel = "bench.krustlet.dev/kwok"
)

// kwokStages are the Stage objects kwok plays: its "fast" node and pod
// stages of the pinned version (kustomize/stage/node/fast,
// node/heartbeat-with-lease, pod/fast), with pod-complete selecting the
// bench's run-to-completion label instead of Job-owned pods.
//
//go:embed kwok-stages.yaml
var kwokStages []byte

var kwokRequire = regexp.MustCompile(`(?m)^\s*(?:require\s+)?sigs\.k8s\.io/kwok\s+(v\S+)`)

// ensureKwok returns the kwok binary built from hack/kwok, building it
// into cacheDir/kwok when no build of exactly these module files and this
// Go version exists yet (about 2 minutes on 2 cores). Concurrent callers
// wait for one build.
func ensureKwok(ctx context.Context, repoRoot, cacheDir string) (bin, version string, err error) {
	modDir := filepath.Join(repoRoot, "hack", "kwok")
	gomod, err := os.ReadFile(filepath.Join(modDir, "go.mod"))
	if err != nil {
		return "", "", fmt.Errorf("reading hack/kwok/go.mod: %w", err)
	}
	m := kwokRequire.FindSubmatch(gomod)
	if m == nil {
		return "", "", errors.New("hack/kwok/go.mod does not require sigs.k8s.io/kwok")
	}
	version = string(m[1])
	goVersion, err := exec.CommandContext(ctx, "go", "env", "GOVERSION").Output()
	if err != nil {
		return "", "", fmt.Errorf("finding the Go version: %w", err)
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\n", strings.TrimSpace(string(goVersion)))
	for _, name := range []string{"go.mod", "go.sum", "tools.go"} {
		data, err := os.ReadFile(filepath.Join(modDir, name))
		if err != nil {
			return "", "", err
		}
		fmt.Fprintf(h, "%s %d\n", name, len(data))
		h.Write(data)
	}
	dir := filepath.Join(cacheDir, "kwok", version+"-"+hex.EncodeToString(h.Sum(nil))[:12])
	bin = filepath.Join(dir, "kwok")
	if _, err := os.Stat(bin); err == nil {
		return bin, version, nil
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", "", err
	}
	lock, err := os.OpenFile(filepath.Join(filepath.Dir(dir), ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", "", err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", "", fmt.Errorf("locking the kwok cache: %w", err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) //nolint:errcheck
	if _, err := os.Stat(bin); err == nil {
		return bin, version, nil
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".build-")
	if err != nil {
		return "", "", err
	}
	defer os.RemoveAll(tmp)
	logf("building kwok %s into %s (about 2 minutes on 2 cores)", version, dir)
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", "-s -w", "-o", filepath.Join(tmp, "kwok"), "sigs.k8s.io/kwok/cmd/kwok")
	cmd.Dir = modDir
	cmd.Env = append(os.Environ(), "GOWORK=off", "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("building kwok: %w\n%s", err, out)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return "", "", fmt.Errorf("storing the kwok build: %w", err)
	}
	return bin, version, nil
}

// startKwok writes kwok's kubeconfig (a client certificate of its own,
// cluster-admin through system:masters) and stage file, and starts it
// managing the nodes labelled kwokNodeLabel=true.
func (e *Env) startKwok() error {
	dir := filepath.Join(e.dir, "kwok")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	certPEM, keyPEM, err := e.cp.PKI.SignClientCert(kwokUser, "system:masters")
	if err != nil {
		return err
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["bench"] = &clientcmdapi.Cluster{Server: e.cp.APIServerURL, CertificateAuthorityData: e.cp.PKI.CACertPEM()}
	cfg.AuthInfos["kwok"] = &clientcmdapi.AuthInfo{ClientCertificateData: certPEM, ClientKeyData: keyPEM}
	cfg.Contexts["bench"] = &clientcmdapi.Context{Cluster: "bench", AuthInfo: "kwok"}
	cfg.CurrentContext = "bench"
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, kubeconfig); err != nil {
		return err
	}
	stages := filepath.Join(dir, "stages.yaml")
	if err := os.WriteFile(stages, kwokStages, 0o644); err != nil {
		return err
	}
	e.kwok, err = controlplane.StartProcess("kwok", e.kwokBin, []string{
		"--kubeconfig=" + kubeconfig,
		"--config=" + stages,
		"--manage-nodes-with-label-selector=" + kwokNodeLabel + "=true",
		"--node-lease-duration-seconds=40",
		// Pod and node addresses kwok writes into statuses; nothing
		// connects to them.
		"--node-ip=127.0.0.1",
		"--cidr=10.244.0.0/16",
	}, filepath.Join(e.dir, "logs"), false)
	return err
}

// createKwokNode creates a Node for kwok to manage, with the labels and
// taints of a krustlet node so that the same pods fit it.
func createKwokNode(ctx context.Context, client kubernetes.Interface, name string) error {
	node := &v1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: name,
			Labels: map[string]string{
				v1.LabelHostname:   name,
				v1.LabelArchStable: wasmArch,
				v1.LabelOSStable:   wasmArch,
				kwokNodeLabel:      "true",
			},
			Annotations: map[string]string{"kwok.x-k8s.io/node": "fake"},
		},
		Spec: v1.NodeSpec{Taints: []v1.Taint{
			{Key: v1.LabelArchStable, Value: wasmArch, Effect: v1.TaintEffectNoSchedule},
			{Key: v1.LabelArchStable, Value: wasmArch, Effect: v1.TaintEffectNoExecute},
		}},
	}
	_, err := client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating kwok node %s: %w", name, err)
	}
	return nil
}
