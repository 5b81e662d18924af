package wasmtime

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	"github.com/krustlet/krustlet-go/pkg/provider"
)

func TestOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
		want string
	}{
		{"no data dir", Options{}, "DataDir is required"},
		{"negative epoch", Options{DataDir: "/x", EpochInterval: -time.Millisecond}, "EpochInterval"},
		{"slow epoch", Options{DataDir: "/x", EpochInterval: 2 * time.Second}, "EpochInterval"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.opts.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate() = %v, want an error about %s", err, tc.want)
			}
		})
	}
	o := Options{DataDir: "relative"}
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(o.DataDir, "/") || o.Clock == nil || o.EpochInterval != DefaultEpochInterval || o.Logger.GetSink() == nil {
		t.Errorf("defaults not filled in: %+v", o)
	}
}

func TestNode(t *testing.T) {
	got := shared(t).Node()
	want := provider.NodeInfo{
		Labels: map[string]string{"kubernetes.io/arch": "wasm32-wasi", "kubernetes.io/os": "wasm32-wasi"},
		Taints: []v1.Taint{
			{Key: "kubernetes.io/arch", Value: "wasm32-wasi", Effect: v1.TaintEffectNoSchedule},
			{Key: "kubernetes.io/arch", Value: "wasm32-wasi", Effect: v1.TaintEffectNoExecute},
		},
		RuntimeName:    "wasmtime",
		RuntimeVersion: "39.0.1",
		Architecture:   "wasm-wasi",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Node() = %+v, want %+v", got, want)
	}
}

func TestAdmit(t *testing.T) {
	p := shared(t)
	base := func(mutate func(*v1.PodSpec)) *v1.Pod {
		pod := &v1.Pod{Spec: v1.PodSpec{
			Containers: []v1.Container{{Name: "app", Image: "fs//app.wasm"}},
			Volumes: []v1.Volume{
				{Name: "cm", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{}}},
				{Name: "secret", VolumeSource: v1.VolumeSource{Secret: &v1.SecretVolumeSource{}}},
				{Name: "scratch", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}},
				{Name: "host", VolumeSource: v1.VolumeSource{HostPath: &v1.HostPathVolumeSource{Path: "/srv"}}},
				{Name: "info", VolumeSource: v1.VolumeSource{DownwardAPI: &v1.DownwardAPIVolumeSource{}}},
				{Name: "token", VolumeSource: v1.VolumeSource{Projected: &v1.ProjectedVolumeSource{}}},
			},
		}}
		if mutate != nil {
			mutate(&pod.Spec)
		}
		return pod
	}
	for _, tc := range []struct {
		name string
		pod  *v1.Pod
		want []string // empty: admitted
	}{
		{"supported volumes", base(nil), nil},
		{"host network", base(func(s *v1.PodSpec) { s.HostNetwork = true }), nil},
		{"host PID", base(func(s *v1.PodSpec) { s.HostPID = true }), []string{"hostPID"}},
		{"host IPC", base(func(s *v1.PodSpec) { s.HostIPC = true }), []string{"hostIPC"}},
		{"privileged init container", base(func(s *v1.PodSpec) {
			s.InitContainers = []v1.Container{{Name: "setup", SecurityContext: &v1.SecurityContext{Privileged: ptr.To(true)}}}
		}), []string{`init container "setup" is privileged`}},
		{"unprivileged security context", base(func(s *v1.PodSpec) {
			s.Containers[0].SecurityContext = &v1.SecurityContext{Privileged: ptr.To(false)}
		}), nil},
		{"persistent volume claim and NFS", base(func(s *v1.PodSpec) {
			s.Volumes = append(s.Volumes,
				v1.Volume{Name: "data", VolumeSource: v1.VolumeSource{PersistentVolumeClaim: &v1.PersistentVolumeClaimVolumeSource{ClaimName: "c"}}},
				v1.Volume{Name: "share", VolumeSource: v1.VolumeSource{NFS: &v1.NFSVolumeSource{}}})
		}), []string{`volume "data" uses persistentVolumeClaim`, `volume "share" uses nfs`, "supports only configMap"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reason, msg := p.Admit(tc.pod)
			if len(tc.want) == 0 {
				if reason != "" {
					t.Errorf("rejected: %s: %s", reason, msg)
				}
				return
			}
			if reason != ReasonUnsupportedPodSpec {
				t.Errorf("reason = %q, want %q", reason, ReasonUnsupportedPodSpec)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("message %q lacks %q", msg, w)
				}
			}
		})
	}
}

func TestTrapMessage(t *testing.T) {
	raw := "error while executing at wasm backtrace:\n    0:   0x60 - <unknown>!boom\n    1:   0x64 - <unknown>!work\n\n" +
		"Caused by:\n    0: memory fault at wasm address 0x10 in linear memory of size 0x0\n    1: wasm trap: out of bounds memory access\n\n" +
		"Stack backtrace:\n   0: anyhow::error::<impl core::convert::From<E> for anyhow::Error>::from\n   1: wasmtime::runtime::trap::from_runtime_box\n"
	got := trapMessage(errors.New(raw))
	want := "wasm trap: out of bounds memory access (memory fault at wasm address 0x10 in linear memory of size 0x0)\n" +
		"wasm backtrace:\n    0:   0x60 - <unknown>!boom\n    1:   0x64 - <unknown>!work"
	if got != want {
		t.Errorf("trapMessage =\n%s\nwant\n%s", got, want)
	}
	if got := trapMessage(errors.New("unknown import: `env::f` has not been defined\n\nStack backtrace:\n   0: x")); got != "unknown import: `env::f` has not been defined" {
		t.Errorf("plain error: %q", got)
	}
	long := "error while executing at wasm backtrace:\n" + strings.Repeat("    0: 0x1 - f\n", 100) + "\nCaused by:\n    boom"
	if got := trapMessage(errors.New(long)); strings.Count(got, "\n") > maxFrames+3 || !strings.HasPrefix(got, "boom\n") {
		t.Errorf("long backtrace not cut: %q", got)
	}
}

func TestOOMScanner(t *testing.T) {
	var o oomScanner
	o.scan([]byte("starting\nfatal error: out of mem"))
	if o.saw() {
		t.Error("half a marker counted")
	}
	o.scan([]byte("ory\n"))
	if !o.saw() {
		t.Error("a marker split across writes was missed")
	}
	o.scan([]byte(strings.Repeat("later log line\n", oomWindow/10)))
	if o.saw() {
		t.Error("a marker long before the end still counts")
	}
	var r oomScanner
	r.scan([]byte("memory allocation of 104857600 bytes failed\n"))
	if !r.saw() {
		t.Error("Rust's message missed")
	}
}
