package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/krustlet/krustlet-go/test/framework/krustlet"
)

// The tests of this file prove pkg/volume and pkg/env as a user sees them:
// what a module finds in its mounts and environment, what lands on the
// node's disk, and the events and statuses the pod gets.
//
// WASI preview 1 has no permission bits: Go's wasip1 os.Stat reports 0600
// for every file and 0700 for every directory, whatever the host says. The
// modes that defaultMode and mode ask for are therefore checked on the
// host; from the module's side the tests prove that those volumes are
// read-only.

// ConfigMap and Secret volumes, whole and by items: the module sees the
// selected keys under their new paths and nothing else, the files on the
// node have the requested modes behind the atomic writer's symlinks, and
// the volumes are read-only to the module.
func TestVolumeConfigMapAndSecret(t *testing.T) {
	t.Parallel()
	n := podNode(t)
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	sfx := rand.String(8)
	cm := createConfigMap(ctx, t, &v1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "vol-cm-" + sfx, Namespace: metav1.NamespaceDefault},
		Data:       map[string]string{"a": "alpha", "b": "bravo", "c": "charlie"},
	})
	sec := createSecret(ctx, t, &v1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "vol-sec-" + sfx, Namespace: metav1.NamespaceDefault},
		Data:       map[string][]byte{"user": []byte("admin"), "pass": []byte("hunter2"), "extra": []byte("x")},
	})

	spec := wasmPod(n.Name, testmod(t),
		"assert-file", "/cm-all/a", "alpha",
		"assert-file", "/cm-all/b", "bravo",
		"assert-file", "/cm-all/c", "charlie",
		"assert-file", "/cm-items/sub/dir/a.txt", "alpha",
		"assert-file", "/cm-items/b.txt", "bravo",
		"assert-file", "/sec-all/user", "admin",
		"assert-file", "/sec-all/pass", "hunter2",
		"assert-file", "/sec-all/extra", "x",
		"assert-file", "/sec-items/creds/password", "hunter2",
		"echo", "== /cm-all", "ls", "/cm-all",
		"echo", "== /cm-items", "ls", "/cm-items",
		"echo", "== /cm-items/sub/dir", "ls", "/cm-items/sub/dir",
		"echo", "== /sec-all", "ls", "/sec-all",
		"echo", "== /sec-items", "ls", "/sec-items",
		"echo", "== /sec-items/creds", "ls", "/sec-items/creds",
		"echo", "== stat", "stat", "/cm-all/a", "stat", "/cm-items/sub/dir/a.txt", "stat", "/sec-all/pass",
		"echo", "== write",
		"write", "/cm-all/new", "must fail") // exits 11: the volume is read-only
	spec.Spec.Volumes = []v1.Volume{
		{Name: "cm-all", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{
			LocalObjectReference: v1.LocalObjectReference{Name: cm.Name}, DefaultMode: mode(0o440)}}},
		{Name: "cm-items", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{
			LocalObjectReference: v1.LocalObjectReference{Name: cm.Name}, DefaultMode: mode(0o640),
			Items: []v1.KeyToPath{{Key: "a", Path: "sub/dir/a.txt", Mode: mode(0o400)}, {Key: "b", Path: "b.txt"}}}}},
		{Name: "sec-all", VolumeSource: v1.VolumeSource{Secret: &v1.SecretVolumeSource{
			SecretName: sec.Name, DefaultMode: mode(0o400)}}},
		{Name: "sec-items", VolumeSource: v1.VolumeSource{Secret: &v1.SecretVolumeSource{
			SecretName: sec.Name, Items: []v1.KeyToPath{{Key: "pass", Path: "creds/password", Mode: mode(0o440)}}}}},
	}
	spec.Spec.Containers[0].VolumeMounts = mountsAtNames(spec.Spec.Volumes)
	final := runToEnd(ctx, t, spec)
	log := logText(containerLog(t, n, final, "main", 0))
	term := final.Status.ContainerStatuses[0].State.Terminated
	if term == nil || term.ExitCode != 11 || !slices.Contains(log, "stdout: == write") {
		t.Fatalf("want every assertion to pass and the write to fail with 11; %s\nlog:\n%s", describeStatus(final), strings.Join(log, "\n"))
	}

	// What the module listed: only the selected keys, at their new paths
	// (the atomic writer's ..data entries aside).
	ls := lsSections(log)
	for dir, want := range map[string][]string{
		"/cm-all":           {"a", "b", "c"},
		"/cm-items":         {"b.txt", "sub"},
		"/cm-items/sub/dir": {"a.txt"},
		"/sec-all":          {"extra", "pass", "user"},
		"/sec-items":        {"creds"},
		"/sec-items/creds":  {"password"},
	} {
		if got := ls[dir]; !slices.Equal(got, want) {
			t.Errorf("module lists %s as %q, want %q", dir, got, want)
		}
	}
	t.Logf("modes as the module sees them through WASI (always the Go default): %q", ls["stat"])

	// What the node wrote: content, modes, and the atomic writer's layout.
	for _, f := range []struct {
		volume, path, content string
		mode                  fs.FileMode
	}{
		{"cm-all", "a", "alpha", 0o440},
		{"cm-all", "b", "bravo", 0o440},
		{"cm-all", "c", "charlie", 0o440},
		{"cm-items", "sub/dir/a.txt", "alpha", 0o400},
		{"cm-items", "b.txt", "bravo", 0o640},
		{"sec-all", "user", "admin", 0o400},
		{"sec-all", "pass", "hunter2", 0o400},
		{"sec-items", "creds/password", "hunter2", 0o440},
	} {
		checkHostFile(t, filepath.Join(volumeDir(n, final, f.volume), f.path), f.content, f.mode)
	}
	if target, err := os.Readlink(filepath.Join(volumeDir(n, final, "cm-all"), "a")); err != nil || target != "..data/a" {
		t.Errorf("cm-all/a on the host: symlink to %q (%v), want ..data/a", target, err)
	}
	for _, absent := range []string{"cm-items/a", "cm-items/c", "cm-items/sub/dir/b.txt", "sec-items/pass", "sec-items/user", "sec-items/extra", "cm-all/new"} {
		vol, rel, _ := strings.Cut(absent, "/")
		if _, err := os.Lstat(filepath.Join(volumeDir(n, final, vol), rel)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s exists on the host (%v); only the selected keys should", absent, err)
		}
	}
}

