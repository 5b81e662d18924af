package cri

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	critest "k8s.io/cri-api/pkg/apis/testing"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/krustlet/krustlet-go/pkg/provider"
)

type rig struct {
	p     *Provider
	rt    *critest.FakeRuntimeService
	img   *critest.FakeImageService
	clock *testingclock.FakeClock
}

func newRig(t *testing.T) *rig {
	t.Helper()
	r := &rig{rt: critest.NewFakeRuntimeService(), img: critest.NewFakeImageService(), clock: testingclock.NewFakeClock(time.Now())}
	p, err := NewWithServices(context.Background(), Options{Name: "cri", Endpoint: "unix:///fake.sock", Clock: r.clock}, r.rt, r.img)
	if err != nil {
		t.Fatal(err)
	}
	r.p = p
	return r
}

func testPod() *v1.Pod {
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", UID: "uid-1", Annotations: map[string]string{"a": "b"}},
		Spec: v1.PodSpec{Containers: []v1.Container{{
			Name: "app", Image: "registry.local/app:v1", Ports: []v1.ContainerPort{{ContainerPort: 8080, HostPort: 18080}},
			Resources: v1.ResourceRequirements{
				Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse("250m"), v1.ResourceMemory: resource.MustParse("64Mi")},
				Limits:   v1.ResourceList{v1.ResourceCPU: resource.MustParse("500m"), v1.ResourceMemory: resource.MustParse("128Mi")},
			},
		}}},
	}
}

func TestNodeAndHealth(t *testing.T) {
	r := newRig(t)
	if ni := r.p.Node(); !ni.Containers || ni.RuntimeName != critest.FakeRuntimeName {
		t.Errorf("Node = %+v", ni)
	}
	ctx := context.Background()
	r.rt.FakeStatus = &runtimeapi.RuntimeStatus{Conditions: []*runtimeapi.RuntimeCondition{
		{Type: runtimeapi.RuntimeReady, Status: true}, {Type: runtimeapi.NetworkReady, Status: true},
	}}
	if err := r.p.Healthy(ctx); err != nil {
		t.Fatalf("ready runtime: %v", err)
	}
	r.rt.FakeStatus = &runtimeapi.RuntimeStatus{Conditions: []*runtimeapi.RuntimeCondition{
		{Type: runtimeapi.RuntimeReady, Status: true},
		{Type: runtimeapi.NetworkReady, Status: false, Reason: "NetworkPluginNotReady", Message: "cni config uninitialized"},
	}}
	want := "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:cni config uninitialized"
	if err := r.p.Healthy(ctx); err == nil || err.Error() != want {
		t.Fatalf("network down: %v, want %q", err, want)
	}
	r.rt.InjectError("Status", errors.New("connection refused"))
	if err := r.p.Healthy(ctx); err == nil || !strings.HasPrefix(err.Error(), "container runtime is down: ") {
		t.Fatalf("runtime gone: %v", err)
	}
}

