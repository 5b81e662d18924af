package e2e

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/krustlet/krustlet-go/pkg/credentials"
	"github.com/krustlet/krustlet-go/pkg/provider"
	fw "github.com/krustlet/krustlet-go/test/framework/registry"
	"github.com/krustlet/krustlet-go/test/framework/wasmbuild"
)

// Pods pull their modules from real registries on loopback: an anonymous
// one, one with basic auth (htpasswd) and one with bearer tokens, each
// behind a proxy that counts requests and can serve other bytes. One node
// joins with all three as insecure (plain HTTP) registries.
func TestRegistry(t *testing.T) {
	t.Parallel()
	// The subtests run in parallel once this function has returned.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	t.Cleanup(cancel)
	users := map[string]string{"alice": "wonderland"}
	anon := startTestRegistry(ctx, t, fw.Anonymous, nil)
	basic := startTestRegistry(ctx, t, fw.Htpasswd, users)
	token := startTestRegistry(ctx, t, fw.Token, users)
	// The node's own credentials are for one repository path of the basic
	// registry only, so that the rest of it stays private.
	nodeConfig := filepath.Join(t.TempDir(), "config.json")
	nodeCreds, err := credentials.DockerConfigJSON(provider.Credential{Registry: "http://" + basic.Host + "/node-creds", Username: "alice", Password: "wonderland"})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(nodeConfig, nodeCreds, 0o600); err != nil {
		t.Fatal(err)
	}
	n := joinNode(t, cluster, "e2e-registry",
		"--insecure-registries="+strings.Join([]string{anon.Host, basic.Host, token.Host}, ","),
		"--registry-config="+nodeConfig)
	waitForNodeReady(ctx, t, cluster.AdminClient(), n.Name, v1.ConditionTrue, 2*time.Minute)
	mod, err := os.ReadFile(wasmbuild.MustBuild(t, "testmod"))
	if err != nil {
		t.Fatal(err)
	}

	t.Run("layouts", func(t *testing.T) {
		t.Parallel()
		// krustlet push writes the CNCF layout; oras-go pushes wasm-to-oci's.
		cncf := krustletPush(ctx, t, mod, anon.Host+"/cncf:v1", "--insecure")
		old, err := anon.Push(ctx, "wasm-to-oci:v1", fw.WasmToOCI(mod), "", "")
		if err != nil {
			t.Fatal(err)
		}
		type run struct {
			image, wantID string
			pod           *v1.Pod
		}
		var runs []*run
		for repo, d := range map[string]string{"cncf": cncf, "wasm-to-oci": old.Digest.String()} {
			r := anon.Host + "/" + repo
			runs = append(runs, &run{image: r + ":v1", wantID: r + "@" + d}, &run{image: r + "@" + d, wantID: r + "@" + d})
		}
		for _, r := range runs {
			r.pod = createPod(ctx, t, wasmPod(n.Name, r.image, "echo", "from the registry"))
		}
		for _, r := range runs {
			_, final := watchPod(ctx, t, r.pod, 3*time.Minute, isPhase(v1.PodSucceeded, v1.PodFailed))
			if final.Status.Phase != v1.PodSucceeded {
				t.Errorf("%s: %s\n%s", r.image, final.Status.Phase, describeStatus(final))
				continue
			}
			if id := final.Status.ContainerStatuses[0].ImageID; id != r.wantID {
				t.Errorf("%s: imageID %q, want %q", r.image, id, r.wantID)
			}
			if got := logText(containerLog(t, n, final, "main", 0)); len(got) != 1 || got[0] != "stdout: from the registry" {
				t.Errorf("%s: output %q", r.image, got)
			}
		}
	})

	t.Run("always", func(t *testing.T) {
		t.Parallel()
		image := anon.Host + "/always:v1"
		first := krustletPush(ctx, t, moduleVariant(mod, "always-1"), image, "--insecure")
		moduleGets := func(m []byte) int { return anon.Count(http.MethodGet, "/blobs/"+digest.FromBytes(m).String()) }
		runAlways := func() *v1.Pod {
			t.Helper()
			spec := wasmPod(n.Name, image, "echo", "always")
			spec.Spec.Containers[0].ImagePullPolicy = v1.PullAlways
			final := runToEnd(ctx, t, spec)
			if final.Status.Phase != v1.PodSucceeded {
				t.Fatalf("%s\n%s", final.Status.Phase, describeStatus(final))
			}
			return final
		}
		p1 := runAlways()
		if id := p1.Status.ContainerStatuses[0].ImageID; id != anon.Host+"/always@"+first {
			t.Errorf("first pod: imageID %s", id)
		}
		if n := moduleGets(moduleVariant(mod, "always-1")); n != 1 {
			t.Errorf("first pull downloaded the module %d times", n)
		}
		heads := anon.Count(http.MethodHead, "/always/manifests/v1")
		// The tag has not moved: the registry is asked, nothing downloaded.
		p2 := runAlways()
		if n := moduleGets(moduleVariant(mod, "always-1")); n != 1 {
			t.Errorf("Always with an unchanged tag downloaded the module again (%d downloads)", n)
		}
		if h := anon.Count(http.MethodHead, "/always/manifests/v1"); h <= heads {
			t.Errorf("Always did not ask the registry (%d HEADs before, %d after)", heads, h)
		}
		waitForPodEvent(ctx, t, p2, "Pulled", "already present on machine")
		// The tag moves: the new module runs.
		second := krustletPush(ctx, t, moduleVariant(mod, "always-2"), image, "--insecure")
		p3 := runAlways()
		if id := p3.Status.ContainerStatuses[0].ImageID; id != anon.Host+"/always@"+second {
			t.Errorf("after the tag moved: imageID %s, want digest %s", id, second)
		}
		if n := moduleGets(moduleVariant(mod, "always-2")); n != 1 {
			t.Errorf("new module downloaded %d times", n)
		}
		waitForPodEvent(ctx, t, p3, "Pulled", "Successfully pulled")
	})

	t.Run("tampered", func(t *testing.T) {
		t.Parallel()
		m := moduleVariant(mod, "tampered")
		krustletPush(ctx, t, m, anon.Host+"/tampered:v1", "--insecure")
		d := digest.FromBytes(m)
		other := bytes.Clone(m)
		other[len(other)-1] ^= 0xff
		anon.Tamper(d.String(), other)
		pod := createPod(ctx, t, wasmPod(n.Name, anon.Host+"/tampered:v1"))
		msg := waitForContainerWaiting(ctx, t, pod, "ErrImagePull")
		if !strings.Contains(msg, "does not match its digest") {
			t.Errorf("message %q does not say the digest did not match", msg)
		}
		blob := filepath.Join(n.DataDir, "providers", "wasmtime", "images", "blobs", "sha256", d.Encoded())
		if _, err := os.Stat(blob); !os.IsNotExist(err) {
			t.Errorf("tampered module stored at %s (%v)", blob, err)
		}
	})

	t.Run("container image", func(t *testing.T) {
		t.Parallel()
		if _, err := anon.Push(ctx, "linux:v1", fw.LinuxImage(), "", ""); err != nil {
			t.Fatal(err)
		}
		pod := createPod(ctx, t, wasmPod(n.Name, anon.Host+"/linux:v1"))
		msg := waitForContainerWaiting(ctx, t, pod, "ErrImagePull")
		for _, want := range []string{"Linux container image (linux/amd64", "application/vnd.oci.image.layer.v1.tar+gzip", "application/wasm"} {
			if !strings.Contains(msg, want) {
				t.Errorf("message %q does not say %q", msg, want)
			}
		}
	})

	t.Run("never", func(t *testing.T) {
		t.Parallel()
		spec := wasmPod(n.Name, anon.Host+"/absent:v1")
		spec.Spec.Containers[0].ImagePullPolicy = v1.PullNever
		waitForContainerWaiting(ctx, t, createPod(ctx, t, spec), "ErrImageNeverPull")
	})

	t.Run("node credentials", func(t *testing.T) {
		t.Parallel()
		image := basic.Host + "/node-creds/app:v1"
		krustletPush(ctx, t, moduleVariant(mod, "node-creds"), image, "--insecure", "--username", "alice", "--password", "wonderland")
		_, final := watchPod(ctx, t, createPod(ctx, t, wasmPod(n.Name, image, "echo", "node")), 3*time.Minute, func(p *v1.Pod) bool {
			return p.Status.Phase == v1.PodSucceeded || p.Status.Phase == v1.PodFailed || containerWaitingReason(p) == "ErrImagePull"
		})
		if final.Status.Phase != v1.PodSucceeded {
			t.Fatalf("with the node's credentials: %s\n%s", final.Status.Phase, describeStatus(final))
		}
	})

	for _, reg := range []*fw.Registry{basic, token} {
		kind := "basic"
		if reg == token {
			kind = "token"
		}
		t.Run("private "+kind, func(t *testing.T) {
			t.Parallel()
			image := reg.Host + "/private:v1"
			d := krustletPush(ctx, t, moduleVariant(mod, "private-"+kind), image, "--insecure", "--username", "alice", "--password", "wonderland")
			privatePod := func(secret string) *v1.Pod {
				spec := wasmPod(n.Name, image, "echo", "private")
				spec.Spec.Containers[0].ImagePullPolicy = v1.PullAlways
				if secret != "" {
					spec.Spec.ImagePullSecrets = []v1.LocalObjectReference{{Name: secret}}
				}
				return createPod(ctx, t, spec)
			}

			// No secret: ErrImagePull, then ImagePullBackOff, with the 401
			// in the event.
			noSecret := privatePod("")
			waitForContainerWaiting(ctx, t, noSecret, "ErrImagePull")
			waitForContainerWaiting(ctx, t, noSecret, "ImagePullBackOff")
			waitForPodEvent(ctx, t, noSecret, "Failed", "401 Unauthorized")

			// With the pull secret, it runs.
			good := createPullSecret(ctx, t, reg.Host, "alice", "wonderland")
			withSecret := privatePod(good)
			_, final := watchPod(ctx, t, withSecret, 3*time.Minute, func(p *v1.Pod) bool {
				return p.Status.Phase == v1.PodSucceeded || p.Status.Phase == v1.PodFailed || containerWaitingReason(p) == "ErrImagePull"
			})
			if final.Status.Phase != v1.PodSucceeded {
				t.Fatalf("with the secret: %s\n%s", final.Status.Phase, describeStatus(final))
			}
			if id := final.Status.ContainerStatuses[0].ImageID; id != reg.Host+"/private@"+d {
				t.Errorf("imageID %s", id)
			}

			// A wrong password: a clear event, and the node carries on.
			wrong := privatePod(createPullSecret(ctx, t, reg.Host, "alice", "not-the-password"))
			msg := waitForContainerWaiting(ctx, t, wrong, "ErrImagePull")
			if !strings.Contains(msg, "401 Unauthorized") || !strings.Contains(msg, "with the credentials for "+reg.Host) {
				t.Errorf("wrong password: message %q", msg)
			}
			waitForPodEvent(ctx, t, wrong, "Failed", "401 Unauthorized")
			waitForNodeReady(ctx, t, cluster.AdminClient(), n.Name, v1.ConditionTrue, time.Second)
		})
	}
}

