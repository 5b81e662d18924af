package pods

import (
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/krustlet/krustlet-go/pkg/provider"
)

func TestTerminated(t *testing.T) {
	start := time.Date(2026, 3, 1, 11, 0, 0, 0, time.UTC)
	end := start.Add(time.Minute)
	for _, tc := range []struct {
		exit   provider.ExitStatus
		reason string
	}{
		{provider.ExitStatus{ExitCode: 0}, "Completed"},
		{provider.ExitStatus{ExitCode: 1}, "Error"},
		{provider.ExitStatus{ExitCode: 137, Reason: "OOMKilled", Message: "memory limit of 64Mi exceeded"}, "OOMKilled"},
		{provider.ExitStatus{ExitCode: 128, Reason: "ContainerCannotRun", Message: "missing import wasi:cli/run"}, "ContainerCannotRun"},
		{provider.ExitStatus{ExitCode: 0, Reason: "Error"}, "Error"},
	} {
		tc.exit.StartedAt, tc.exit.FinishedAt = start, end
		got := terminated(tc.exit, "fake://c1")
		if got.ExitCode != tc.exit.ExitCode || got.Reason != tc.reason || got.Message != tc.exit.Message ||
			!got.StartedAt.Time.Equal(start) || !got.FinishedAt.Time.Equal(end) || got.ContainerID != "fake://c1" {
			t.Errorf("terminated(%+v) = %+v, want reason %s", tc.exit, got, tc.reason)
		}
	}
}

func TestRestoreFrom(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	started := metav1.NewTime(now.Add(-time.Hour))
	earlier := &v1.ContainerStateTerminated{ExitCode: 2, Reason: "Error", ContainerID: "fake://run1"}
	for _, tc := range []struct {
		name     string
		status   v1.ContainerStatus
		wantLast *v1.ContainerStateTerminated
		wantPrev *v1.ContainerStateTerminated
		wantRuns int32
	}{
		{
			name: "running: ended by the agent restart",
			status: v1.ContainerStatus{RestartCount: 1, ContainerID: "fake://run2", ImageID: "img@sha256:1",
				State:                v1.ContainerState{Running: &v1.ContainerStateRunning{StartedAt: started}},
				LastTerminationState: v1.ContainerState{Terminated: earlier}},
			wantLast: &v1.ContainerStateTerminated{ExitCode: 137, Reason: "Error", Message: "the node agent restarted while the container was running",
				StartedAt: started, FinishedAt: metav1.NewTime(now), ContainerID: "fake://run2"},
			wantPrev: earlier,
			wantRuns: 2,
		},
		{
			name: "terminated",
			status: v1.ContainerStatus{RestartCount: 1, ContainerID: "fake://run2", ImageID: "img@sha256:1",
				State:                v1.ContainerState{Terminated: &v1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed"}},
				LastTerminationState: v1.ContainerState{Terminated: earlier}},
			wantLast: &v1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed"},
			wantPrev: earlier,
			wantRuns: 2,
		},
		{
			name: "waiting to restart",
			status: v1.ContainerStatus{RestartCount: 4, ContainerID: "fake://run1", ImageID: "img@sha256:1",
				State:                v1.ContainerState{Waiting: &v1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}},
				LastTerminationState: v1.ContainerState{Terminated: earlier}},
			wantLast: earlier,
			wantRuns: 5,
		},
		{
			name: "waiting, never ran",
			status: v1.ContainerStatus{ImageID: "img@sha256:1", ContainerID: "fake://run1",
				State: v1.ContainerState{Waiting: &v1.ContainerStateWaiting{Reason: "ErrImagePull"}}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c containerState
			c.restoreFrom("uid", &tc.status, now)
			if !equalTerminated(c.last, tc.wantLast) {
				t.Errorf("last = %+v, want %+v", c.last, tc.wantLast)
			}
			if !equalTerminated(c.prev, tc.wantPrev) {
				t.Errorf("prev = %+v, want %+v", c.prev, tc.wantPrev)
			}
			if c.runs != tc.wantRuns || c.restartCount != tc.status.RestartCount {
				t.Errorf("runs = %d, restartCount = %d; want %d, %d", c.runs, c.restartCount, tc.wantRuns, tc.status.RestartCount)
			}
			if c.imageID != "img@sha256:1" || c.containerID != tc.status.ContainerID {
				t.Errorf("imageID = %q, containerID = %q", c.imageID, c.containerID)
			}
			if c.last != nil && c.last == tc.status.State.Terminated {
				t.Error("last shares the API object")
			}
		})
	}
}

