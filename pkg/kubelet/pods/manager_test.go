package pods

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"

	"github.com/krustlet/krustlet-go/pkg/kubelet/logs"
)

func TestGracefulDeletion(t *testing.T) {
	for _, tc := range []struct {
		name      string
		grace     int64
		wantGrace time.Duration
	}{
		{"raised to the minimum", 1, 2 * time.Second},
		{"as asked", 5, 5 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			pod := newPod("graceful", v1.RestartPolicyAlways, func(p *v1.Pod) {
				p.Spec.TerminationGracePeriodSeconds = ptr.To[int64](30)
			})
			h.start(pod)
			run := h.prov.run(t, "app", 0)
			h.waitAPIPhase(pod, v1.PodRunning)

			// The API server marks the pod deleted; the worker stops it
			// within the pod's grace period, writes the final status and
			// deletes the object.
			h.update(pod, func(p *v1.Pod) {
				p.DeletionTimestamp = &metav1.Time{Time: h.clock.Now()}
				p.DeletionGracePeriodSeconds = ptr.To(tc.grace)
			})
			waitFor(t, "the pod object deleted", func() error {
				if _, err := h.apiPod(pod); err == nil {
					return errors.New("still there")
				}
				return nil
			})
			if got := run.stopped(); !slices.Equal(got, []time.Duration{tc.wantGrace}) {
				t.Errorf("Stop called with %v, want [%v]", got, tc.wantGrace)
			}
			h.waitEvents("Normal Killing Stopping container app")

			var deletes []k8stesting.DeleteActionImpl
			for _, a := range h.client.Actions() {
				if d, ok := a.(k8stesting.DeleteActionImpl); ok {
					deletes = append(deletes, d)
				}
			}
			// (A status echo that beats the informer's delete may ask
			// again; the API answers NotFound.)
			if len(deletes) == 0 {
				t.Fatal("no delete")
			}
			for _, d := range deletes {
				opts := d.DeleteOptions
				if opts.GracePeriodSeconds == nil || *opts.GracePeriodSeconds != 0 ||
					opts.Preconditions == nil || opts.Preconditions.UID == nil || *opts.Preconditions.UID != pod.UID {
					t.Errorf("delete options = %+v, want grace 0 and UID precondition", opts)
				}
			}
			// The final status was written before the delete.
			patches := h.patches()
			if len(patches) == 0 || !strings.Contains(patches[len(patches)-1], `"exitCode":143`) {
				t.Errorf("last status patch = %q, want the stopped container", patches[len(patches)-1])
			}
			// Once the informer saw the pod go, its files are removed.
			waitFor(t, "the worker to finish", func() error {
				if h.hasWorker(pod.UID) {
					return errors.New("worker still there")
				}
				return nil
			})
			if _, err := os.Stat(h.mgr.d.layout.podDir(pod.UID)); !os.IsNotExist(err) {
				t.Errorf("pod dir: %v", err)
			}
			if !slices.Contains(h.vols.tornDownUIDs(), pod.UID) {
				t.Error("volumes not torn down")
			}
			if _, ok := h.status.Status(pod.UID); ok {
				t.Error("status manager still holds the pod")
			}
			if h.prov.runCount("app") != 1 {
				t.Error("the container restarted while the pod terminated")
			}
		})
	}
}

func TestForceDeletion(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	pod := newPod("forced", v1.RestartPolicyAlways)
	h.start(pod)
	run := h.prov.run(t, "app", 0)
	fmt.Fprintln(run.cfg.Stderr, "some output")
	h.waitAPIPhase(pod, v1.PodRunning)
	logDir := logs.PodDir(filepath.Join(h.dataDir, "logs", "pods"), pod.Namespace, pod.Name, string(pod.UID))
	if _, err := os.Stat(logDir); err != nil {
		t.Fatal(err)
	}

	if err := h.client.CoreV1().Pods(pod.Namespace).Delete(context.Background(), pod.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the worker to finish", func() error {
		if h.hasWorker(pod.UID) {
			return errors.New("worker still there")
		}
		return nil
	})
	if got := run.stopped(); !slices.Equal(got, []time.Duration{0}) {
		t.Errorf("Stop called with %v, want [0s]", got)
	}
	for _, dir := range []string{h.mgr.d.layout.podDir(pod.UID), logDir} {
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("%s: %v, want removed", dir, err)
		}
	}
	if !slices.Contains(h.vols.tornDownUIDs(), pod.UID) {
		t.Error("volumes not torn down")
	}
	if _, ok := h.status.Status(pod.UID); ok {
		t.Error("status manager still holds the pod")
	}
	if len(h.mgr.RunningPods()) != 0 {
		t.Error("RunningPods still lists the pod")
	}
}