// A projected volume combines a bound service account token for an
// audience, ConfigMap and Secret items and the downward API. The token the
// module reads is accepted by a TokenReview for that audience only, as the
// pod's service account, bound to the pod. (Its refresh at 80 % of the
// 600 s lifetime is too slow for e2e; pkg/volume's
// TestTokenRefreshAt80Percent proves it with a fake clock.)
func TestVolumeProjected(t *testing.T) {
	t.Parallel()
	n := podNode(t)
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	client := cluster.AdminClient()
	sfx := rand.String(8)
	sa, err := client.CoreV1().ServiceAccounts(metav1.NamespaceDefault).Create(ctx, &v1.ServiceAccount{
		ObjectMeta: metav1.ObjectMeta{Name: "vol-sa-" + sfx},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = client.CoreV1().ServiceAccounts(sa.Namespace).Delete(context.Background(), sa.Name, metav1.DeleteOptions{})
	})
	cm := createConfigMap(ctx, t, &v1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "proj-cm-" + sfx, Namespace: metav1.NamespaceDefault},
		Data:       map[string]string{"greeting": "hello", "other": "not projected"},
	})
	sec := createSecret(ctx, t, &v1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "proj-sec-" + sfx, Namespace: metav1.NamespaceDefault},
		Data:       map[string][]byte{"password": []byte("hunter2")},
	})
	const audience = "example.com/aud"
	expiration := int64(600)

	spec := wasmPod(n.Name, testmod(t))
	spec.Spec.Containers[0].Args = []string{
		"assert-file", "/proj/config/greeting", "hello",
		"assert-file", "/proj/secret/password", "hunter2",
		"assert-file", "/proj/podname", spec.Name,
		"echo", "== /proj", "ls", "/proj",
		"echo", "== token", "read", "/proj/token", "echo", "",
	}
	spec.Spec.ServiceAccountName = sa.Name
	spec.Spec.Volumes = []v1.Volume{{Name: "proj", VolumeSource: v1.VolumeSource{Projected: &v1.ProjectedVolumeSource{
		DefaultMode: mode(0o440),
		Sources: []v1.VolumeProjection{
			{ServiceAccountToken: &v1.ServiceAccountTokenProjection{Audience: audience, ExpirationSeconds: &expiration, Path: "token"}},
			{ConfigMap: &v1.ConfigMapProjection{LocalObjectReference: v1.LocalObjectReference{Name: cm.Name},
				Items: []v1.KeyToPath{{Key: "greeting", Path: "config/greeting"}}}},
			{Secret: &v1.SecretProjection{LocalObjectReference: v1.LocalObjectReference{Name: sec.Name},
				Items: []v1.KeyToPath{{Key: "password", Path: "secret/password", Mode: mode(0o400)}}}},
			{DownwardAPI: &v1.DownwardAPIProjection{Items: []v1.DownwardAPIVolumeFile{
				{Path: "podname", FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.name"}}}}},
		},
	}}}}
	spec.Spec.Containers[0].VolumeMounts = []v1.VolumeMount{{Name: "proj", MountPath: "/proj"}}
	final := runToEnd(ctx, t, spec)
	log := logText(containerLog(t, n, final, "main", 0))
	if final.Status.Phase != v1.PodSucceeded {
		t.Fatalf("pod %s\nlog:\n%s", describeStatus(final), strings.Join(log, "\n"))
	}
	if got, want := lsSections(log)["/proj"], []string{"config", "podname", "secret", "token"}; !slices.Equal(got, want) {
		t.Errorf("module lists /proj as %q, want %q", got, want)
	}
	dir := volumeDir(n, final, "proj")
	checkHostFile(t, filepath.Join(dir, "config/greeting"), "hello", 0o440)
	checkHostFile(t, filepath.Join(dir, "secret/password"), "hunter2", 0o400)
	checkHostFile(t, filepath.Join(dir, "podname"), final.Name, 0o440)

	tokens := lsSections(log)["token"]
	if len(tokens) != 1 || strings.Count(tokens[0], ".") != 2 {
		t.Fatalf("no JWT in the module's output: %q", tokens)
	}
	token := tokens[0]
	if host, err := os.ReadFile(filepath.Join(dir, "token")); err != nil || string(host) != token {
		t.Errorf("token on the host differs from what the module read (%v)", err)
	}
	var claims struct{ Iat, Exp int64 }
	if payload, err := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[1]); err != nil || json.Unmarshal(payload, &claims) != nil {
		t.Errorf("token payload does not decode: %v", err)
	} else if claims.Exp-claims.Iat != expiration {
		t.Errorf("token lifetime %d s, want expirationSeconds %d", claims.Exp-claims.Iat, expiration)
	}

	review, err := client.AuthenticationV1().TokenReviews().Create(ctx, &authnv1.TokenReview{
		Spec: authnv1.TokenReviewSpec{Token: token, Audiences: []string{audience}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	st := review.Status
	if !st.Authenticated || st.User.Username != "system:serviceaccount:default:"+sa.Name || !slices.Contains(st.Audiences, audience) {
		t.Errorf("token review for %q: %+v", audience, st)
	}
	if got := st.User.Extra["authentication.kubernetes.io/pod-name"]; len(got) != 1 || got[0] != final.Name {
		t.Errorf("token is bound to pod %v, want %s", got, final.Name)
	}
	if got := st.User.Extra["authentication.kubernetes.io/pod-uid"]; len(got) != 1 || got[0] != string(final.UID) {
		t.Errorf("token is bound to pod UID %v, want %s", got, final.UID)
	}
	// For the API server's own audiences it is not a credential.
	review, err = client.AuthenticationV1().TokenReviews().Create(ctx, &authnv1.TokenReview{
		Spec: authnv1.TokenReviewSpec{Token: token},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if review.Status.Authenticated {
		t.Errorf("token for %q authenticates for the API server's audiences: %+v", audience, review.Status)
	}
}

// emptyDir: an init container's file is there for the app container; a
// volume written past its sizeLimit gets the pod evicted.
func TestVolumeEmptyDir(t *testing.T) {
	t.Parallel()
	n := podNode(t)
	img := testmod(t)

	t.Run("shared with an init container", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
		defer cancel()
		spec := wasmPod(n.Name, img, "assert-file", "/cache/msg", "from init", "write", "/cache/reply", "from app")
		spec.Spec.InitContainers = []v1.Container{{Name: "init", Image: img, Args: []string{"write", "/cache/msg", "from init"}}}
		spec.Spec.Volumes = []v1.Volume{{Name: "cache", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}}}
		spec.Spec.InitContainers[0].VolumeMounts = []v1.VolumeMount{{Name: "cache", MountPath: "/cache"}}
		spec.Spec.Containers[0].VolumeMounts = []v1.VolumeMount{{Name: "cache", MountPath: "/cache"}}
		final := runToEnd(ctx, t, spec)
		if final.Status.Phase != v1.PodSucceeded {
			t.Fatalf("pod %s\napp log:\n%s", describeStatus(final), containerLog(t, n, final, "main", 0))
		}
		dir := volumeDir(n, final, "cache")
		checkHostFile(t, filepath.Join(dir, "msg"), "from init", 0)
		checkHostFile(t, filepath.Join(dir, "reply"), "from app", 0)
		if fi, err := os.Stat(dir); err != nil {
			t.Error(err)
		} else if fi.Mode() != fs.ModeDir|0o750 {
			t.Errorf("emptyDir on the host: %v, want a directory of mode 0750", fi.Mode())
		}
	})

	t.Run("sizeLimit exceeded", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
		defer cancel()
		// 3 MiB into a 1 MiB emptyDir. The spec carries 64 KiB; $(VAR)
		// expansion makes the rest on the node.
		spec := wasmPod(n.Name, img,
			"write", "/data/f1", "$(MIB)", "write", "/data/f2", "$(MIB)", "write", "/data/f3", "$(MIB)",
			"echo", "wrote 3 MiB", "sleep", "10m")
		spec.Spec.Containers[0].Env = []v1.EnvVar{
			{Name: "KIB64", Value: strings.Repeat("x", 64<<10)},
			{Name: "MIB", Value: strings.Repeat("$(KIB64)", 16)},
		}
		limit := resource.MustParse("1Mi")
		spec.Spec.Volumes = []v1.Volume{{Name: "data", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{SizeLimit: &limit}}}}
		spec.Spec.Containers[0].VolumeMounts = []v1.VolumeMount{{Name: "data", MountPath: "/data"}}
		pod := createPod(ctx, t, spec)
		_, running := watchPod(ctx, t, pod, 2*time.Minute, isPhase(v1.PodRunning, v1.PodSucceeded, v1.PodFailed))
		start := time.Now()
		ev := waitForEvent(ctx, t, running, "Evicted", 2*time.Minute)
		evicted := time.Since(start)
		_, final := watchPod(ctx, t, running, 2*time.Minute, isPhase(v1.PodSucceeded, v1.PodFailed))
		t.Logf("after the pod was seen running: Evicted event at %v, phase %s at %v",
			evicted.Round(time.Second), final.Status.Phase, time.Since(start).Round(time.Second))
		if ev.Type != v1.EventTypeWarning || !strings.Contains(ev.Message, `"data"`) {
			t.Errorf("Evicted event %s %q", ev.Type, ev.Message)
		}
		if final.Status.Phase != v1.PodFailed || final.Status.Reason != "Evicted" ||
			!strings.Contains(final.Status.Message, `"data"`) || !strings.Contains(final.Status.Message, "1Mi") {
			t.Errorf("want Failed/Evicted naming volume data and 1Mi: %s", describeStatus(final))
		}
		if term := final.Status.ContainerStatuses[0].State.Terminated; term == nil {
			t.Errorf("container not terminated: %s", describeStatus(final))
		}
		if got := logText(containerLog(t, n, final, "main", 0)); !slices.Contains(got, "stdout: wrote 3 MiB") {
			t.Errorf("module log %q", got)
		}
	})
}

// hostPath: DirectoryOrCreate makes the directory and the module writes
// into the host's file system; read-only, the module reads and cannot
// write.
func TestVolumeHostPath(t *testing.T) {
	t.Parallel()
	n := podNode(t)
	img := testmod(t)
	hostPathPod := func(path string, typ v1.HostPathType, readOnly bool, args ...string) *v1.Pod {
		p := wasmPod(n.Name, img, args...)
		p.Spec.Volumes = []v1.Volume{{Name: "host", VolumeSource: v1.VolumeSource{HostPath: &v1.HostPathVolumeSource{Path: path, Type: &typ}}}}
		p.Spec.Containers[0].VolumeMounts = []v1.VolumeMount{{Name: "host", MountPath: "/host", ReadOnly: readOnly}}
		return p
	}

	t.Run("read-write DirectoryOrCreate", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
		defer cancel()
		dir := filepath.Join(t.TempDir(), "made-by-the-node")
		final := runToEnd(ctx, t, hostPathPod(dir, v1.HostPathDirectoryOrCreate, false,
			"write", "/host/out", "from wasm", "assert-file", "/host/out", "from wasm"))
		if final.Status.Phase != v1.PodSucceeded {
			t.Fatalf("pod %s\nlog:\n%s", describeStatus(final), containerLog(t, n, final, "main", 0))
		}
		if data, err := os.ReadFile(filepath.Join(dir, "out")); err != nil || string(data) != "from wasm" {
			t.Errorf("host file %q (%v), want the module's write", data, err)
		}
	})

	t.Run("read-only", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
		defer cancel()
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "in.txt"), []byte("host data"), 0o644); err != nil {
			t.Fatal(err)
		}
		final := runToEnd(ctx, t, hostPathPod(dir, v1.HostPathDirectory, true,
			"assert-file", "/host/in.txt", "host data", "echo", "read ok", "write", "/host/out", "must fail"))
		term := final.Status.ContainerStatuses[0].State.Terminated
		log := logText(containerLog(t, n, final, "main", 0))
		if term == nil || term.ExitCode != 11 || !slices.Contains(log, "stdout: read ok") {
			t.Errorf("want the read to pass and the write to exit 11: %s\nlog:\n%s", describeStatus(final), strings.Join(log, "\n"))
		}
		if _, err := os.Lstat(filepath.Join(dir, "out")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("the module wrote through a read-only hostPath mount (%v)", err)
		}
	})
}

