package node

import (
	"errors"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/krustlet/krustlet-go/pkg/config"
	"github.com/krustlet/krustlet-go/pkg/provider"
)

func TestNodeAddress(t *testing.T) {
	tests := []struct {
		name     string
		ips      []net.IP
		hostname string
		want     []v1.NodeAddress
	}{
		{
			name:     "dual stack",
			ips:      []net.IP{net.ParseIP("10.0.0.7"), net.ParseIP("fd00::7")},
			hostname: "edge-1",
			want: []v1.NodeAddress{
				{Type: v1.NodeInternalIP, Address: "10.0.0.7"},
				{Type: v1.NodeInternalIP, Address: "fd00::7"},
				{Type: v1.NodeHostName, Address: "edge-1"},
			},
		},
		{
			name:     "no addresses: host name only",
			hostname: "edge-1",
			want:     []v1.NodeAddress{{Type: v1.NodeHostName, Address: "edge-1"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			node := &v1.Node{Status: v1.NodeStatus{Addresses: []v1.NodeAddress{{Type: v1.NodeExternalIP, Address: "1.2.3.4"}}}}
			if err := NodeAddress(tc.ips, tc.hostname)(t.Context(), node); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(node.Status.Addresses, tc.want) {
				t.Errorf("addresses %v, want %v (old ones replaced)", node.Status.Addresses, tc.want)
			}
		})
	}
}

func TestMachineInfo(t *testing.T) {
	machine := Capacity{MilliCPU: 4000, MemoryBytes: 8 * gib, EphemeralStorageBytes: 100 * gib}
	wantCapacity := v1.ResourceList{
		v1.ResourceCPU:              resource.MustParse("4"),
		v1.ResourceMemory:           resource.MustParse("8Gi"),
		v1.ResourceEphemeralStorage: resource.MustParse("100Gi"),
		v1.ResourcePods:             resource.MustParse("110"),
	}
	tests := []struct {
		name          string
		reserved      v1.ResourceList
		evictionHard  []config.EvictionThreshold
		wantAlloc     v1.ResourceList
		wantAllocSame bool
	}{
		{
			name:          "nothing reserved: allocatable is capacity",
			wantAllocSame: true,
		},
		{
			name: "system and kube reserved are subtracted; unknown resources ignored",
			reserved: v1.ResourceList{
				v1.ResourceCPU:              resource.MustParse("500m"),
				v1.ResourceMemory:           resource.MustParse("1Gi"),
				v1.ResourceEphemeralStorage: resource.MustParse("10Gi"),
				"example.com/gpu":           resource.MustParse("1"),
			},
			wantAlloc: v1.ResourceList{
				v1.ResourceCPU:              resource.MustParse("3500m"),
				v1.ResourceMemory:           resource.MustParse("7Gi"),
				v1.ResourceEphemeralStorage: resource.MustParse("90Gi"),
				v1.ResourcePods:             resource.MustParse("110"),
			},
		},
		{
			name: "hard eviction thresholds of memory and nodefs, by quantity and percentage",
			reserved: v1.ResourceList{
				v1.ResourceMemory:           resource.MustParse("1Gi"),
				v1.ResourceEphemeralStorage: resource.MustParse("10Gi"),
			},
			evictionHard: []config.EvictionThreshold{
				{Signal: config.SignalMemoryAvailable, Quantity: qty(t, "100Mi")},
				{Signal: config.SignalNodeFsAvailable, Percentage: 0.1},
				// Not part of allocatable.
				{Signal: config.SignalNodeFsInodesFree, Percentage: 0.5},
				{Signal: config.SignalImageFsAvailable, Percentage: 0.5},
				{Signal: config.SignalPIDAvailable, Quantity: qty(t, "100")},
			},
			wantAlloc: v1.ResourceList{
				v1.ResourceCPU:    resource.MustParse("4"),
				v1.ResourceMemory: *resource.NewQuantity(7*gib-100*mib, resource.BinarySI),
				// 10 % as the kubelet takes it: of float32 0.1, a little more
				// than 10 GiB.
				v1.ResourceEphemeralStorage: *resource.NewQuantity(90*gib-int64(float64(100*gib)*float64(float32(0.1))), resource.BinarySI),
				v1.ResourcePods:             resource.MustParse("110"),
			},
		},
		{
			name: "memory percentage threshold",
			evictionHard: []config.EvictionThreshold{
				{Signal: config.SignalMemoryAvailable, Percentage: 0.25},
			},
			wantAlloc: v1.ResourceList{
				v1.ResourceCPU:              resource.MustParse("4"),
				v1.ResourceMemory:           resource.MustParse("6Gi"),
				v1.ResourceEphemeralStorage: resource.MustParse("100Gi"),
				v1.ResourcePods:             resource.MustParse("110"),
			},
		},
		{
			name: "clamped at zero",
			reserved: v1.ResourceList{
				v1.ResourceCPU:    resource.MustParse("8"),
				v1.ResourceMemory: resource.MustParse("7Gi"),
			},
			evictionHard: []config.EvictionThreshold{
				{Signal: config.SignalMemoryAvailable, Quantity: qty(t, "2Gi")},
				{Signal: config.SignalNodeFsAvailable, Quantity: qty(t, "1Ti")},
			},
			wantAlloc: v1.ResourceList{
				v1.ResourceCPU:              resource.MustParse("0"),
				v1.ResourceMemory:           resource.MustParse("0"),
				v1.ResourceEphemeralStorage: resource.MustParse("0"),
				v1.ResourcePods:             resource.MustParse("110"),
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			node := &v1.Node{}
			set := MachineInfo(110, func() (Capacity, error) { return machine, nil }, tc.reserved, tc.evictionHard)
			if err := set(t.Context(), node); err != nil {
				t.Fatal(err)
			}
			assertResources(t, "capacity", node.Status.Capacity, wantCapacity)
			want := tc.wantAlloc
			if tc.wantAllocSame {
				want = wantCapacity
			}
			assertResources(t, "allocatable", node.Status.Allocatable, want)
			for name, q := range node.Status.Allocatable {
				if q.Sign() < 0 {
					t.Errorf("allocatable %s is negative: %s", name, q.String())
				}
			}
		})
	}
}

func TestMachineInfoCapacityError(t *testing.T) {
	node := &v1.Node{Status: v1.NodeStatus{Capacity: v1.ResourceList{v1.ResourcePods: resource.MustParse("5")}}}
	boom := errors.New("boom")
	err := MachineInfo(110, func() (Capacity, error) { return Capacity{}, boom }, nil, nil)(t.Context(), node)
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "reading machine capacity") {
		t.Fatalf("error %v, want one wrapping %v with context", err, boom)
	}
	if got := node.Status.Capacity[v1.ResourcePods]; got.Value() != 5 || len(node.Status.Capacity) != 1 {
		t.Errorf("capacity changed on error: %v", node.Status.Capacity)
	}
}