func TestDeletionWhilePulling(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.prov.blockPulls = make(chan struct{})
	pod := newPod("pulling", v1.RestartPolicyAlways)
	h.start(pod)
	h.waitWaiting(pod.UID, "app", "ContainerCreating")
	h.update(pod, func(p *v1.Pod) {
		p.DeletionTimestamp = &metav1.Time{Time: h.clock.Now()}
		p.DeletionGracePeriodSeconds = ptr.To[int64](30)
	})
	// The pull is abandoned and the pod object goes without any run.
	waitFor(t, "the pod object deleted", func() error {
		if _, err := h.apiPod(pod); err == nil {
			return errors.New("still there")
		}
		return nil
	})
	if n := h.prov.startCount(); n != 0 {
		t.Errorf("%d starts", n)
	}
}

func TestActiveDeadline(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	pod := newPod("deadline", v1.RestartPolicyAlways, func(p *v1.Pod) {
		p.Spec.ActiveDeadlineSeconds = ptr.To[int64](60)
	})
	h.start(pod)
	run := h.prov.run(t, "app", 0)
	h.waitRunning(pod.UID, "app", 0)
	h.clock.advance(t, 60*time.Second)
	s := h.waitPhase(pod.UID, v1.PodFailed)
	const msg = "Pod was active on the node longer than the specified deadline"
	if s.Reason != "DeadlineExceeded" || s.Message != msg {
		t.Errorf("reason = %q, message = %q", s.Reason, s.Message)
	}
	if got := run.stopped(); !slices.Equal(got, []time.Duration{30 * time.Second}) {
		t.Errorf("Stop called with %v, want the default 30s", got)
	}
	if c := containerStatus(s, "app"); c.State.Terminated == nil {
		t.Errorf("app = %s", stateOf(c))
	}
	h.waitEvents("Normal DeadlineExceeded "+msg, "Normal Killing Stopping container app")
	if h.prov.runCount("app") != 1 {
		t.Error("restarted after the deadline")
	}
	if len(h.mgr.RunningPods()) != 0 {
		t.Error("a failed pod still counts as running")
	}
}

func TestAdmissionRejections(t *testing.T) {
	cpu := func(q string) func(*v1.Pod) {
		return func(p *v1.Pod) {
			p.Spec.Containers[0].Resources.Requests = v1.ResourceList{v1.ResourceCPU: resource.MustParse(q)}
		}
	}
	for _, tc := range []struct {
		name    string
		node    func(*v1.Node)
		pod     func(*v1.Pod)
		admit   bool // use a provider that refuses annotated pods
		reason  string
		message string
	}{
		{
			name:    "cpu",
			pod:     cpu("3"),
			reason:  "OutOfcpu",
			message: "Node didn't have enough resource: cpu, requested: 3000, used: 500, capacity: 2000",
		},
		{
			name:    "node selector",
			pod:     func(p *v1.Pod) { p.Spec.NodeSelector = map[string]string{"disk": "ssd"} },
			reason:  "NodeAffinity",
			message: "Predicate NodeAffinity failed: node(s) didn't match Pod's node affinity/selector",
		},
		{
			name: "NoExecute taint",
			node: func(n *v1.Node) {
				n.Spec.Taints = []v1.Taint{{Key: "maintenance", Value: "true", Effect: v1.TaintEffectNoExecute}}
			},
			reason:  "Taint",
			message: "Predicate TaintToleration failed: the pod does not tolerate the node's taint maintenance=true:NoExecute",
		},
		{
			name:    "provider",
			pod:     func(p *v1.Pod) { p.Annotations = map[string]string{"unsupported": "yes"} },
			admit:   true,
			reason:  "UnsupportedPodSpec",
			message: "hostNetwork pods cannot run as Wasm",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var opts []harnessOption
			if tc.admit {
				opts = append(opts, func(h *harness, c *Config) {
					c.Router = routeAllTo(&admittingProvider{fakeProvider: h.prov, reason: tc.reason, message: tc.message})
				})
			}
			h := newHarness(t, opts...)
			if tc.node != nil {
				h.setNode(tc.node)
			}
			// A running pod takes half a CPU.
			first := newPod("first", v1.RestartPolicyAlways, cpu("500m"), func(p *v1.Pod) {
				p.Spec.Tolerations = []v1.Toleration{{Operator: v1.TolerationOpExists}}
			})
			h.start(first)
			h.prov.run(t, "app", 0)

			pod := newPod("rejected", v1.RestartPolicyAlways)
			if tc.pod != nil {
				tc.pod(pod)
			}
			if _, err := h.client.CoreV1().Pods(pod.Namespace).Create(context.Background(), pod, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			s := h.waitPhase(pod.UID, v1.PodFailed)
			if s.Reason != tc.reason || s.Message != tc.message {
				t.Errorf("reason = %q, message = %q; want %q, %q", s.Reason, s.Message, tc.reason, tc.message)
			}
			if c := condition(s, v1.PodScheduled); c.Status != v1.ConditionTrue {
				t.Errorf("conditions = %+v, want the API's kept", s.Conditions)
			}
			h.waitEvents("Warning " + tc.reason + " " + tc.message)
			h.waitAPIPhase(pod, v1.PodFailed)
			if n := h.prov.pullCount(); n != 1 {
				t.Errorf("%d pulls, want only the first pod's", n)
			}
			if got := h.mgr.RunningPods(); len(got) != 1 || got[0].Name != "first" {
				t.Errorf("RunningPods = %d pods", len(got))
			}
		})
	}
}