// A ".." in an items path never reaches a node's disk: the API server
// refuses it (ValidateKeyToPath), and were it let through the node would
// refuse the volume with FailedMount and not start the pod. A ".." that
// only appears on the node, from a subPathExpr expanded there, is refused
// by the node: the container waits in CreateContainerConfigError, as in
// the kubelet, and never starts.
func TestVolumeDotDotRefused(t *testing.T) {
	t.Parallel()
	n := podNode(t)
	ctx := t.Context()
	img := testmod(t)
	cm := createConfigMap(ctx, t, &v1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "dotdot-cm-" + rand.String(8), Namespace: metav1.NamespaceDefault},
		Data:       map[string]string{"a": "alpha"},
	})

	t.Run("items path", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
		defer cancel()
		spec := wasmPod(n.Name, img, "echo", "must not run")
		spec.Spec.Volumes = []v1.Volume{{Name: "cfg", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{
			LocalObjectReference: v1.LocalObjectReference{Name: cm.Name},
			Items:                []v1.KeyToPath{{Key: "a", Path: "../../escape"}}}}}}
		spec.Spec.Containers[0].VolumeMounts = []v1.VolumeMount{{Name: "cfg", MountPath: "/cfg"}}
		_, err := cluster.AdminClient().CoreV1().Pods(spec.Namespace).Create(ctx, spec, metav1.CreateOptions{})
		if err != nil {
			if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "..") {
				t.Fatalf("creating the pod: %v, want Invalid naming '..'", err)
			}
			t.Logf("refused by the API server: %v", err)
			return
		}
		// The API server let it through: the node must refuse it.
		t.Cleanup(func() {
			zero := int64(0)
			_ = cluster.AdminClient().CoreV1().Pods(spec.Namespace).Delete(context.Background(), spec.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
		})
		pod, err := cluster.AdminClient().CoreV1().Pods(spec.Namespace).Get(ctx, spec.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ev := waitForEvent(ctx, t, pod, "FailedMount", 2*time.Minute)
		if !strings.Contains(ev.Message, "..") {
			t.Errorf("FailedMount message %q does not name the '..'", ev.Message)
		}
		checkNeverStarted(ctx, t, n, pod)
	})

	t.Run("subPathExpr expanded on the node", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
		defer cancel()
		spec := wasmPod(n.Name, img, "echo", "must not run")
		spec.Spec.Containers[0].Env = []v1.EnvVar{{Name: "SUB", Value: "../../.."}}
		spec.Spec.Volumes = []v1.Volume{{Name: "data", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}}}
		spec.Spec.Containers[0].VolumeMounts = []v1.VolumeMount{{Name: "data", MountPath: "/data", SubPathExpr: "$(SUB)"}}
		pod := createPod(ctx, t, spec)
		_, waiting := watchPod(ctx, t, pod, 2*time.Minute, waitingFor("CreateContainerConfigError"))
		if msg := waiting.Status.ContainerStatuses[0].State.Waiting.Message; !strings.Contains(msg, "..") {
			t.Errorf("waiting message %q does not name the '..'", msg)
		}
		ev := waitForEvent(ctx, t, waiting, "Failed", time.Minute)
		if !strings.Contains(ev.Message, "..") {
			t.Errorf("Failed event %q does not name the '..'", ev.Message)
		}
		checkNeverStarted(ctx, t, n, waiting)
	})
}

