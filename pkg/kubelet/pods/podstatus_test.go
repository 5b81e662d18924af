package pods

import (
	"fmt"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Container statuses for the phase and condition tables.
func running(name string) v1.ContainerStatus {
	return v1.ContainerStatus{Name: name, Ready: true, State: v1.ContainerState{Running: &v1.ContainerStateRunning{}}}
}

func waiting(name, reason string) v1.ContainerStatus {
	return v1.ContainerStatus{Name: name, State: v1.ContainerState{Waiting: &v1.ContainerStateWaiting{Reason: reason}}}
}

// restarting waits after a run that ended with code.
func restarting(name string, code int32) v1.ContainerStatus {
	s := waiting(name, "CrashLoopBackOff")
	s.LastTerminationState.Terminated = &v1.ContainerStateTerminated{ExitCode: code}
	return s
}

func exited(name string, code int32) v1.ContainerStatus {
	return v1.ContainerStatus{Name: name, State: v1.ContainerState{Terminated: &v1.ContainerStateTerminated{ExitCode: code}}}
}

func specOf(policy v1.RestartPolicy, inits []string, sidecars []string, apps ...string) *v1.PodSpec {
	spec := &v1.PodSpec{RestartPolicy: policy}
	always := v1.ContainerRestartPolicyAlways
	for _, n := range sidecars {
		spec.InitContainers = append(spec.InitContainers, v1.Container{Name: n, RestartPolicy: &always})
	}
	for _, n := range inits {
		spec.InitContainers = append(spec.InitContainers, v1.Container{Name: n})
	}
	for _, n := range apps {
		spec.Containers = append(spec.Containers, v1.Container{Name: n})
	}
	return spec
}

func TestPhase(t *testing.T) {
	const (
		always    = v1.RestartPolicyAlways
		onFailure = v1.RestartPolicyOnFailure
		never     = v1.RestartPolicyNever
	)
	one := []string{"init"}
	sidecar := []string{"proxy"}
	for _, tc := range []struct {
		name     string
		spec     *v1.PodSpec
		inits    []v1.ContainerStatus // sidecars first, then init containers
		apps     []v1.ContainerStatus
		terminal bool
		want     v1.PodPhase
	}{
		{"creating", specOf(always, nil, nil, "a"), nil, []v1.ContainerStatus{waiting("a", "ContainerCreating")}, false, v1.PodPending},
		{"no state yet", specOf(always, nil, nil, "a"), nil, []v1.ContainerStatus{{Name: "a"}}, false, v1.PodPending},
		{"running", specOf(always, nil, nil, "a"), nil, []v1.ContainerStatus{running("a")}, false, v1.PodRunning},
		{"one of two waiting", specOf(always, nil, nil, "a", "b"), nil, []v1.ContainerStatus{running("a"), waiting("b", "ErrImagePull")}, false, v1.PodPending},

		{"init running", specOf(always, one, nil, "a"), []v1.ContainerStatus{running("init")}, []v1.ContainerStatus{waiting("a", "PodInitializing")}, false, v1.PodPending},
		{"init waiting", specOf(always, one, nil, "a"), []v1.ContainerStatus{waiting("init", "ErrImagePull")}, []v1.ContainerStatus{waiting("a", "PodInitializing")}, false, v1.PodPending},
		{"init failed, Never", specOf(never, one, nil, "a"), []v1.ContainerStatus{exited("init", 1)}, []v1.ContainerStatus{waiting("a", "PodInitializing")}, false, v1.PodFailed},
		{"init failed and waiting, Never", specOf(never, one, nil, "a"), []v1.ContainerStatus{restarting("init", 1)}, []v1.ContainerStatus{waiting("a", "PodInitializing")}, false, v1.PodFailed},
		{"init failed, OnFailure", specOf(onFailure, one, nil, "a"), []v1.ContainerStatus{restarting("init", 1)}, []v1.ContainerStatus{waiting("a", "PodInitializing")}, false, v1.PodPending},
		{"init failed, Always", specOf(always, one, nil, "a"), []v1.ContainerStatus{exited("init", 2)}, []v1.ContainerStatus{waiting("a", "PodInitializing")}, false, v1.PodPending},
		{"init done", specOf(never, one, nil, "a"), []v1.ContainerStatus{exited("init", 0)}, []v1.ContainerStatus{running("a")}, false, v1.PodRunning},

		{"all exited 0, Always", specOf(always, nil, nil, "a", "b"), nil, []v1.ContainerStatus{exited("a", 0), exited("b", 0)}, false, v1.PodRunning},
		{"all exited 0, OnFailure", specOf(onFailure, nil, nil, "a", "b"), nil, []v1.ContainerStatus{exited("a", 0), exited("b", 0)}, false, v1.PodSucceeded},
		{"all exited 0, Never", specOf(never, nil, nil, "a", "b"), nil, []v1.ContainerStatus{exited("a", 0), exited("b", 0)}, false, v1.PodSucceeded},
		{"one failed, Never", specOf(never, nil, nil, "a", "b"), nil, []v1.ContainerStatus{exited("a", 0), exited("b", 3)}, false, v1.PodFailed},
		{"one failed, OnFailure", specOf(onFailure, nil, nil, "a", "b"), nil, []v1.ContainerStatus{exited("a", 0), exited("b", 3)}, false, v1.PodRunning},
		{"one failed, Always", specOf(always, nil, nil, "a"), nil, []v1.ContainerStatus{exited("a", 3)}, false, v1.PodRunning},
		{"crash loop", specOf(always, nil, nil, "a"), nil, []v1.ContainerStatus{restarting("a", 1)}, false, v1.PodRunning},
		{"one done, one running", specOf(never, nil, nil, "a", "b"), nil, []v1.ContainerStatus{exited("a", 0), running("b")}, false, v1.PodRunning},

		{"sidecar and app running", specOf(onFailure, nil, sidecar, "a"), []v1.ContainerStatus{running("proxy")}, []v1.ContainerStatus{running("a")}, false, v1.PodRunning},
		{"sidecar starting", specOf(onFailure, nil, sidecar, "a"), []v1.ContainerStatus{waiting("proxy", "ContainerCreating")}, []v1.ContainerStatus{waiting("a", "PodInitializing")}, false, v1.PodPending},
		{"sidecar restarting", specOf(onFailure, nil, sidecar, "a"), []v1.ContainerStatus{restarting("proxy", 1)}, []v1.ContainerStatus{running("a")}, false, v1.PodRunning},
		{"sidecar outlives app", specOf(onFailure, nil, sidecar, "a"), []v1.ContainerStatus{running("proxy")}, []v1.ContainerStatus{exited("a", 0)}, false, v1.PodRunning},
		{"sidecar stopped after app", specOf(onFailure, nil, sidecar, "a"), []v1.ContainerStatus{exited("proxy", 143)}, []v1.ContainerStatus{exited("a", 0)}, false, v1.PodSucceeded},
		{"sidecar then init", specOf(never, one, sidecar, "a"), []v1.ContainerStatus{running("proxy"), running("init")}, []v1.ContainerStatus{waiting("a", "PodInitializing")}, false, v1.PodPending},

		{"terminal, all succeeded", specOf(always, nil, nil, "a"), nil, []v1.ContainerStatus{exited("a", 0)}, true, v1.PodSucceeded},
		{"terminal, stopped", specOf(always, nil, nil, "a"), nil, []v1.ContainerStatus{exited("a", 143)}, true, v1.PodFailed},
		{"terminal, never started", specOf(always, nil, nil, "a"), nil, []v1.ContainerStatus{waiting("a", "ContainerCreating")}, true, v1.PodFailed},
		{"terminal, sidecar stopped", specOf(onFailure, nil, sidecar, "a"), []v1.ContainerStatus{exited("proxy", 137)}, []v1.ContainerStatus{exited("a", 0)}, true, v1.PodSucceeded},
		{"terminal, init failed", specOf(always, one, nil, "a"), []v1.ContainerStatus{exited("init", 1)}, []v1.ContainerStatus{waiting("a", "PodInitializing")}, true, v1.PodFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := phase(tc.spec, tc.inits, tc.apps, tc.terminal); got != tc.want {
				t.Errorf("phase = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestConditions(t *testing.T) {
	before := metav1.NewTime(time.Date(2026, 3, 1, 11, 0, 0, 0, time.UTC))
	now := metav1.NewTime(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	scheduled := v1.PodCondition{Type: v1.PodScheduled, Status: v1.ConditionTrue, LastTransitionTime: before}
	podWith := func(spec *v1.PodSpec, gates ...v1.PodConditionType) *v1.Pod {
		p := &v1.Pod{Spec: *spec}
		for _, g := range gates {
			p.Spec.ReadinessGates = append(p.Spec.ReadinessGates, v1.PodReadinessGate{ConditionType: g})
		}
		return p
	}
	type cond struct {
		status  v1.ConditionStatus
		reason  string
		message string
	}
	T, F := v1.ConditionTrue, v1.ConditionFalse
	for _, tc := range []struct {
		name         string
		pod          *v1.Pod
		old          []v1.PodCondition
		inits, apps  []v1.ContainerStatus
		phase        v1.PodPhase
		sandbox      bool
		want         map[v1.PodConditionType]cond
		wantExtraLen int
	}{
		{
			name:  "init containers incomplete",
			pod:   podWith(specOf(v1.RestartPolicyAlways, []string{"init1", "init2"}, []string{"proxy"}, "a")),
			inits: []v1.ContainerStatus{waiting("proxy", "ContainerCreating"), exited("init1", 0), waiting("init2", "PodInitializing")},
			apps:  []v1.ContainerStatus{waiting("a", "PodInitializing")}, phase: v1.PodPending, sandbox: true,
			want: map[v1.PodConditionType]cond{
				v1.PodReadyToStartContainers: {T, "", ""},
				v1.PodInitialized:            {F, "ContainersNotInitialized", "containers with incomplete status: [proxy init2]"},
				v1.ContainersReady:           {F, "ContainersNotReady", "containers with unready status: [proxy a]"},
				v1.PodReady:                  {F, "ContainersNotReady", "containers with unready status: [proxy a]"},
			},
		},
		{
			name:  "failed init container",
			pod:   podWith(specOf(v1.RestartPolicyNever, []string{"init"}, nil, "a")),
			inits: []v1.ContainerStatus{exited("init", 1)}, apps: []v1.ContainerStatus{waiting("a", "PodInitializing")},
			phase: v1.PodFailed, sandbox: true,
			want: map[v1.PodConditionType]cond{
				v1.PodReadyToStartContainers: {F, "", ""},
				v1.PodInitialized:            {F, "ContainersNotInitialized", "containers with incomplete status: [init]"},
				v1.ContainersReady:           {F, "PodCompleted", ""},
				v1.PodReady:                  {F, "PodCompleted", ""},
			},
		},
		{
			name:  "running and ready",
			pod:   podWith(specOf(v1.RestartPolicyAlways, []string{"init"}, []string{"proxy"}, "a", "b")),
			inits: []v1.ContainerStatus{running("proxy"), exited("init", 0)}, apps: []v1.ContainerStatus{running("a"), running("b")},
			phase: v1.PodRunning, sandbox: true,
			want: map[v1.PodConditionType]cond{
				v1.PodReadyToStartContainers: {T, "", ""},
				v1.PodInitialized:            {T, "", ""},
				v1.ContainersReady:           {T, "", ""},
				v1.PodReady:                  {T, "", ""},
			},
		},
		{
			name: "one container unready",
			pod:  podWith(specOf(v1.RestartPolicyAlways, nil, nil, "a", "b", "c")),
			apps: []v1.ContainerStatus{running("a"), restarting("b", 1), waiting("c", "ContainerCreating")}, phase: v1.PodPending, sandbox: true,
			want: map[v1.PodConditionType]cond{
				v1.ContainersReady: {F, "ContainersNotReady", "containers with unready status: [b c]"},
				v1.PodReady:        {F, "ContainersNotReady", "containers with unready status: [b c]"},
			},
		},
		{
			name: "readiness gate missing",
			pod:  podWith(specOf(v1.RestartPolicyAlways, nil, nil, "a"), "example.com/lb"),
			apps: []v1.ContainerStatus{running("a")}, phase: v1.PodRunning, sandbox: true,
			want: map[v1.PodConditionType]cond{
				v1.ContainersReady: {T, "", ""},
				v1.PodReady:        {F, "ReadinessGatesNotReady", `corresponding condition of pod readiness gate "example.com/lb" does not exist.`},
			},
		},
		{
			name: "readiness gates false and missing",
			pod:  podWith(specOf(v1.RestartPolicyAlways, nil, nil, "a"), "example.com/lb", "example.com/dns"),
			old:  []v1.PodCondition{{Type: "example.com/lb", Status: v1.ConditionFalse}},
			apps: []v1.ContainerStatus{running("a")}, phase: v1.PodRunning, sandbox: true,
			want: map[v1.PodConditionType]cond{
				"example.com/lb": {F, "", ""},
				v1.PodReady: {F, "ReadinessGatesNotReady", `the status of pod readiness gate "example.com/lb" is not "True", but False, ` +
					`corresponding condition of pod readiness gate "example.com/dns" does not exist.`},
			},
			wantExtraLen: 1,
		},
		{
			name: "readiness gate true",
			pod:  podWith(specOf(v1.RestartPolicyAlways, nil, nil, "a"), "example.com/lb"),
			old:  []v1.PodCondition{{Type: "example.com/lb", Status: v1.ConditionTrue}},
			apps: []v1.ContainerStatus{running("a")}, phase: v1.PodRunning, sandbox: true,
			want: map[v1.PodConditionType]cond{
				"example.com/lb": {T, "", ""},
				v1.PodReady:      {T, "", ""},
			},
			wantExtraLen: 1,
		},
		{
			name:  "succeeded",
			pod:   podWith(specOf(v1.RestartPolicyOnFailure, nil, []string{"proxy"}, "a"), "example.com/lb"),
			old:   []v1.PodCondition{{Type: "example.com/lb", Status: v1.ConditionTrue}},
			inits: []v1.ContainerStatus{exited("proxy", 143)}, apps: []v1.ContainerStatus{exited("a", 0)},
			phase: v1.PodSucceeded, sandbox: true,
			want: map[v1.PodConditionType]cond{
				v1.PodReadyToStartContainers: {F, "", ""},
				v1.PodInitialized:            {T, "PodCompleted", ""},
				v1.ContainersReady:           {F, "PodCompleted", ""},
				v1.PodReady:                  {F, "PodCompleted", ""},
			},
			wantExtraLen: 1,
		},
		{
			name: "volumes not ready",
			pod:  podWith(specOf(v1.RestartPolicyAlways, nil, nil, "a")),
			apps: []v1.ContainerStatus{waiting("a", "ContainerCreating")}, phase: v1.PodPending, sandbox: false,
			want: map[v1.PodConditionType]cond{v1.PodReadyToStartContainers: {F, "", ""}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			old := append([]v1.PodCondition{scheduled}, tc.old...)
			got := conditions(tc.pod, old, tc.inits, tc.apps, tc.phase, tc.sandbox, now)
			if len(got) != 5+tc.wantExtraLen {
				t.Errorf("%d conditions: %+v", len(got), got)
			}
			// Conditions the kubelet does not own come first, as they were.
			if got[0] != scheduled {
				t.Errorf("first condition = %+v, want PodScheduled kept", got[0])
			}
			byType := map[v1.PodConditionType]v1.PodCondition{}
			for _, c := range got {
				byType[c.Type] = c
			}
			for typ, want := range tc.want {
				c, ok := byType[typ]
				if !ok {
					t.Errorf("no %s condition", typ)
					continue
				}
				if c.Status != want.status || c.Reason != want.reason || c.Message != want.message {
					t.Errorf("%s = %s %q %q, want %s %q %q", typ, c.Status, c.Reason, c.Message, want.status, want.reason, want.message)
				}
			}
		})
	}
}

func TestConditionTransitionTimes(t *testing.T) {
	t0 := metav1.NewTime(time.Date(2026, 3, 1, 11, 0, 0, 0, time.UTC))
	t1 := metav1.NewTime(t0.Add(time.Minute))
	t2 := metav1.NewTime(t0.Add(2 * time.Minute))
	pod := &v1.Pod{Spec: *specOf(v1.RestartPolicyAlways, nil, nil, "a")}
	disruption := v1.PodCondition{Type: v1.DisruptionTarget, Status: v1.ConditionTrue, Reason: "EvictionByEvictionAPI", LastTransitionTime: t0}

	first := conditions(pod, []v1.PodCondition{disruption}, nil, []v1.ContainerStatus{waiting("a", "ContainerCreating")}, v1.PodPending, true, t0)
	// Same statuses a minute later: every transition time stays.
	same := conditions(pod, first, nil, []v1.ContainerStatus{waiting("a", "ErrImagePull")}, v1.PodPending, true, t1)
	for i := range same {
		if !same[i].LastTransitionTime.Equal(&t0) {
			t.Errorf("%s moved to %v with no change of status", same[i].Type, same[i].LastTransitionTime)
		}
	}
	// The container runs: ContainersReady and Ready change, the others not.
	later := conditions(pod, same, nil, []v1.ContainerStatus{running("a")}, v1.PodRunning, true, t2)
	for _, c := range later {
		want := t0
		if c.Type == v1.ContainersReady || c.Type == v1.PodReady {
			want = t2
		}
		if !c.LastTransitionTime.Equal(&want) {
			t.Errorf("%s transition = %v, want %v", c.Type, c.LastTransitionTime, want)
		}
	}
	if later[0] != disruption {
		t.Errorf("DisruptionTarget = %+v, want kept as it was", later[0])
	}
	if n := len(later); n != 5 {
		t.Errorf("%d conditions, want no duplicates: %+v", n, later)
	}
}

func TestContainerStateStatus(t *testing.T) {
	started := time.Date(2026, 3, 1, 11, 0, 0, 0, time.UTC)
	last := &v1.ContainerStateTerminated{ExitCode: 1, Reason: "Error"}
	prev := &v1.ContainerStateTerminated{ExitCode: 2, Reason: "Error"}
	live := &run{startedAt: started, done: make(chan struct{})}
	ended := &run{done: make(chan struct{})}
	close(ended.done)
	spec := &v1.Container{Name: "a", Image: "img:1"}
	for _, tc := range []struct {
		name      string
		st        containerState
		state     string
		lastState *v1.ContainerStateTerminated
		ready     bool
	}{
		{"new", containerState{name: "a"}, "waiting(ContainerCreating: )", nil, false},
		{"running", containerState{name: "a", current: live}, "running", nil, true},
		{"running again", containerState{name: "a", current: live, last: last}, "running", last, true},
		{"back-off", containerState{name: "a", last: last, waiting: &v1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}}, "waiting(CrashLoopBackOff: )", last, false},
		{"ended", containerState{name: "a", last: last, prev: prev}, "terminated(1 Error)", prev, false},
		{"run ended, not recorded yet", containerState{name: "a", current: ended, last: last, waiting: &v1.ContainerStateWaiting{Reason: "X"}}, "waiting(X: )", last, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.st.restartCount, tc.st.imageID, tc.st.containerID = 3, "img@sha256:1", "fake://x"
			s := tc.st.status(spec)
			if got := stateOf(s); got != tc.state {
				t.Errorf("state = %s, want %s", got, tc.state)
			}
			if fmt.Sprint(s.LastTerminationState.Terminated) != fmt.Sprint(tc.lastState) {
				t.Errorf("lastState = %+v, want %+v", s.LastTerminationState.Terminated, tc.lastState)
			}
			if s.Ready != tc.ready || s.Started == nil || *s.Started != tc.ready {
				t.Errorf("ready = %v, started = %v", s.Ready, s.Started)
			}
			if s.Name != "a" || s.Image != "img:1" || s.ImageID != "img@sha256:1" || s.ContainerID != "fake://x" || s.RestartCount != 3 {
				t.Errorf("status = %+v", s)
			}
			if tc.st.running() && !s.State.Running.StartedAt.Time.Equal(started) {
				t.Errorf("startedAt = %v", s.State.Running.StartedAt)
			}
		})
	}
}