func assertResources(t *testing.T, what string, got, want v1.ResourceList) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s has %d resources %v, want %d %v", what, len(got), got, len(want), want)
	}
	for name, w := range want {
		g, ok := got[name]
		if !ok || g.Cmp(w) != 0 {
			t.Errorf("%s %s = %s, want %s", what, name, g.String(), w.String())
		}
	}
}

func TestVersionInfo(t *testing.T) {
	sys := SystemInfo{
		MachineID: "mid", SystemUUID: "uuid", BootID: "boot",
		KernelVersion: "6.1.0", OSImage: "Debian GNU/Linux 13", KubeletVersion: "v1.37.2-krustlet",
	}
	node := &v1.Node{}
	err := VersionInfo(sys, provider.NodeInfo{RuntimeName: "wasmtime", RuntimeVersion: "39.0.1", Architecture: "wasm-wasi"})(t.Context(), node)
	if err != nil {
		t.Fatal(err)
	}
	want := v1.NodeSystemInfo{
		MachineID: "mid", SystemUUID: "uuid", BootID: "boot",
		KernelVersion: "6.1.0", OSImage: "Debian GNU/Linux 13",
		ContainerRuntimeVersion: "wasmtime://39.0.1",
		KubeletVersion:          "v1.37.2-krustlet",
		OperatingSystem:         "linux",
		Architecture:            "wasm-wasi",
	}
	if !reflect.DeepEqual(node.Status.NodeInfo, want) {
		t.Errorf("nodeInfo\n got %+v\nwant %+v", node.Status.NodeInfo, want)
	}
}

func TestDaemonEndpoints(t *testing.T) {
	node := &v1.Node{}
	if err := DaemonEndpoints(10250)(t.Context(), node); err != nil {
		t.Fatal(err)
	}
	if got := node.Status.DaemonEndpoints.KubeletEndpoint.Port; got != 10250 {
		t.Errorf("kubelet endpoint port %d, want 10250", got)
	}
}

// conditionStep is one run of a condition setter.
type conditionStep struct {
	errs          []error // ReadyCondition
	pressure      bool    // PressureCondition
	wantStatus    v1.ConditionStatus
	wantReason    string
	wantMessage   string
	wantTransAtIx int // index of the step whose time the transition time is
}

func TestReadyCondition(t *testing.T) {
	steps := []conditionStep{
		{wantStatus: v1.ConditionTrue, wantReason: "KubeletReady", wantMessage: "kubelet is posting ready status", wantTransAtIx: 0},
		{wantStatus: v1.ConditionTrue, wantReason: "KubeletReady", wantMessage: "kubelet is posting ready status", wantTransAtIx: 0},
		{errs: []error{errors.New("runtime down")}, wantStatus: v1.ConditionFalse, wantReason: "KubeletNotReady", wantMessage: "[runtime down]", wantTransAtIx: 2},
		{errs: []error{errors.New("runtime down"), errors.New("network down")}, wantStatus: v1.ConditionFalse, wantReason: "KubeletNotReady", wantMessage: "[runtime down, network down]", wantTransAtIx: 2},
		{wantStatus: v1.ConditionTrue, wantReason: "KubeletReady", wantMessage: "kubelet is posting ready status", wantTransAtIx: 4},
	}
	runConditionSteps(t, v1.NodeReady, steps, func(now func() metav1.Time, step *conditionStep) Setter {
		return ReadyCondition(now, func() []error { return step.errs })
	})
}