// A volume whose ConfigMap does not exist yet: FailedMount naming it, the
// pod waits; once the ConfigMap is created the pod runs on its own.
func TestVolumeMissingConfigMapThenCreated(t *testing.T) {
	t.Parallel()
	n := podNode(t)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	name := "late-cm-" + rand.String(8)
	spec := wasmPod(n.Name, testmod(t), "assert-file", "/cfg/k", "arrived")
	spec.Spec.Volumes = []v1.Volume{{Name: "cfg", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{
		LocalObjectReference: v1.LocalObjectReference{Name: name}}}}}
	spec.Spec.Containers[0].VolumeMounts = []v1.VolumeMount{{Name: "cfg", MountPath: "/cfg"}}
	pod := createPod(ctx, t, spec)
	ev := waitForEvent(ctx, t, pod, "FailedMount", 2*time.Minute)
	if ev.Type != v1.EventTypeWarning || !strings.Contains(ev.Message, name) {
		t.Errorf("FailedMount %s %q does not name the ConfigMap", ev.Type, ev.Message)
	}
	pod, err := cluster.AdminClient().CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pod.Status.Phase != v1.PodPending {
		t.Errorf("pod %s while its volume is missing, want Pending", describeStatus(pod))
	}
	createConfigMap(ctx, t, &v1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: metav1.NamespaceDefault},
		Data:       map[string]string{"k": "arrived"},
	})
	_, final := watchPod(ctx, t, pod, 2*time.Minute, isPhase(v1.PodSucceeded, v1.PodFailed))
	if final.Status.Phase != v1.PodSucceeded {
		t.Errorf("pod %s\nlog:\n%s", describeStatus(final), containerLog(t, n, final, "main", 0))
	}
}

