package volume

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/klog/v2/ktesting"
	testingclock "k8s.io/utils/clock/testing"
)

// epoch is the fake clock's start.
var epoch = time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)

type fixture struct {
	m      *Manager
	client *fake.Clientset
	clock  *testingclock.FakeClock
	ctx    context.Context
	podDir string
}

// newFixture returns a Manager on a fake clientset holding objs, with a
// fake clock, no tmpfs and no token jitter.
func newFixture(t *testing.T, objs ...runtime.Object) *fixture {
	t.Helper()
	client := fake.NewClientset(objs...)
	clk := testingclock.NewFakeClock(epoch)
	m, err := NewManager(Options{
		Client: client,
		Clock:  clk,
		Tmpfs:  TmpfsNever,
		Allocatable: func() v1.ResourceList {
			return v1.ResourceList{
				v1.ResourceCPU:              mustQuantity("4"),
				v1.ResourceMemory:           mustQuantity("8Gi"),
				v1.ResourceEphemeralStorage: mustQuantity("100Gi"),
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	m.tokens.jitter = func() time.Duration { return 0 }
	_, ctx := ktesting.NewTestContext(t)
	return &fixture{m: m, client: client, clock: clk, ctx: ctx, podDir: filepath.Join(t.TempDir(), "pods", "uid-1")}
}

func (f *fixture) setUp(t *testing.T, pod *v1.Pod) map[string]string {
	t.Helper()
	paths, err := f.m.SetUp(f.ctx, pod, f.podDir)
	if err != nil {
		t.Fatalf("SetUp: %v", err)
	}
	return paths
}

func newPod(volumes ...v1.Volume) *v1.Pod {
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: "web", Namespace: "ns", UID: "uid-1",
			Labels:      map[string]string{"app": "web", "tier": "front"},
			Annotations: map[string]string{"note": "hello"},
		},
		Spec: v1.PodSpec{
			NodeName:           "node-1",
			ServiceAccountName: "sa",
			Containers: []v1.Container{{
				Name: "app",
				Resources: v1.ResourceRequirements{
					Limits:   v1.ResourceList{v1.ResourceMemory: mustQuantity("64Mi")},
					Requests: v1.ResourceList{v1.ResourceCPU: mustQuantity("250m")},
				},
			}},
			Volumes: volumes,
		},
	}
}

func configMap(name string, data map[string]string) *v1.ConfigMap {
	return &v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns"}, Data: data}
}

func secret(name string, data map[string]string) *v1.Secret {
	s := &v1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns"}, Data: map[string][]byte{}}
	for k, v := range data {
		s.Data[k] = []byte(v)
	}
	return s
}

func mustQuantity(s string) resource.Quantity { return resource.MustParse(s) }

func ptr[T any](v T) *T { return &v }

// readFile reads a file of a volume, failing the test if it cannot.
func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	return string(b)
}

func fileMode(t *testing.T, path string) os.FileMode {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return info.Mode().Perm()
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}
