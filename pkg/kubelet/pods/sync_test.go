package pods

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"

	"github.com/krustlet/krustlet-go/pkg/kubelet/logs"
	"github.com/krustlet/krustlet-go/pkg/provider"
)

// syncRig drives one worker's sync by hand, without informer or status
// writes, so each step of the state machine is observed.
type syncRig struct {
	*harness
	w   *worker
	ctx context.Context
}

func newSyncRig(t *testing.T, pod *v1.Pod) *syncRig {
	h := newHarness(t)
	ctx, cancel := context.WithCancel(klog.NewContext(context.Background(), klog.Logger{}))
	t.Cleanup(cancel)
	h.mgr.d.ctx = ctx
	return &syncRig{harness: h, w: newWorker(h.mgr.d, pod, nil), ctx: ctx}
}

// sync runs one sync and returns when the worker wants to run again.
func (r *syncRig) sync() time.Duration {
	r.t.Helper()
	after, done := r.w.sync(r.ctx)
	if done {
		r.t.Fatal("worker finished")
	}
	return after
}

func (r *syncRig) status() v1.PodStatus {
	pod, _ := r.w.snapshot()
	return r.w.status(pod)
}

// exit ends the latest run of a container and waits until the worker can
// see it.
func (r *syncRig) exit(name string, code int32) {
	r.t.Helper()
	r.prov.run(r.t, name, r.prov.runCount(name)-1).exit(code)
	waitFor(r.t, name+" to end", func() error {
		if cur := r.w.containers[name].current; cur != nil && !cur.finished() {
			return errors.New("still running")
		}
		return nil
	})
}

func (r *syncRig) app() v1.ContainerStatus { return containerStatus(r.status(), "app") }

// TestRestartBackOffTable follows the kubelet's crash-loop back-off: the
// first failure restarts at once, then 10s doubling to 5 minutes.
func TestRestartBackOffTable(t *testing.T) {
	t.Parallel()
	pod := newPod("table", v1.RestartPolicyAlways)
	r := newSyncRig(t, pod)
	if after := r.sync(); after != volumeResync {
		t.Fatalf("running: next sync in %v, want the volume resync", after)
	}
	for i, want := range []time.Duration{0, 10, 20, 40, 80, 160, 300, 300} {
		want *= time.Second
		r.clock.Step(time.Second)
		r.exit("app", 1)
		after := r.sync()
		cs := r.app()
		if want == 0 {
			if cs.State.Running == nil || cs.RestartCount != int32(i+1) {
				t.Fatalf("crash %d: app = %s restarts %d, want restarted at once", i, stateOf(cs), cs.RestartCount)
			}
			continue
		}
		// The worker also wakes for the volume resync.
		if cs.State.Waiting == nil || cs.State.Waiting.Reason != "CrashLoopBackOff" || after != min(want, volumeResync) ||
			cs.State.Waiting.Message != crashLoopMessage(pod, "app", want) {
			t.Fatalf("crash %d: app = %s, next sync in %v; want CrashLoopBackOff for %v", i, stateOf(cs), after, want)
		}
		// Syncing again early changes nothing.
		r.clock.Step(want / 2)
		if again := r.sync(); again != min(want-want/2, volumeResync) || r.prov.runCount("app") != i+1 {
			t.Fatalf("crash %d: early sync: next in %v, %d runs", i, again, r.prov.runCount("app"))
		}
		r.clock.Step(want - want/2)
		r.sync()
		if cs := r.app(); cs.State.Running == nil || cs.RestartCount != int32(i+1) {
			t.Fatalf("crash %d: after the back-off app = %s restarts %d", i, stateOf(cs), cs.RestartCount)
		}
	}
}

func TestRestartPolicyTable(t *testing.T) {
	for _, tc := range []struct {
		policy    v1.RestartPolicy
		code      int32
		restarted bool
		phase     v1.PodPhase
	}{
		{v1.RestartPolicyAlways, 0, true, v1.PodRunning},
		{v1.RestartPolicyAlways, 1, true, v1.PodRunning},
		{v1.RestartPolicyOnFailure, 0, false, v1.PodSucceeded},
		{v1.RestartPolicyOnFailure, 1, true, v1.PodRunning},
		{v1.RestartPolicyNever, 0, false, v1.PodSucceeded},
		{v1.RestartPolicyNever, 1, false, v1.PodFailed},
	} {
		t.Run(fmt.Sprintf("%s/%d", tc.policy, tc.code), func(t *testing.T) {
			t.Parallel()
			r := newSyncRig(t, newPod("policy", tc.policy))
			r.sync()
			if p := r.status().Phase; p != v1.PodRunning {
				t.Fatalf("phase = %s", p)
			}
			r.exit("app", tc.code)
			r.sync()
			if got := r.prov.runCount("app") == 2; got != tc.restarted {
				t.Errorf("restarted = %v", got)
			}
			s := r.status()
			if s.Phase != tc.phase {
				t.Errorf("phase = %s, want %s", s.Phase, tc.phase)
			}
			wantState := stateActive
			if tc.phase != v1.PodRunning {
				wantState = stateFinished
			}
			if got := r.w.getState(); got != wantState || got.String() != wantState.String() || r.w.active() != (wantState == stateActive) {
				t.Errorf("state = %s, want %s (active = %v)", got, wantState, r.w.active())
			}
		})
	}
}