// Editing a ConfigMap reaches a running pod's mounted file: on the host
// within the resync period plus the cache TTL, and the module reading it
// again after a sleep sees the new value.
func TestVolumeConfigMapLiveUpdate(t *testing.T) {
	t.Parallel()
	n := podNode(t)
	ctx, cancel := context.WithTimeout(t.Context(), 6*time.Minute)
	defer cancel()
	client := cluster.AdminClient()
	cm := createConfigMap(ctx, t, &v1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "live-cm-" + rand.String(8), Namespace: metav1.NamespaceDefault},
		Data:       map[string]string{"key": "old"},
	})
	spec := wasmPod(n.Name, testmod(t),
		"assert-file", "/cfg/key", "old", "echo", "saw old",
		"sleep", "100s",
		"echo", "== after", "read", "/cfg/key", "echo", "")
	spec.Spec.Volumes = []v1.Volume{{Name: "cfg", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{
		LocalObjectReference: v1.LocalObjectReference{Name: cm.Name}}}}}
	spec.Spec.Containers[0].VolumeMounts = []v1.VolumeMount{{Name: "cfg", MountPath: "/cfg"}}
	pod := createPod(ctx, t, spec)
	_, running := watchPod(ctx, t, pod, 2*time.Minute, isPhase(v1.PodRunning, v1.PodSucceeded, v1.PodFailed))
	if running.Status.Phase != v1.PodRunning {
		t.Fatalf("pod %s", describeStatus(running))
	}

	cm.Data["key"] = "new"
	if _, err := client.CoreV1().ConfigMaps(cm.Namespace).Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	edited := time.Now()
	hostFile := filepath.Join(volumeDir(n, running, "cfg"), "key")
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 90*time.Second, true, func(context.Context) (bool, error) {
		data, err := os.ReadFile(hostFile)
		return err == nil && string(data) == "new", nil
	})
	if err != nil {
		data, _ := os.ReadFile(hostFile)
		t.Fatalf("host file still %q 90 s after the edit", data)
	}
	t.Logf("the edit reached the node's disk after %v", time.Since(edited).Round(time.Second))

	_, final := watchPod(ctx, t, running, 3*time.Minute, isPhase(v1.PodSucceeded, v1.PodFailed))
	log := logText(containerLog(t, n, final, "main", 0))
	if final.Status.Phase != v1.PodSucceeded || !slices.Contains(log, "stdout: saw old") {
		t.Fatalf("pod %s\nlog:\n%s", describeStatus(final), strings.Join(log, "\n"))
	}
	if got := lsSections(log)["after"]; !slices.Equal(got, []string{"new"}) {
		t.Errorf("the module read %q after the edit, want new", got)
	}
}