func TestAdmissionMaxPods(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.setNode(func(n *v1.Node) { n.Status.Allocatable[v1.ResourcePods] = resource.MustParse("1") })
	first := newPod("first", v1.RestartPolicyNever)
	h.start(first)
	run := h.prov.run(t, "app", 0)

	second := newPod("second", v1.RestartPolicyNever)
	if _, err := h.client.CoreV1().Pods(second.Namespace).Create(context.Background(), second, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	s := h.waitPhase(second.UID, v1.PodFailed)
	const msg = "Node didn't have enough resource: pods, requested: 1, used: 1, capacity: 1"
	if s.Reason != "OutOfpods" || s.Message != msg {
		t.Errorf("reason = %q, message = %q", s.Reason, s.Message)
	}
	h.waitEvents("Warning OutOfpods " + msg)

	// Once the first pod completed, its slot is free again.
	run.exit(0)
	h.waitPhase(first.UID, v1.PodSucceeded)
	third := newPod("third", v1.RestartPolicyNever)
	if _, err := h.client.CoreV1().Pods(third.Namespace).Create(context.Background(), third, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.waitPhase(third.UID, v1.PodRunning)
}

func TestAdmissionOrderAtStart(t *testing.T) {
	t.Parallel()
	// Pods found at start are admitted in creation order: the older one
	// gets the only slot, whatever the informer's order.
	h := newHarness(t)
	h.setNode(func(n *v1.Node) { n.Status.Allocatable[v1.ResourcePods] = resource.MustParse("1") })
	older := newPod("zz-older", v1.RestartPolicyAlways)
	newer := newPod("aa-newer", v1.RestartPolicyAlways, func(p *v1.Pod) {
		p.CreationTimestamp = metav1.NewTime(p.CreationTimestamp.Add(time.Minute))
	})
	h.start(newer, older)
	h.waitPhase(older.UID, v1.PodRunning)
	if s := h.waitPhase(newer.UID, v1.PodFailed); s.Reason != "OutOfpods" {
		t.Errorf("newer pod: reason %q", s.Reason)
	}
}

func TestAgentRestart(t *testing.T) {
	started := metav1.NewTime(time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC))
	for _, tc := range []struct {
		policy    v1.RestartPolicy
		wantPhase v1.PodPhase
		restarted bool
	}{
		{v1.RestartPolicyAlways, v1.PodRunning, true},
		{v1.RestartPolicyOnFailure, v1.PodRunning, true},
		{v1.RestartPolicyNever, v1.PodFailed, false},
	} {
		t.Run(string(tc.policy), func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			// The node now refuses every new pod: the pod that ran before
			// the restart is taken back without a new admission.
			h.setNode(func(n *v1.Node) {
				n.Spec.Taints = []v1.Taint{{Key: "maintenance", Effect: v1.TaintEffectNoExecute}}
			})
			pod := newPod("restored", tc.policy, func(p *v1.Pod) {
				p.Status.Phase = v1.PodRunning
				p.Status.StartTime = &started
				p.Status.ContainerStatuses = []v1.ContainerStatus{{
					Name: "app", Image: testImage, ImageID: testImage + "@sha256:0123", ContainerID: "fake://old",
					RestartCount: 2, Ready: true,
					State: v1.ContainerState{Running: &v1.ContainerStateRunning{StartedAt: started}},
					LastTerminationState: v1.ContainerState{Terminated: &v1.ContainerStateTerminated{
						ExitCode: 1, Reason: "Error", ContainerID: "fake://older"}},
				}}
			})
			h.start(pod)
			var cs v1.ContainerStatus
			if tc.restarted {
				run := h.prov.run(t, "app", 0)
				cs = h.waitRunning(pod.UID, "app", 3)
				if filepath.Base(logs.RunPath(h.logDir(pod, "app"), 3)) != "3.log" || !strings.HasSuffix(run.cfg.ID, "_app_3") {
					t.Errorf("run ID = %q, want run 3", run.cfg.ID)
				}
				if _, err := os.Stat(logs.RunPath(h.logDir(pod, "app"), 3)); err != nil {
					t.Errorf("log of run 3: %v", err)
				}
			}
			s := h.waitPhase(pod.UID, tc.wantPhase)
			if !tc.restarted {
				cs = containerStatus(s, "app")
				if cs.State.Terminated == nil || cs.RestartCount != 2 {
					t.Fatalf("app = %s restarts %d, want terminated with 2", stateOf(cs), cs.RestartCount)
				}
				if n := h.prov.startCount(); n != 0 {
					t.Errorf("%d starts for a Never pod", n)
				}
				cs.LastTerminationState = cs.State
			}
			last := cs.LastTerminationState.Terminated
			if last == nil || last.ExitCode != 137 || last.Reason != "Error" || !last.StartedAt.Equal(&started) ||
				last.Message != "the node agent restarted while the container was running" || last.ContainerID != "fake://old" {
				t.Errorf("lastState = %+v", cs.LastTerminationState.Terminated)
			}
			if !s.StartTime.Equal(&started) {
				t.Errorf("startTime = %v, want the API's %v", s.StartTime, started)
			}
			for _, e := range h.allEvents() {
				if strings.HasPrefix(e, "Warning Taint") {
					t.Errorf("pod re-admitted: %s", e)
				}
			}
		})
	}
}