func equalTerminated(a, b *v1.ContainerStateTerminated) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.ExitCode == b.ExitCode && a.Reason == b.Reason && a.Message == b.Message && a.ContainerID == b.ContainerID &&
		a.StartedAt.Equal(&b.StartedAt) && a.FinishedAt.Equal(&b.FinishedAt)
}

func TestRecord(t *testing.T) {
	first := &v1.ContainerStateTerminated{ExitCode: 1, Reason: "Error"}
	r := &run{done: make(chan struct{}), exit: provider.ExitStatus{ExitCode: 3}}
	close(r.done)
	c := containerState{current: r, last: first, containerID: "fake://run2"}
	c.record()
	if c.current != nil || c.prev != first || c.last.ExitCode != 3 || c.last.Reason != "Error" || c.last.ContainerID != "fake://run2" {
		t.Errorf("after record: current=%v prev=%+v last=%+v", c.current, c.prev, c.last)
	}
	if c.succeeded() || c.running() {
		t.Error("a failed run neither succeeded nor runs")
	}
	c.last.ExitCode = 0
	if !c.succeeded() {
		t.Error("succeeded() = false after exit 0")
	}
}

func TestGracePeriod(t *testing.T) {
	for _, tc := range []struct {
		name     string
		deletion *int64
		spec     *int64
		gone     bool
		want     time.Duration
	}{
		{"default", nil, nil, false, 30 * time.Second},
		{"spec", nil, ptr.To[int64](45), false, 45 * time.Second},
		{"deletion wins", ptr.To[int64](10), ptr.To[int64](45), false, 10 * time.Second},
		{"minimum", ptr.To[int64](1), nil, false, 2 * time.Second},
		{"force", ptr.To[int64](0), ptr.To[int64](45), false, 0},
		{"spec zero", nil, ptr.To[int64](0), false, 0},
		{"gone", ptr.To[int64](30), nil, true, 0},
	} {
		pod := &v1.Pod{ObjectMeta: metav1.ObjectMeta{DeletionGracePeriodSeconds: tc.deletion}, Spec: v1.PodSpec{TerminationGracePeriodSeconds: tc.spec}}
		if got := gracePeriod(pod, tc.gone); got != tc.want {
			t.Errorf("%s: gracePeriod = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestSmallHelpers(t *testing.T) {
	for _, tc := range []struct {
		policy v1.RestartPolicy
		code   int32
		want   bool
	}{
		{v1.RestartPolicyAlways, 0, true}, {v1.RestartPolicyAlways, 1, true},
		{v1.RestartPolicyOnFailure, 0, false}, {v1.RestartPolicyOnFailure, 137, true},
		{v1.RestartPolicyNever, 0, false}, {v1.RestartPolicyNever, 1, false},
	} {
		if got := shouldRestart(tc.policy, tc.code); got != tc.want {
			t.Errorf("shouldRestart(%s, %d) = %v", tc.policy, tc.code, got)
		}
	}
	for image, want := range map[string]v1.PullPolicy{
		"app": v1.PullAlways, "app:latest": v1.PullAlways, "registry.example:5000/app": v1.PullAlways,
		"registry.example:5000/app:v2": v1.PullIfNotPresent, "app@sha256:abc": v1.PullIfNotPresent,
	} {
		if got := defaultPullPolicy(image); got != want {
			t.Errorf("defaultPullPolicy(%q) = %s, want %s", image, got, want)
		}
	}
	for _, tc := range [][3]time.Duration{{0, 5, 5}, {5, 0, 5}, {3, 5, 3}, {7, 5, 5}, {0, 0, 0}} {
		if got := minPositive(tc[0], tc[1]); got != tc[2] {
			t.Errorf("minPositive(%v, %v) = %v", tc[0], tc[1], got)
		}
	}
	c := &v1.Container{Resources: v1.ResourceRequirements{Limits: v1.ResourceList{
		v1.ResourceMemory: resource.MustParse("64Mi"), v1.ResourceCPU: resource.MustParse("250m")}}}
	if r := resources(c); r.MemoryLimitBytes != 64<<20 || r.CPULimitMillis != 250 {
		t.Errorf("resources = %+v", r)
	}
	if r := resources(&v1.Container{}); r != (provider.Resources{}) {
		t.Errorf("no limits: %+v", r)
	}
	if got := lastField("default_web_0b6d2c6e-uid"); got != "0b6d2c6e-uid" {
		t.Errorf("lastField = %q", got)
	}
	for _, r := range []string{"ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull", "CreateContainerConfigError", "CreateContainerError", "RunContainerError"} {
		if !isErrorReason(r) {
			t.Errorf("isErrorReason(%s) = false", r)
		}
	}
	if isErrorReason("CrashLoopBackOff") || isErrorReason("ContainerCreating") {
		t.Error("back-off and creating are not errors of a start")
	}
}