// The environment from every source, in one container: values with $(VAR)
// expansion and $$ escaping, the downward API, resources with a divisor,
// ConfigMap and Secret keys, envFrom with prefixes, and service links; the
// command and args are expanded from it.
func TestEnvFromEverySource(t *testing.T) {
	t.Parallel()
	n := podNode(t)
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	client := cluster.AdminClient()
	sfx := rand.String(8)
	cm := createConfigMap(ctx, t, &v1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "env-cm-" + sfx, Namespace: metav1.NamespaceDefault},
		// 1st.key is not a C identifier but, with the relaxed validation
		// that is GA since Kubernetes 1.34, is a valid name.
		Data: map[string]string{"color": "blue", "size": "L", "1st.key": "digit"},
	})
	sec := createSecret(ctx, t, &v1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "env-sec-" + sfx, Namespace: metav1.NamespaceDefault},
		Data:       map[string][]byte{"password": []byte("hunter2"), "token": []byte("t0k")},
	})
	kube, err := client.CoreV1().Services(metav1.NamespaceDefault).Get(ctx, "kubernetes", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := client.CoreV1().Services(metav1.NamespaceDefault).Create(ctx, &v1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "env-svc-" + sfx},
		Spec: v1.ServiceSpec{
			Selector: map[string]string{"app": "none-" + sfx},
			Ports:    []v1.ServicePort{{Name: "http", Port: 8080, Protocol: v1.ProtocolTCP}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = client.CoreV1().Services(svc.Namespace).Delete(context.Background(), svc.Name, metav1.DeleteOptions{})
	})
	svcEnv := strings.ToUpper(strings.ReplaceAll(svc.Name, "-", "_"))

	spec := wasmPod(n.Name, testmod(t))
	spec.Labels = map[string]string{"x": "label-x"}
	spec.Annotations = map[string]string{"y": "annotation-y"}
	spec.Spec.ServiceAccountName = "default"
	c := &spec.Spec.Containers[0]
	c.Resources = v1.ResourceRequirements{
		Limits:   v1.ResourceList{v1.ResourceMemory: resource.MustParse("64Mi")},
		Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse("250m")},
	}
	field := func(name, path string) v1.EnvVar {
		return v1.EnvVar{Name: name, ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{FieldPath: path}}}
	}
	yes := true
	c.EnvFrom = []v1.EnvFromSource{
		{Prefix: "P_", ConfigMapRef: &v1.ConfigMapEnvSource{LocalObjectReference: v1.LocalObjectReference{Name: cm.Name}}},
		{ConfigMapRef: &v1.ConfigMapEnvSource{LocalObjectReference: v1.LocalObjectReference{Name: cm.Name}}},
		{Prefix: "S_", SecretRef: &v1.SecretEnvSource{LocalObjectReference: v1.LocalObjectReference{Name: sec.Name}}},
		{ConfigMapRef: &v1.ConfigMapEnvSource{LocalObjectReference: v1.LocalObjectReference{Name: "absent-" + sfx}, Optional: &yes}},
	}
	c.Env = []v1.EnvVar{
		{Name: "PLAIN", Value: "plain value"},
		{Name: "PROG", Value: "my-prog"},
		field("POD_NAME", "metadata.name"),
		field("POD_NAMESPACE", "metadata.namespace"),
		field("POD_UID", "metadata.uid"),
		field("LABEL_X", "metadata.labels['x']"),
		field("ANNOTATION_Y", "metadata.annotations['y']"),
		field("NODE_NAME", "spec.nodeName"),
		field("SA_NAME", "spec.serviceAccountName"),
		field("HOST_IP", "status.hostIP"),
		field("POD_IP", "status.podIP"),
		{Name: "MEM_MI", ValueFrom: &v1.EnvVarSource{ResourceFieldRef: &v1.ResourceFieldSelector{
			Resource: "limits.memory", Divisor: resource.MustParse("1Mi")}}},
		{Name: "CPU_M", ValueFrom: &v1.EnvVarSource{ResourceFieldRef: &v1.ResourceFieldSelector{
			ContainerName: "main", Resource: "requests.cpu", Divisor: resource.MustParse("1m")}}},
		{Name: "CM_COLOR", ValueFrom: &v1.EnvVarSource{ConfigMapKeyRef: &v1.ConfigMapKeySelector{
			LocalObjectReference: v1.LocalObjectReference{Name: cm.Name}, Key: "color"}}},
		{Name: "SEC_PASSWORD", ValueFrom: &v1.EnvVarSource{SecretKeyRef: &v1.SecretKeySelector{
			LocalObjectReference: v1.LocalObjectReference{Name: sec.Name}, Key: "password"}}},
		{Name: "OPTIONAL_MISSING", ValueFrom: &v1.EnvVarSource{ConfigMapKeyRef: &v1.ConfigMapKeySelector{
			LocalObjectReference: v1.LocalObjectReference{Name: cm.Name}, Key: "nope", Optional: &yes}}},
		{Name: "P_color", Value: "overridden"},
		{Name: "EXPANDED", Value: "$(PLAIN)/$(CM_COLOR)/$(S_token)/$(NOPE)"},
		{Name: "ESCAPED", Value: "$$(PLAIN)"},
		{Name: "FROM_SERVICE", Value: "$(KUBERNETES_SERVICE_HOST)"},
	}
	c.Command = []string{"$(PROG)"}
	want := [][2]string{
		{"PLAIN", "plain value"},
		{"POD_NAME", spec.Name},
		{"POD_NAMESPACE", spec.Namespace},
		{"LABEL_X", "label-x"},
		{"ANNOTATION_Y", "annotation-y"},
		{"NODE_NAME", n.Name},
		{"SA_NAME", "default"},
		{"HOST_IP", "127.0.0.1"},
		{"POD_IP", "127.0.0.1"},
		{"MEM_MI", "64"},
		{"CPU_M", "250"},
		{"CM_COLOR", "blue"},
		{"SEC_PASSWORD", "hunter2"},
		{"P_color", "overridden"},
		{"P_size", "L"},
		{"P_1st.key", "digit"},
		{"color", "blue"},
		{"size", "L"},
		{"1st.key", "digit"},
		{"S_password", "hunter2"},
		{"S_token", "t0k"},
		{"EXPANDED", "plain value/blue/t0k/$(NOPE)"},
		{"ESCAPED", "$(PLAIN)"},
		{"FROM_SERVICE", kube.Spec.ClusterIP},
		{"KUBERNETES_SERVICE_HOST", kube.Spec.ClusterIP},
		{"KUBERNETES_SERVICE_PORT", strconv.Itoa(int(kube.Spec.Ports[0].Port))},
		{"KUBERNETES_PORT", fmt.Sprintf("tcp://%s:%d", kube.Spec.ClusterIP, kube.Spec.Ports[0].Port)},
		{svcEnv + "_SERVICE_HOST", svc.Spec.ClusterIP},
		{svcEnv + "_SERVICE_PORT", "8080"},
		{svcEnv + "_SERVICE_PORT_HTTP", "8080"},
	}
	// The args are expanded too: $$ keeps a $ for assert-env to compare.
	for _, kv := range want {
		c.Args = append(c.Args, "assert-env", strings.ReplaceAll(kv[0]+"="+kv[1], "$", "$$"))
	}
	// argv is printed first, so that the section markers it contains are
	// not taken for the module's output.
	c.Args = append([]string{"args", "echo", "$(PLAIN)", "echo", "$$(PLAIN)", "echo", "$(NOPE)", "echo", "$$$(CM_COLOR)"}, c.Args...)
	c.Args = append(c.Args,
		"echo", "== uid", "env", "POD_UID",
		"echo", "== optional", "env", "OPTIONAL_MISSING")
	final := runToEnd(ctx, t, spec)
	log := logText(containerLog(t, n, final, "main", 0))
	if final.Status.Phase != v1.PodSucceeded {
		t.Fatalf("pod %s\nlog:\n%s", describeStatus(final), strings.Join(log, "\n"))
	}
	stdout := slices.DeleteFunc(slices.Clone(log), func(l string) bool { return !strings.HasPrefix(l, "stdout: ") })
	argc := 1 + len(c.Args)
	if len(stdout) < argc+4 {
		t.Fatalf("module output %q", log)
	}
	argv := stdout[:argc]
	if got, want := argv[:9], []string{"my-prog", "args", "echo", "plain value", "echo", "$(PLAIN)", "echo", "$(NOPE)", "echo"}; !slices.Equal(got, prefixed(want)) {
		t.Errorf("argv starts %q, want %q", got, prefixed(want))
	}
	if got, want := argv[9], "stdout: $blue"; got != want {
		t.Errorf("argv[9] %q, want %q", got, want)
	}
	if got, want := stdout[argc:argc+4], prefixed([]string{"plain value", "$(PLAIN)", "$(NOPE)", "$blue"}); !slices.Equal(got, want) {
		t.Errorf("echoed %q, want %q", got, want)
	}
	out := lsSections(stdout[argc:])
	if got := out["uid"]; !slices.Equal(got, []string{string(final.UID)}) {
		t.Errorf("POD_UID %q, want %s", got, final.UID)
	}
	if got := out["optional"]; !slices.Equal(got, []string{""}) {
		t.Errorf("OPTIONAL_MISSING %q, want unset", got)
	}
	if reasons := eventReasons(events(ctx, t, final)); slices.Contains(reasons, "InvalidEnvironmentVariableNames") {
		t.Errorf("keys skipped although every ConfigMap key is a valid relaxed name: %v", reasons)
	}
}