func TestImagePullStates(t *testing.T) {
	t.Parallel()
	pod := newPod("pullstates", v1.RestartPolicyAlways)
	r := newSyncRig(t, pod)
	err1 := fmt.Errorf("%w: 503 from registry.example", provider.ErrImagePull)
	err2 := fmt.Errorf("%w: 401 from registry.example", provider.ErrImagePull)
	r.prov.failPulls(testImage, err1, err2)

	steps := []struct {
		step    time.Duration
		reason  string
		message string
		after   time.Duration
		pulls   int
	}{
		{0, "ErrImagePull", err1.Error(), 10 * time.Second, 1},
		{0, "ImagePullBackOff", fmt.Sprintf("Back-off pulling image %q: %s", testImage, err1), 10 * time.Second, 1},
		// Further syncs in the back-off keep the status as it is.
		{0, "ImagePullBackOff", fmt.Sprintf("Back-off pulling image %q: %s", testImage, err1), 10 * time.Second, 1},
		{4 * time.Second, "ImagePullBackOff", fmt.Sprintf("Back-off pulling image %q: %s", testImage, err1), 6 * time.Second, 1},
		{6 * time.Second, "ErrImagePull", err2.Error(), 20 * time.Second, 2},
		{0, "ImagePullBackOff", fmt.Sprintf("Back-off pulling image %q: %s", testImage, err2), 20 * time.Second, 2},
		{20 * time.Second, "", "", volumeResync, 3},
	}
	for i, st := range steps {
		r.clock.Step(st.step)
		after := r.sync()
		cs := r.app()
		if st.reason == "" {
			if cs.State.Running == nil {
				t.Fatalf("step %d: app = %s, want running", i, stateOf(cs))
			}
		} else if w := cs.State.Waiting; w == nil || w.Reason != st.reason || w.Message != st.message {
			t.Fatalf("step %d: app = %s, want %s: %s", i, stateOf(cs), st.reason, st.message)
		}
		if after != st.after || r.prov.pullCount() != st.pulls {
			t.Fatalf("step %d: next sync in %v with %d pulls, want %v and %d", i, after, r.prov.pullCount(), st.after, st.pulls)
		}
		if p := r.status().Phase; p != v1.PodPending && st.reason != "" {
			t.Fatalf("step %d: phase %s", i, p)
		}
	}
	if got, want := reasons(r.allEvents()), []string{
		"Pulling", "Failed", "Failed", "BackOff", "Pulling", "Failed", "Failed", "BackOff", "Pulling", "Pulled", "Created", "Started",
	}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("event reasons = %v, want %v", got, want)
	}
}

func TestPullAnnouncedOnce(t *testing.T) {
	t.Parallel()
	// An image already used on the node is pulled again quietly unless
	// its policy is Always.
	for _, tc := range []struct {
		image       string
		policy      v1.PullPolicy
		wantPolicy  v1.PullPolicy
		wantPulling int
	}{
		{"registry.example/app:v1", "", v1.PullIfNotPresent, 1},
		{"registry.example/app", "", v1.PullAlways, 2},
		{"registry.example/app:latest", "", v1.PullAlways, 2},
		{"registry.example/app@sha256:abcd", "", v1.PullIfNotPresent, 1},
		{"registry.example/app:v1", v1.PullAlways, v1.PullAlways, 2},
	} {
		pod := newPod("announce", v1.RestartPolicyAlways, func(p *v1.Pod) {
			p.Spec.Containers[0].Image, p.Spec.Containers[0].ImagePullPolicy = tc.image, tc.policy
		})
		r := newSyncRig(t, pod)
		r.sync()
		r.exit("app", 0)
		r.sync()
		if r.prov.runCount("app") != 2 {
			t.Fatalf("%s: not restarted", tc.image)
		}
		var pulling int
		for _, reason := range reasons(r.allEvents()) {
			if reason == "Pulling" {
				pulling++
			}
		}
		if pulling != tc.wantPulling || r.prov.pulls[0].Policy != tc.wantPolicy {
			t.Errorf("%s %q: %d Pulling events, policy %s; want %d, %s", tc.image, tc.policy, pulling, r.prov.pulls[0].Policy, tc.wantPulling, tc.wantPolicy)
		}
	}
}

func TestAlreadyPresentImage(t *testing.T) {
	t.Parallel()
	r := newSyncRig(t, newPod("present", v1.RestartPolicyAlways))
	r.prov.present[testImage] = true
	r.sync()
	r.waitEvents(fmt.Sprintf("Normal Pulled Container image %q already present on machine", testImage))
}