// startTestRegistry starts a registry that stops when the test ends.
func startTestRegistry(ctx context.Context, t *testing.T, mode fw.AuthMode, users map[string]string) *fw.Registry {
	t.Helper()
	r, err := fw.Start(ctx, fw.Options{Dir: t.TempDir(), Auth: mode, Users: users})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log of the %v registry:\n%s", mode, readTail(r.LogPath(), 30))
		}
		if err := r.Stop(); err != nil {
			t.Errorf("stopping the registry: %v", err)
		}
	})
	return r
}

var pushedDigest = regexp.MustCompile(`(?m)^Digest: (sha256:[0-9a-f]{64})$`)

// krustletPush pushes module with `krustlet push` and returns the digest
// it printed.
func krustletPush(ctx context.Context, t *testing.T, module []byte, ref string, flags ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "module.wasm")
	if err := os.WriteFile(path, module, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(ctx, krustletBin, append([]string{"push", path, ref}, flags...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("krustlet push %s: %v\n%s", ref, err, out)
	}
	m := pushedDigest.FindSubmatch(out)
	if m == nil {
		t.Fatalf("krustlet push printed no digest:\n%s", out)
	}
	return string(m[1])
}

// moduleVariant is module with a custom section named after tag: another module
// (another digest) that runs the same.
func moduleVariant(module []byte, tag string) []byte {
	name := "krustlet-e2e"
	body := append(uleb128(len(name)), name...)
	body = append(body, tag...)
	out := append(bytes.Clone(module), 0)
	out = append(out, uleb128(len(body))...)
	return append(out, body...)
}

func uleb128(n int) []byte {
	var b []byte
	for {
		c := byte(n & 0x7f)
		n >>= 7
		if n == 0 {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

// createPullSecret creates a kubernetes.io/dockerconfigjson Secret for host.
func createPullSecret(ctx context.Context, t *testing.T, host, user, password string) string {
	t.Helper()
	data, err := credentials.DockerConfigJSON(provider.Credential{Registry: host, Username: user, Password: password})
	if err != nil {
		t.Fatal(err)
	}
	name := "pull-" + rand.String(8)
	s := &v1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: metav1.NamespaceDefault, Name: name},
		Type:       v1.SecretTypeDockerConfigJson,
		Data:       map[string][]byte{v1.DockerConfigJsonKey: data},
	}
	if _, err := cluster.AdminClient().CoreV1().Secrets(s.Namespace).Create(ctx, s, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cluster.AdminClient().CoreV1().Secrets(s.Namespace).Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	return name
}

func containerWaitingReason(p *v1.Pod) string {
	if len(p.Status.ContainerStatuses) == 0 || p.Status.ContainerStatuses[0].State.Waiting == nil {
		return ""
	}
	return p.Status.ContainerStatuses[0].State.Waiting.Reason
}

// waitForContainerWaiting waits until the pod's container waits for reason and
// returns the message.
func waitForContainerWaiting(ctx context.Context, t *testing.T, pod *v1.Pod, reason string) string {
	t.Helper()
	_, final := watchPod(ctx, t, pod, 2*time.Minute, func(p *v1.Pod) bool { return containerWaitingReason(p) == reason })
	if containerWaitingReason(final) != reason {
		t.Fatalf("pod %s ended without waiting for %s:\n%s", pod.Name, reason, describeStatus(final))
	}
	return final.Status.ContainerStatuses[0].State.Waiting.Message
}

// waitForPodEvent waits for an event of the pod with reason and a message
// containing text.
func waitForPodEvent(ctx context.Context, t *testing.T, pod *v1.Pod, reason, text string) {
	t.Helper()
	var seen []string
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		seen = seen[:0]
		for _, e := range events(ctx, t, pod) {
			seen = append(seen, e.Reason+": "+e.Message)
			if e.Reason == reason && strings.Contains(e.Message, text) {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Errorf("pod %s: no %s event saying %q; events:\n%s", pod.Name, reason, text, strings.Join(seen, "\n"))
	}
}