// A missing required ConfigMap key holds the container in
// CreateContainerConfigError; adding the key lets the pod run to the end
// without anyone touching it.
func TestEnvMissingKeyThenAdded(t *testing.T) {
	t.Parallel()
	n := podNode(t)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cm := createConfigMap(ctx, t, &v1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "env-late-" + rand.String(8), Namespace: metav1.NamespaceDefault},
		Data:       map[string]string{"present": "yes"},
	})
	spec := wasmPod(n.Name, testmod(t), "assert-env", "LATE=arrived", "assert-env", "PRESENT=yes")
	ref := func(name, key string) v1.EnvVar {
		return v1.EnvVar{Name: name, ValueFrom: &v1.EnvVarSource{ConfigMapKeyRef: &v1.ConfigMapKeySelector{
			LocalObjectReference: v1.LocalObjectReference{Name: cm.Name}, Key: key}}}
	}
	spec.Spec.Containers[0].Env = []v1.EnvVar{ref("PRESENT", "present"), ref("LATE", "late")}
	pod := createPod(ctx, t, spec)
	_, waiting := watchPod(ctx, t, pod, 2*time.Minute, waitingFor("CreateContainerConfigError"))
	if msg := waiting.Status.ContainerStatuses[0].State.Waiting.Message; !strings.Contains(msg, "late") {
		t.Errorf("waiting message %q does not name the key", msg)
	}
	if waiting.Status.Phase != v1.PodPending {
		t.Errorf("pod %s, want Pending", describeStatus(waiting))
	}
	if ev := waitForEvent(ctx, t, waiting, "Failed", time.Minute); ev.Type != v1.EventTypeWarning || !strings.Contains(ev.Message, "late") {
		t.Errorf("Failed event %s %q", ev.Type, ev.Message)
	}

	cm.Data["late"] = "arrived"
	if _, err := cluster.AdminClient().CoreV1().ConfigMaps(cm.Namespace).Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	_, final := watchPod(ctx, t, waiting, 2*time.Minute, isPhase(v1.PodSucceeded, v1.PodFailed))
	if final.Status.Phase != v1.PodSucceeded {
		t.Errorf("pod %s\nlog:\n%s", describeStatus(final), containerLog(t, n, final, "main", 0))
	}
}