func TestStartFailureBackOffHoldsOnWake(t *testing.T) {
	t.Parallel()
	r := newSyncRig(t, newPod("startfail", v1.RestartPolicyAlways))
	err := fmt.Errorf("%w: no memory export", provider.ErrCreateContainer)
	r.prov.setStartErr(func(provider.ContainerConfig) error { return err })
	if after := r.sync(); after != 10*time.Second {
		t.Fatalf("next sync in %v", after)
	}
	// Woken early (pod update, status echo): no new try.
	r.clock.Step(3 * time.Second)
	if after := r.sync(); after != 7*time.Second || r.prov.startCount() != 1 {
		t.Fatalf("early sync: next in %v after %d starts", after, r.prov.startCount())
	}
	r.clock.Step(7 * time.Second)
	if after := r.sync(); after != 20*time.Second || r.prov.startCount() != 2 {
		t.Fatalf("next sync in %v after %d starts", after, r.prov.startCount())
	}
	if w := r.app().State.Waiting; w == nil || w.Reason != "CreateContainerError" || w.Message != err.Error() {
		t.Fatalf("app = %s", stateOf(r.app()))
	}
	r.prov.setStartErr(nil)
	r.clock.Step(20 * time.Second)
	r.sync()
	if cs := r.app(); cs.State.Running == nil || cs.RestartCount != 0 {
		t.Fatalf("app = %s restarts %d", stateOf(cs), cs.RestartCount)
	}
}

// TestEventSequence follows one pod from a failed mount to its deletion and
// checks the events a user sees, in order.
func TestEventSequence(t *testing.T) {
	t.Parallel()
	pod := newPod("events", v1.RestartPolicyAlways)
	r := newSyncRig(t, pod)
	mountErr := fmt.Errorf("secret %q: %w", "creds", ErrVolumeSourceMissing)
	r.vols.setErr(func() error { return mountErr })
	if after := r.sync(); after != volumeRetry {
		t.Fatalf("failed mount: next sync in %v", after)
	}
	r.sync() // the same failure is reported once
	r.vols.setErr(nil)
	r.clock.Step(volumeRetry)
	r.sync()
	r.exit("app", 1) // restarted at once
	r.sync()
	r.exit("app", 1) // backs off
	r.sync()
	r.clock.Step(10 * time.Second)
	r.sync()

	// Deleted with a grace period: the run is stopped within it.
	deleted := pod.DeepCopy()
	deleted.DeletionTimestamp = &metav1.Time{Time: r.clock.Now()}
	deleted.DeletionGracePeriodSeconds = ptr.To[int64](10)
	r.w.update(deleted)
	r.sync()
	if got := r.prov.run(t, "app", 2).stopped(); len(got) != 1 || got[0] != 10*time.Second {
		t.Errorf("Stop grace %v, want [10s]", got)
	}
	if s := r.status(); s.Phase != v1.PodFailed || containerStatus(s, "app").State.Terminated == nil {
		t.Errorf("final status = %s", describe(s))
	}

	got := r.allEvents()
	want := []string{
		`Warning FailedMount MountVolume.SetUp failed: secret "creds": volume source missing`,
		`Normal Pulling Pulling image "` + testImage + `"`,
		`Normal Pulled Successfully pulled image "` + testImage + `" in 0s. Image size: 4096 bytes.`,
		"Normal Created Created container: app",
		"Normal Started Started container app",
		`Normal Pulled Container image "` + testImage + `" already present on machine`,
		"Normal Created Created container: app",
		"Normal Started Started container app",
		"Warning BackOff Back-off restarting failed container app in pod events_default(events-uid)",
		`Normal Pulled Container image "` + testImage + `" already present on machine`,
		"Normal Created Created container: app",
		"Normal Started Started container app",
		"Normal Killing Stopping container app",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("events:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

func TestLogFile(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	pod := newPod("logs", v1.RestartPolicyAlways)
	h.start(pod)
	if _, _, err := h.mgr.LogFile("default", "other", "app", false); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown pod: %v", err)
	}
	if _, _, err := h.mgr.LogFile("default", "logs", "sidecar", false); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown container: %v", err)
	}
	run0 := h.prov.run(t, "app", 0)
	fmt.Fprintln(run0.cfg.Stdout, "first run")
	if _, _, err := h.mgr.LogFile("default", "logs", "app", true); !errors.Is(err, ErrBadRequest) {
		t.Errorf("previous of the first run: %v", err)
	}
	run0.exit(1)
	run1 := h.prov.run(t, "app", 1)
	h.waitRunning(pod.UID, "app", 1)
	cur, writing, err := h.mgr.LogFile("default", "logs", "app", false)
	if err != nil || cur != logs.RunPath(h.logDir(pod, "app"), 1) || !writing() {
		t.Errorf("current log = %s, %v (writing %v)", cur, err, err == nil && writing())
	}
	prev, writing, err := h.mgr.LogFile("default", "logs", "app", true)
	if err != nil || prev != logs.RunPath(h.logDir(pod, "app"), 0) || writing() {
		t.Fatalf("previous log = %s, %v", prev, err)
	}
	if data, _ := os.ReadFile(prev); !strings.HasSuffix(string(data), " stdout F first run\n") {
		t.Errorf("previous log holds %q", data)
	}
	if rc := h.mgr.RunningContainers(); len(rc) != 1 || rc[0].ID != run1.cfg.ID || rc[0].Container != "app" {
		t.Errorf("RunningContainers = %+v", rc)
	}
}
