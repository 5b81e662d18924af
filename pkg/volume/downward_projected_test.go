package volume

import (
	"encoding/pem"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	fakediscovery "k8s.io/client-go/discovery/fake"
	k8stesting "k8s.io/client-go/testing"
)

func TestPodFieldValue(t *testing.T) {
	pod := newPod()
	ips := []net.IP{net.ParseIP("10.0.0.5"), net.ParseIP("fd00::5")}
	cases := map[string]string{
		"metadata.name":                "web",
		"metadata.namespace":           "ns",
		"metadata.uid":                 "uid-1",
		"metadata.labels['app']":       "web",
		"metadata.labels['missing']":   "",
		"metadata.annotations['note']": "hello",
		"metadata.labels":              "app=\"web\"\ntier=\"front\"",
		"metadata.annotations":         "note=\"hello\"",
		"spec.nodeName":                "node-1",
		"spec.serviceAccountName":      "sa",
		"status.hostIP":                "10.0.0.5",
		"status.hostIPs":               "10.0.0.5,fd00::5",
		"status.podIP":                 "10.0.0.5",
		"status.podIPs":                "10.0.0.5,fd00::5",
	}
	for path, want := range cases {
		t.Run(path, func(t *testing.T) {
			got, err := PodFieldValue(pod, &v1.ObjectFieldSelector{APIVersion: "v1", FieldPath: path}, ips)
			if err != nil || got != want {
				t.Errorf("= %q, %v; want %q", got, err, want)
			}
		})
	}
	for _, bad := range []string{"spec.restartPolicy", "metadata.name['x']", "metadata.labels['bad key!']"} {
		if _, err := PodFieldValue(pod, &v1.ObjectFieldSelector{FieldPath: bad}, ips); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
	if _, err := PodFieldValue(pod, &v1.ObjectFieldSelector{APIVersion: "v2", FieldPath: "metadata.name"}, ips); err == nil {
		t.Error("apiVersion v2 accepted")
	}
}

func TestContainerResourceValue(t *testing.T) {
	pod := newPod()
	c := &pod.Spec.Containers[0]
	alloc := v1.ResourceList{v1.ResourceCPU: mustQuantity("4"), v1.ResourceMemory: mustQuantity("8Gi")}
	cases := []struct {
		resource, divisor, want string
	}{
		{"limits.memory", "", "67108864"},
		{"limits.memory", "1Mi", "64"},
		{"limits.cpu", "", "4"},      // no limit: node allocatable
		{"limits.cpu", "1m", "4000"}, // with divisor
		{"requests.cpu", "1m", "250"},
		{"requests.cpu", "", "1"}, // rounded up
		{"requests.memory", "", "0"},
		{"limits.ephemeral-storage", "", "0"}, // not in allocatable here
	}
	for _, tc := range cases {
		t.Run(tc.resource+"/"+tc.divisor, func(t *testing.T) {
			fs := &v1.ResourceFieldSelector{Resource: tc.resource}
			if tc.divisor != "" {
				fs.Divisor = mustQuantity(tc.divisor)
			}
			got, err := ContainerResourceValue(fs, pod, c, alloc)
			if err != nil || got != tc.want {
				t.Errorf("= %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	// Pod-level limits come before the node's allocatable.
	pl := pod.DeepCopy()
	pl.Spec.Resources = &v1.ResourceRequirements{Limits: v1.ResourceList{v1.ResourceCPU: mustQuantity("2")}}
	if got, _ := ContainerResourceValue(&v1.ResourceFieldSelector{Resource: "limits.cpu"}, pl, &pl.Spec.Containers[0], alloc); got != "2" {
		t.Errorf("limits.cpu with a pod-level limit = %q, want 2", got)
	}
	if _, err := ContainerResourceValue(&v1.ResourceFieldSelector{Resource: "limits.gpu"}, pod, c, alloc); err == nil {
		t.Error("unsupported resource accepted")
	}
	if _, err := ContainerResourceValue(&v1.ResourceFieldSelector{ContainerName: "nope", Resource: "limits.cpu"}, pod, c, alloc); err == nil {
		t.Error("unknown container accepted")
	}
}

func TestDownwardAPIVolume(t *testing.T) {
	f := newFixture(t)
	vol := v1.Volume{Name: "info", VolumeSource: v1.VolumeSource{DownwardAPI: &v1.DownwardAPIVolumeSource{
		DefaultMode: ptr(int32(0o444)),
		Items: []v1.DownwardAPIVolumeFile{
			{Path: "labels", FieldRef: &v1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.labels"}},
			{Path: "meta/name", FieldRef: &v1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.name"}, Mode: ptr(int32(0o400))},
			{Path: "app", FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.labels['app']"}},
			{Path: "mem", ResourceFieldRef: &v1.ResourceFieldSelector{ContainerName: "app", Resource: "limits.memory", Divisor: mustQuantity("1Mi")}},
			{Path: "cpu", ResourceFieldRef: &v1.ResourceFieldSelector{ContainerName: "app", Resource: "limits.cpu", Divisor: mustQuantity("1m")}},
		},
	}}}
	pod := newPod(vol)
	dir := f.setUp(t, pod)["info"]
	want := map[string]string{
		"labels":    "app=\"web\"\ntier=\"front\"",
		"meta/name": "web",
		"app":       "web",
		"mem":       "64",
		"cpu":       "4000", // node allocatable
	}
	for p, w := range want {
		if got := readFile(t, filepath.Join(dir, p)); got != w {
			t.Errorf("%s = %q, want %q", p, got, w)
		}
	}
	if got := fileMode(t, filepath.Join(dir, "meta/name")); got != 0o400 {
		t.Errorf("mode of meta/name = %v", got)
	}
	if got := fileMode(t, filepath.Join(dir, "labels")); got != 0o444 {
		t.Errorf("mode of labels = %v", got)
	}
	if got := fileMode(t, dir); got != 0o700 {
		t.Errorf("downwardAPI volume dir mode = %v, want 0700 (memory-backed)", got)
	}

	// Labels change: the file follows on the next SetUp.
	pod.Labels["app"] = "web2"
	f.setUp(t, pod)
	if got := readFile(t, filepath.Join(dir, "app")); got != "web2" {
		t.Errorf("app = %q after the label changed", got)
	}
}

// tokenReactor answers TokenRequests with numbered tokens valid for the
// requested time from clk's now, and records the requests.
type tokenReactor struct {
	f        *fixture
	mu       sync.Mutex
	requests []*authenticationv1.TokenRequest
	names    []string
	fail     error
}

func (r *tokenReactor) install() {
	r.f.client.PrependReactor("create", "serviceaccounts", func(a k8stesting.Action) (bool, runtime.Object, error) {
		ca := a.(k8stesting.CreateAction)
		if ca.GetSubresource() != "token" {
			return false, nil, nil
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.fail != nil {
			return true, nil, r.fail
		}
		tr := ca.GetObject().(*authenticationv1.TokenRequest).DeepCopy()
		r.requests = append(r.requests, tr)
		r.names = append(r.names, ca.(k8stesting.CreateActionImpl).Name)
		tr.Status.Token = "token-" + string(rune('0'+len(r.requests)))
		tr.Status.ExpirationTimestamp = metav1.NewTime(r.f.clock.Now().Add(time.Duration(*tr.Spec.ExpirationSeconds) * time.Second))
		return true, tr, nil
	})
}

func (r *tokenReactor) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.requests)
}

func projectedVolume(sources ...v1.VolumeProjection) v1.Volume {
	return v1.Volume{Name: "proj", VolumeSource: v1.VolumeSource{Projected: &v1.ProjectedVolumeSource{Sources: sources}}}
}

func TestProjectedVolume(t *testing.T) {
	f := newFixture(t,
		configMap("kube-root-ca.crt", map[string]string{"ca.crt": "CA", "other": "x"}),
		secret("creds", map[string]string{"user": "admin"}),
	)
	tokens := &tokenReactor{f: f}
	tokens.install()
	vol := projectedVolume(
		v1.VolumeProjection{ServiceAccountToken: &v1.ServiceAccountTokenProjection{Audience: "vault", ExpirationSeconds: ptr(int64(3607)), Path: "token"}},
		v1.VolumeProjection{ConfigMap: &v1.ConfigMapProjection{LocalObjectReference: v1.LocalObjectReference{Name: "kube-root-ca.crt"}, Items: []v1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}}}},
		v1.VolumeProjection{Secret: &v1.SecretProjection{LocalObjectReference: v1.LocalObjectReference{Name: "creds"}, Items: []v1.KeyToPath{{Key: "user", Path: "creds/user", Mode: ptr(int32(0o400))}}}},
		v1.VolumeProjection{Secret: &v1.SecretProjection{LocalObjectReference: v1.LocalObjectReference{Name: "absent"}, Optional: ptr(true)}},
		v1.VolumeProjection{DownwardAPI: &v1.DownwardAPIProjection{Items: []v1.DownwardAPIVolumeFile{{Path: "namespace", FieldRef: &v1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.namespace"}}}}},
	)
	vol.Projected.DefaultMode = ptr(int32(0o420))
	dir := f.setUp(t, newPod(vol))["proj"]
	for p, w := range map[string]string{"token": "token-1", "ca.crt": "CA", "creds/user": "admin", "namespace": "ns"} {
		if got := readFile(t, filepath.Join(dir, p)); got != w {
			t.Errorf("%s = %q, want %q", p, got, w)
		}
	}
	if exists(filepath.Join(dir, "other")) {
		t.Error("unlisted configMap key projected")
	}
	if got := fileMode(t, filepath.Join(dir, "creds/user")); got != 0o400 {
		t.Errorf("mode of creds/user = %v", got)
	}
	if got := fileMode(t, filepath.Join(dir, "token")); got != 0o420 {
		t.Errorf("mode of token = %v", got)
	}
	if tokens.count() != 1 {
		t.Fatalf("%d token requests", tokens.count())
	}
	tr := tokens.requests[0]
	if tokens.names[0] != "sa" || strings.Join(tr.Spec.Audiences, ",") != "vault" || *tr.Spec.ExpirationSeconds != 3607 {
		t.Errorf("token request for %s: %+v", tokens.names[0], tr.Spec)
	}
	if ref := tr.Spec.BoundObjectRef; ref == nil || ref.Kind != "Pod" || ref.Name != "web" || ref.UID != "uid-1" || ref.APIVersion != "v1" {
		t.Errorf("bound object = %+v", tr.Spec.BoundObjectRef)
	}

	// A required source missing fails the whole volume with the sentinel.
	f2 := newFixture(t)
	_, err := f2.m.SetUp(f2.ctx, newPod(projectedVolume(v1.VolumeProjection{ConfigMap: &v1.ConfigMapProjection{LocalObjectReference: v1.LocalObjectReference{Name: "nope"}}})), f2.podDir)
	if !errors.Is(err, ErrSourceMissing) {
		t.Errorf("err = %v", err)
	}
}

func TestTokenRefreshAt80Percent(t *testing.T) {
	f := newFixture(t)
	tokens := &tokenReactor{f: f}
	tokens.install()
	pod := newPod(projectedVolume(v1.VolumeProjection{ServiceAccountToken: &v1.ServiceAccountTokenProjection{ExpirationSeconds: ptr(int64(1000)), Path: "token"}}))
	dir := f.setUp(t, pod)["proj"]
	if got := readFile(t, filepath.Join(dir, "token")); got != "token-1" {
		t.Fatalf("token = %q", got)
	}

	if at, ok := f.m.NextTokenRefresh(pod.UID); !ok || !at.Equal(epoch.Add(800*time.Second)) {
		t.Errorf("NextTokenRefresh = %v, %v; want 80 %% of the lifetime", at, ok)
	}
	if _, ok := f.m.NextTokenRefresh("other"); ok {
		t.Error("NextTokenRefresh for a pod without tokens")
	}

	// Periodic SetUps before 80 % of the lifetime reuse the token.
	for _, at := range []time.Duration{100 * time.Second, 500 * time.Second, 799 * time.Second} {
		f.clock.SetTime(epoch.Add(at))
		f.setUp(t, pod)
		if tokens.count() != 1 {
			t.Fatalf("at %v: %d token requests, want 1", at, tokens.count())
		}
	}
	// The one at 80 % gets a new token and writes it.
	f.clock.SetTime(epoch.Add(800 * time.Second))
	f.setUp(t, pod)
	if tokens.count() != 2 {
		t.Fatalf("after 80 %%: %d token requests, want 2", tokens.count())
	}
	if got := readFile(t, filepath.Join(dir, "token")); got != "token-2" {
		t.Errorf("token = %q, want token-2", got)
	}

	// A failed refresh keeps the valid token; an expired one is an error.
	if at, _ := f.m.NextTokenRefresh(pod.UID); !at.Equal(epoch.Add(1600 * time.Second)) {
		t.Errorf("NextTokenRefresh = %v after the refresh", at)
	}
	tokens.fail = errors.New("apiserver down")
	f.clock.SetTime(epoch.Add(800*time.Second + 900*time.Second))
	f.setUp(t, pod)
	if got := readFile(t, filepath.Join(dir, "token")); got != "token-2" {
		t.Errorf("token = %q after a failed refresh", got)
	}
	f.clock.SetTime(epoch.Add(800*time.Second + 1001*time.Second))
	if _, err := f.m.SetUp(f.ctx, pod, f.podDir); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("err = %v, want an expired token error", err)
	}

	// TearDown forgets the pod's tokens.
	if err := f.m.TearDown(f.ctx, pod.UID, f.podDir); err != nil {
		t.Fatal(err)
	}
	if len(f.m.tokens.cache) != 0 {
		t.Errorf("%d tokens cached after TearDown", len(f.m.tokens.cache))
	}
}

func TestTokenRefreshAfter24h(t *testing.T) {
	f := newFixture(t)
	tokens := &tokenReactor{f: f}
	tokens.install()
	pod := newPod(projectedVolume(v1.VolumeProjection{ServiceAccountToken: &v1.ServiceAccountTokenProjection{ExpirationSeconds: ptr(int64(7 * 24 * 3600)), Path: "token"}}))
	f.setUp(t, pod)
	f.clock.SetTime(epoch.Add(23 * time.Hour))
	f.setUp(t, pod)
	if tokens.count() != 1 {
		t.Fatalf("%d requests at 23h", tokens.count())
	}
	f.clock.SetTime(epoch.Add(24*time.Hour + time.Second))
	f.setUp(t, pod)
	if tokens.count() != 2 {
		t.Errorf("%d requests after 24h, want 2", tokens.count())
	}
}

func testCert(t *testing.T, b byte) string {
	t.Helper()
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{0x30, b}}))
}

func TestClusterTrustBundle(t *testing.T) {
	a, b, c := testCert(t, 1), testCert(t, 2), testCert(t, 3)
	bundle := func(name, signer, trust string, labels map[string]string) *certificatesv1.ClusterTrustBundle {
		return &certificatesv1.ClusterTrustBundle{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
			Spec:       certificatesv1.ClusterTrustBundleSpec{SignerName: signer, TrustBundle: trust},
		}
	}
	f := newFixture(t,
		bundle("plain", "", b+a+a, nil),
		bundle("s1", "example.com/signer", c+a, map[string]string{"env": "prod"}),
		bundle("s2", "example.com/signer", b, map[string]string{"env": "test"}),
		bundle("s3", "other.com/signer", a, map[string]string{"env": "prod"}),
	)
	f.client.Discovery().(*fakediscovery.FakeDiscovery).Resources = []*metav1.APIResourceList{{
		GroupVersion: "certificates.k8s.io/v1",
		APIResources: []metav1.APIResource{{Name: "clustertrustbundles"}},
	}}
	vol := projectedVolume(
		v1.VolumeProjection{ClusterTrustBundle: &v1.ClusterTrustBundleProjection{Name: ptr("plain"), Path: "by-name.pem"}},
		v1.VolumeProjection{ClusterTrustBundle: &v1.ClusterTrustBundleProjection{SignerName: ptr("example.com/signer"), LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"env": "prod"}}, Path: "prod.pem"}},
		v1.VolumeProjection{ClusterTrustBundle: &v1.ClusterTrustBundleProjection{SignerName: ptr("example.com/signer"), LabelSelector: &metav1.LabelSelector{}, Path: "all.pem"}},
		v1.VolumeProjection{ClusterTrustBundle: &v1.ClusterTrustBundleProjection{Name: ptr("absent"), Optional: ptr(true), Path: "optional.pem"}},
	)
	dir := f.setUp(t, newPod(vol))["proj"]
	for p, want := range map[string]string{
		"by-name.pem":  a + b, // deduplicated and sorted
		"prod.pem":     a + c,
		"all.pem":      a + b + c,
		"optional.pem": "",
	} {
		if got := readFile(t, filepath.Join(dir, p)); got != want {
			t.Errorf("%s = %q, want %q", p, got, want)
		}
	}

	// Nil selector matches nothing; required means an error.
	_, err := f.m.SetUp(f.ctx, newPod(projectedVolume(v1.VolumeProjection{ClusterTrustBundle: &v1.ClusterTrustBundleProjection{SignerName: ptr("example.com/signer"), Path: "x.pem"}})), f.podDir)
	if !errors.Is(err, ErrSourceMissing) {
		t.Errorf("nil selector: err = %v", err)
	}
}

func TestClusterTrustBundleNotServed(t *testing.T) {
	f := newFixture(t)
	vol := projectedVolume(v1.VolumeProjection{ClusterTrustBundle: &v1.ClusterTrustBundleProjection{Name: ptr("plain"), Path: "ca.pem"}})
	_, err := f.m.SetUp(f.ctx, newPod(vol), f.podDir)
	if err == nil || !strings.Contains(err.Error(), "serves no ClusterTrustBundles") {
		t.Errorf("err = %v, want a clear error", err)
	}
}

func TestConcurrentSetUp(t *testing.T) {
	f := newFixture(t, configMap("cfg", map[string]string{"a": "A"}), secret("s", map[string]string{"k": "v"}))
	tokens := &tokenReactor{f: f}
	tokens.install()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pod := newPod(configMapVolume("config", "cfg"), secretVolume("sec", "s"),
				projectedVolume(v1.VolumeProjection{ServiceAccountToken: &v1.ServiceAccountTokenProjection{Path: "token"}}))
			pod.UID = types.UID("uid-" + string(rune('a'+i)))
			dir := filepath.Join(filepath.Dir(f.podDir), string(pod.UID))
			for range 3 {
				if _, err := f.m.SetUp(f.ctx, pod, dir); err != nil {
					t.Error(err)
				}
			}
			if err := f.m.TearDown(f.ctx, pod.UID, dir); err != nil {
				t.Error(err)
			}
			if _, err := os.Stat(filepath.Join(dir, "volumes")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("volumes left after TearDown: %v", err)
			}
		}()
	}
	wg.Wait()
}