func mode(m int32) *int32 { return &m }

func prefixed(lines []string) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = "stdout: " + l
	}
	return out
}

// createConfigMap creates cm and deletes it when the test ends.
func createConfigMap(ctx context.Context, t *testing.T, cm *v1.ConfigMap) *v1.ConfigMap {
	t.Helper()
	client := cluster.AdminClient().CoreV1().ConfigMaps(cm.Namespace)
	created, err := client.Create(ctx, cm, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating ConfigMap: %v", err)
	}
	t.Cleanup(func() { _ = client.Delete(context.Background(), cm.Name, metav1.DeleteOptions{}) })
	return created
}

// createSecret creates s and deletes it when the test ends.
func createSecret(ctx context.Context, t *testing.T, s *v1.Secret) *v1.Secret {
	t.Helper()
	client := cluster.AdminClient().CoreV1().Secrets(s.Namespace)
	created, err := client.Create(ctx, s, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating Secret: %v", err)
	}
	t.Cleanup(func() { _ = client.Delete(context.Background(), s.Name, metav1.DeleteOptions{}) })
	return created
}

// mountsAtNames mounts each volume at /<name>.
func mountsAtNames(vols []v1.Volume) []v1.VolumeMount {
	var out []v1.VolumeMount
	for _, v := range vols {
		out = append(out, v1.VolumeMount{Name: v.Name, MountPath: "/" + v.Name})
	}
	return out
}

// volumeDir is where node keeps a pod-local volume.
func volumeDir(n *krustlet.Node, pod *v1.Pod, name string) string {
	return filepath.Join(n.DataDir, "pods", string(pod.UID), "volumes", name)
}

// checkHostFile checks a file's content and, unless perm is 0, its
// permission bits on the host, following symlinks.
func checkHostFile(t *testing.T, path, content string, perm fs.FileMode) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil || string(data) != content {
		t.Errorf("%s on the host holds %q (%v), want %q", path, data, err, content)
		return
	}
	if perm == 0 {
		return
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Error(err)
	} else if fi.Mode().Perm() != perm {
		t.Errorf("%s on the host has mode %v, want %v", path, fi.Mode().Perm(), perm)
	}
}

// lsSections splits the module's stdout into sections opened by an
// "== NAME" line: NAME → the lines up to the next section, leaving out
// names that start with ".." (the atomic writer's entries).
func lsSections(log []string) map[string][]string {
	out := map[string][]string{}
	section := ""
	for _, l := range log {
		text, ok := strings.CutPrefix(l, "stdout: ")
		if !ok {
			continue
		}
		if name, ok := strings.CutPrefix(text, "== "); ok {
			section = name
			out[section] = []string{}
			continue
		}
		if section != "" && !strings.HasPrefix(text, "..") {
			out[section] = append(out[section], text)
		}
	}
	return out
}

// waitingFor is true once the first container waits with reason.
func waitingFor(reason string) func(*v1.Pod) bool {
	return func(p *v1.Pod) bool {
		cs := p.Status.ContainerStatuses
		return len(cs) > 0 && cs[0].State.Waiting != nil && cs[0].State.Waiting.Reason == reason
	}
}

// waitForEvent waits for an event with reason about pod and returns it.
func waitForEvent(ctx context.Context, t *testing.T, pod *v1.Pod, reason string, timeout time.Duration) v1.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := cluster.AdminClient().CoreV1().Events(pod.Namespace)
	selector := fields.OneTermEqualSelector("involvedObject.uid", string(pod.UID)).String()
	list, err := client.List(ctx, metav1.ListOptions{FieldSelector: selector})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range list.Items {
		if e.Reason == reason {
			return e
		}
	}
	w, err := client.Watch(ctx, metav1.ListOptions{FieldSelector: selector, ResourceVersion: list.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			t.Fatalf("no %s event for pod %s within %v; events: %v", reason, pod.Name, timeout, eventReasons(events(context.Background(), t, pod)))
		case ev, ok := <-w.ResultChan():
			if !ok {
				t.Fatalf("event watch for pod %s ended before a %s event", pod.Name, reason)
			}
			if e, ok := ev.Object.(*v1.Event); ok && ev.Type != watch.Deleted && e.Reason == reason {
				return *e
			}
		}
	}
}

// checkNeverStarted checks that no container of pod ran: no Started event,
// no log, and the pod still Pending.
func checkNeverStarted(ctx context.Context, t *testing.T, n *krustlet.Node, pod *v1.Pod) {
	t.Helper()
	got, err := cluster.AdminClient().CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Status.Phase != v1.PodPending {
		t.Errorf("pod %s, want Pending", describeStatus(got))
	}
	if reasons := eventReasons(events(ctx, t, got)); slices.Contains(reasons, "Started") {
		t.Errorf("a container started: events %v", reasons)
	}
	logDir := filepath.Join(n.DataDir, "logs", "pods", fmt.Sprintf("%s_%s_%s", got.Namespace, got.Name, got.UID))
	if runs, _ := filepath.Glob(filepath.Join(logDir, "*", "*.log")); len(runs) != 0 {
		t.Errorf("container logs exist: %v", runs)
	}
}