func TestPressureCondition(t *testing.T) {
	texts := map[v1.NodeConditionType][4]string{
		v1.NodeMemoryPressure: {"KubeletHasSufficientMemory", "kubelet has sufficient memory available", "KubeletHasInsufficientMemory", "kubelet has insufficient memory available"},
		v1.NodeDiskPressure:   {"KubeletHasNoDiskPressure", "kubelet has no disk pressure", "KubeletHasDiskPressure", "kubelet has disk pressure"},
		v1.NodePIDPressure:    {"KubeletHasSufficientPID", "kubelet has sufficient PID available", "KubeletHasInsufficientPID", "kubelet has insufficient PID available"},
	}
	for typ, tx := range texts {
		t.Run(string(typ), func(t *testing.T) {
			no := conditionStep{wantStatus: v1.ConditionFalse, wantReason: tx[0], wantMessage: tx[1]}
			yes := conditionStep{pressure: true, wantStatus: v1.ConditionTrue, wantReason: tx[2], wantMessage: tx[3]}
			at := func(s conditionStep, i int) conditionStep { s.wantTransAtIx = i; return s }
			steps := []conditionStep{at(no, 0), at(no, 0), at(yes, 2), at(yes, 2), at(no, 4)}
			runConditionSteps(t, typ, steps, func(now func() metav1.Time, step *conditionStep) Setter {
				return PressureCondition(typ, now, func() (bool, error) { return step.pressure, nil })
			})
		})
	}
}

func TestPressureConditionError(t *testing.T) {
	now := metav1.NewTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	old := v1.NodeCondition{Type: v1.NodeDiskPressure, Status: v1.ConditionFalse, Reason: "KubeletHasNoDiskPressure", LastHeartbeatTime: now, LastTransitionTime: now}
	node := &v1.Node{Status: v1.NodeStatus{Conditions: []v1.NodeCondition{old}}}
	boom := errors.New("statfs failed")
	set := PressureCondition(v1.NodeDiskPressure, func() metav1.Time { return metav1.NewTime(now.Add(time.Minute)) }, func() (bool, error) { return false, boom })
	err := set(t.Context(), node)
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), string(v1.NodeDiskPressure)) {
		t.Fatalf("error %v, want one wrapping %v and naming the condition", err, boom)
	}
	if !reflect.DeepEqual(node.Status.Conditions, []v1.NodeCondition{old}) {
		t.Errorf("condition changed on error: %+v", node.Status.Conditions)
	}
}

// runConditionSteps applies a condition setter once per step, a minute
// apart, to a node that also has an unrelated condition, and checks the
// condition after each: the heartbeat always moves, the transition time
// only when the status changes.
func runConditionSteps(t *testing.T, typ v1.NodeConditionType, steps []conditionStep, setter func(now func() metav1.Time, step *conditionStep) Setter) {
	t.Helper()
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	other := v1.NodeCondition{Type: "NetworkUnavailable", Status: v1.ConditionFalse, Reason: "RouteCreated", LastHeartbeatTime: metav1.NewTime(start), LastTransitionTime: metav1.NewTime(start)}
	node := &v1.Node{Status: v1.NodeStatus{Conditions: []v1.NodeCondition{other}}}
	var current time.Time
	var step conditionStep
	set := setter(func() metav1.Time { return metav1.NewTime(current) }, &step)
	for i, s := range steps {
		current = start.Add(time.Duration(i) * time.Minute)
		step = s
		if err := set(t.Context(), node); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if len(node.Status.Conditions) != 2 || !reflect.DeepEqual(node.Status.Conditions[0], other) {
			t.Fatalf("step %d: conditions %+v, want the unrelated one kept and one %s", i, node.Status.Conditions, typ)
		}
		c := node.Status.Conditions[1]
		if c.Type != typ || c.Status != s.wantStatus || c.Reason != s.wantReason || c.Message != s.wantMessage {
			t.Errorf("step %d: %s %s %q %q, want %s %s %q %q", i, c.Type, c.Status, c.Reason, c.Message, typ, s.wantStatus, s.wantReason, s.wantMessage)
		}
		if !c.LastHeartbeatTime.Time.Equal(current) {
			t.Errorf("step %d: heartbeat %v, want %v", i, c.LastHeartbeatTime, current)
		}
		if want := start.Add(time.Duration(s.wantTransAtIx) * time.Minute); !c.LastTransitionTime.Time.Equal(want) {
			t.Errorf("step %d: transition %v, want %v", i, c.LastTransitionTime, want)
		}
	}
}