func TestSandboxAndContainer(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	pod := testPod()
	sb, err := r.p.StartPod(ctx, provider.PodConfig{Pod: pod, Handler: "cri", LogDirectory: "/var/log/pods/default_web_uid-1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(sb.IPs) != 1 || sb.IPs[0].String() != critest.FakePodSandboxIPs[0] {
		t.Errorf("sandbox IPs = %v", sb.IPs)
	}
	// Idempotent: a second StartPod (an agent restart) finds the sandbox.
	again, err := r.p.StartPod(ctx, provider.PodConfig{Pod: pod, Handler: "cri", LogDirectory: "/var/log/pods/default_web_uid-1"})
	if err != nil || again.ID != sb.ID || len(r.rt.Sandboxes) != 1 {
		t.Fatalf("second StartPod: %v, %s vs %s, %d sandboxes", err, again.ID, sb.ID, len(r.rt.Sandboxes))
	}
	if uids, err := r.p.ListPods(ctx); err != nil || !slices.Equal(uids, []string{"uid-1"}) {
		t.Errorf("ListPods = %v, %v", uids, err)
	}
	fsb := r.rt.Sandboxes[sb.ID]
	if fsb.RuntimeHandler != "" || fsb.Labels[labelPodUID] != "uid-1" || fsb.Metadata.Name != "web" {
		t.Errorf("sandbox: handler %q labels %v", fsb.RuntimeHandler, fsb.Labels)
	}

	cfg := provider.ContainerConfig{
		ID: "uid-1_app_3", Pod: sb, PodUID: "uid-1", Namespace: "default", PodName: "web", Name: "app",
		Image:   provider.Image{Ref: "registry.local/app:v1", ID: "registry.local/app@sha256:abc"},
		Command: []string{"/bin/server"}, CommandArgs: []string{"--port", "8080"},
		Env:       []provider.EnvVar{{Name: "A", Value: "1"}},
		Mounts:    []provider.Mount{{HostPath: "/var/lib/krustlet/pods/uid-1/volumes/cfg", ContainerPath: "/etc/cfg", ReadOnly: true}},
		Resources: provider.Resources{MemoryLimitBytes: 128 << 20, CPULimitMillis: 500, CPURequestMillis: 250},
		LogPath:   "/var/log/pods/default_web_uid-1/app/3.log",
	}
	c, err := r.p.StartContainer(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var fc *critest.FakeContainer
	for _, x := range r.rt.Containers {
		fc = x
	}
	if fc == nil || fc.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Fatalf("container not running: %+v", fc)
	}
	if fc.Metadata.Attempt != 3 || fc.Image.Image != "registry.local/app@sha256:abc" ||
		fc.Labels[labelRunID] != "uid-1_app_3" || fc.Labels[labelContainerName] != "app" {
		t.Errorf("container: log %q attempt %d image %q labels %v", fc.LogPath, fc.Metadata.Attempt, fc.Image.Image, fc.Labels)
	}
	cc, err := containerConfig(r.p.pods["uid-1"], cfg)
	if err != nil {
		t.Fatal(err)
	}
	res := cc.Linux.Resources
	if res.CpuShares != 256 || res.CpuQuota != 50000 || res.CpuPeriod != 100000 || res.MemoryLimitInBytes != 128<<20 || res.OomScoreAdj != 500 {
		t.Errorf("resources = %+v", res)
	}
	if !slices.Equal(cc.Command, []string{"/bin/server"}) || !slices.Equal(cc.Args, []string{"--port", "8080"}) ||
		string(cc.Envs[0].Value) != "1" || !cc.Mounts[0].Readonly || cc.LogPath != "app/3.log" {
		t.Errorf("config = %+v", cc)
	}

	// Adoption lists the run by its ID and re-attaches to the same container.
	running, err := r.p.ListContainers(ctx)
	if err != nil || len(running) != 1 || running[0].ID != "uid-1_app_3" {
		t.Fatalf("ListContainers = %+v, %v", running, err)
	}
	adopted, err := r.p.Adopt(ctx, "uid-1_app_3")
	if err != nil || adopted.(*container).id != c.(*container).id {
		t.Fatalf("Adopt = %v, %v", adopted, err)
	}

	// The run ends: Wait returns the runtime's exit.
	done := make(chan provider.ExitStatus, 1)
	go func() {
		e, _ := c.Wait(ctx)
		done <- e
	}()
	r.rt.Lock()
	fc.State, fc.ExitCode, fc.Reason, fc.FinishedAt = runtimeapi.ContainerState_CONTAINER_EXITED, 137, "OOMKilled", time.Now().UnixNano()
	r.rt.Unlock()
	var exit provider.ExitStatus
	for exit.Reason == "" {
		r.clock.Step(exitPoll)
		select {
		case exit = <-done:
		case <-time.After(10 * time.Millisecond):
		}
	}
	if exit.ExitCode != 137 || exit.Reason != "OOMKilled" || exit.FinishedAt.IsZero() {
		t.Errorf("exit = %+v", exit)
	}
	if err := c.Stop(ctx, 2*time.Second); err != nil {
		t.Fatal(err)
	}

	if err := r.p.StopPod(ctx, "uid-1"); err != nil {
		t.Fatal(err)
	}
	if err := r.p.RemovePod(ctx, "uid-1"); err != nil || len(r.rt.Sandboxes) != 0 {
		t.Fatalf("RemovePod: %v, %d sandboxes left", err, len(r.rt.Sandboxes))
	}
}

func TestStartContainerErrors(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	if _, err := r.p.StartContainer(ctx, provider.ContainerConfig{PodUID: "nope", Name: "app"}); !errors.Is(err, provider.ErrCreateContainer) {
		t.Fatalf("no sandbox: %v", err)
	}
	pod := testPod()
	sb, err := r.p.StartPod(ctx, provider.PodConfig{Pod: pod, LogDirectory: "/logs/p"})
	if err != nil {
		t.Fatal(err)
	}
	cfg := provider.ContainerConfig{ID: "uid-1_app_0", Pod: sb, PodUID: "uid-1", Name: "app", LogPath: "/logs/p/app/0.log"}
	r.rt.InjectError("StartContainer", errors.New(`exec: "/bin/nope": no such file or directory`))
	if _, err := r.p.StartContainer(ctx, cfg); !errors.Is(err, provider.ErrStartContainer) || !strings.Contains(err.Error(), "/bin/nope") {
		t.Fatalf("start error: %v", err)
	}
	if len(r.rt.Containers) != 0 {
		t.Errorf("a container that failed to start was left behind")
	}
	r.rt.InjectError("RunPodSandbox", errors.New(`failed to get sandbox runtime: no runtime for "kata" is configured`))
	other := testPod()
	other.UID = "uid-2"
	if _, err := r.p.StartPod(ctx, provider.PodConfig{Pod: other, Handler: "kata"}); !errors.Is(err, provider.ErrCreatePodSandbox) || !strings.Contains(err.Error(), `no runtime for "kata"`) {
		t.Fatalf("sandbox error: %v", err)
	}
}

func TestPullImage(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	r.img.SetFakeImageSize(1234)
	if _, err := r.p.PullImage(ctx, provider.PullRequest{Image: "app:v1", Policy: v1.PullNever}); !errors.Is(err, provider.ErrImageNeverPull) {
		t.Fatalf("Never, absent: %v", err)
	}
	img, err := r.p.PullImage(ctx, provider.PullRequest{Image: "app:v1", Policy: v1.PullIfNotPresent,
		Credentials: []provider.Credential{{Registry: "docker.io", Username: "u", Password: "p"}}})
	if err != nil || img.AlreadyPresent || img.Size != 1234 {
		t.Fatalf("IfNotPresent, absent: %+v, %v", img, err)
	}
	img, err = r.p.PullImage(ctx, provider.PullRequest{Image: "app:v1", Policy: v1.PullIfNotPresent})
	if err != nil || !img.AlreadyPresent {
		t.Fatalf("IfNotPresent, present: %+v, %v", img, err)
	}
	r.img.InjectError("PullImage", errors.New("401 Unauthorized"))
	if _, err := r.p.PullImage(ctx, provider.PullRequest{Image: "app:v1", Policy: v1.PullAlways}); !errors.Is(err, provider.ErrImagePull) || !strings.Contains(err.Error(), "401") {
		t.Fatalf("Always, refused: %v", err)
	}
	list, err := r.p.ListImages(ctx)
	if err != nil || len(list) != 1 || list[0].SizeBytes != 1234 {
		t.Fatalf("ListImages = %+v, %v", list, err)
	}
}

func TestQOSAndCgroupParent(t *testing.T) {
	pod := testPod()
	if got := cgroupParent(pod); got != "/kubepods/burstable/poduid-1" {
		t.Errorf("burstable: %s", got)
	}
	pod.Spec.Containers[0].Resources = v1.ResourceRequirements{}
	if got := cgroupParent(pod); got != "/kubepods/besteffort/poduid-1" {
		t.Errorf("besteffort: %s", got)
	}
	limits := v1.ResourceList{v1.ResourceCPU: resource.MustParse("1"), v1.ResourceMemory: resource.MustParse("1Gi")}
	pod.Spec.Containers[0].Resources = v1.ResourceRequirements{Limits: limits, Requests: limits}
	if got := cgroupParent(pod); got != "/kubepods/poduid-1" {
		t.Errorf("guaranteed: %s", got)
	}
	if r := linuxResources(pod, provider.Resources{CPULimitMillis: 1000, MemoryLimitBytes: 1 << 30}); r.OomScoreAdj != guaranteedOOM || r.CpuShares != 1024 {
		t.Errorf("guaranteed resources = %+v", r)
	}
	pod.Spec.HostNetwork = true
	sc := sandboxConfig(pod, "/logs")
	if sc.Hostname != "" || sc.Linux.SecurityContext.NamespaceOptions.Network != runtimeapi.NamespaceMode_NODE {
		t.Errorf("host network sandbox: hostname %q ns %v", sc.Hostname, sc.Linux.SecurityContext.NamespaceOptions)
	}
}