func TestTerminalPodsNeverRerun(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	finished := metav1.NewTime(time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC))
	succeeded := newPod("succeeded", v1.RestartPolicyAlways, func(p *v1.Pod) {
		p.Status.Phase = v1.PodSucceeded
		p.Status.ContainerStatuses = []v1.ContainerStatus{{Name: "app", Image: testImage,
			State: v1.ContainerState{Terminated: &v1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed", FinishedAt: finished}}}}
	})
	failed := newPod("failed", v1.RestartPolicyAlways, func(p *v1.Pod) {
		p.Status.Phase, p.Status.Reason, p.Status.Message = v1.PodFailed, "DeadlineExceeded", "too long"
		p.Status.ContainerStatuses = []v1.ContainerStatus{{Name: "app", Image: testImage,
			State: v1.ContainerState{Terminated: &v1.ContainerStateTerminated{ExitCode: 143, Reason: "Error", FinishedAt: finished}}}}
	})
	h.start(succeeded, failed)
	h.waitPhase(succeeded.UID, v1.PodSucceeded)
	s := h.waitPhase(failed.UID, v1.PodFailed)
	if s.Reason != "DeadlineExceeded" || s.Message != "too long" {
		t.Errorf("reason = %q, message = %q", s.Reason, s.Message)
	}
	// A later update does not make them run either.
	h.update(succeeded, func(p *v1.Pod) { p.Labels = map[string]string{"touched": "yes"} })
	waitFor(t, "the update in the cache", func() error {
		if p := h.mgr.Pod(succeeded.Namespace, succeeded.Name); p == nil || p.Labels["touched"] != "yes" {
			return errors.New("not yet")
		}
		return nil
	})
	h.waitPhase(succeeded.UID, v1.PodSucceeded)
	if n := h.prov.pullCount() + h.prov.startCount(); n != 0 {
		t.Errorf("%d pulls and starts for terminal pods", n)
	}
	if len(h.mgr.RunningPods()) != 0 {
		t.Error("terminal pods count as running")
	}
}

func TestOrphansRemovedAtStart(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	live := newPod("live", v1.RestartPolicyAlways)
	root := filepath.Join(h.dataDir, "logs", "pods")
	orphanFiles := []string{
		filepath.Join(h.dataDir, "pods", "orphan-uid", "volumes", "data"),
		filepath.Join(logs.ContainerDir(root, "default", "gone", "orphan-uid", "app"), "0.log"),
	}
	liveLog := filepath.Join(logs.ContainerDir(root, "default", "live", string(live.UID), "app"), "old.txt")
	for _, f := range append(slices.Clone(orphanFiles), liveLog) {
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	h.start(live)
	h.prov.run(t, "app", 0)
	waitFor(t, "orphans removed", func() error {
		for _, f := range []string{filepath.Join(h.dataDir, "pods", "orphan-uid"), filepath.Dir(filepath.Dir(orphanFiles[1]))} {
			if _, err := os.Stat(f); !os.IsNotExist(err) {
				return fmt.Errorf("%s: %v", f, err)
			}
		}
		return nil
	})
	if !slices.Contains(h.vols.tornDownUIDs(), "orphan-uid") {
		t.Errorf("torn down %v, want the orphan's volumes", h.vols.tornDownUIDs())
	}
	if _, err := os.Stat(liveLog); err != nil {
		t.Errorf("a live pod's logs were removed: %v", err)
	}
	if _, err := os.Stat(h.mgr.d.layout.podDir(live.UID)); err != nil {
		t.Errorf("a live pod's dir: %v", err)
	}
}
