package node

import (
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/krustlet/krustlet-go/pkg/config"
)

func qty(t *testing.T, s string) *resource.Quantity {
	t.Helper()
	q, err := resource.ParseQuantity(s)
	if err != nil {
		t.Fatal(err)
	}
	return &q
}

func TestEvaluatePressure(t *testing.T) {
	// 10 % of every resource is left.
	u := Usage{
		MemoryAvailableBytes: 1000, MemoryCapacityBytes: 10000,
		FsAvailableBytes: 2000, FsCapacityBytes: 20000,
		FsInodesFree: 300, FsInodes: 3000,
		PIDsAvailable: 400, PIDsMax: 4000,
	}
	threshold := func(s config.EvictionSignal, q string) config.EvictionThreshold {
		return config.EvictionThreshold{Signal: s, Quantity: qty(t, q)}
	}
	percent := func(s config.EvictionSignal, p float32) config.EvictionThreshold {
		return config.EvictionThreshold{Signal: s, Percentage: p}
	}
	tests := []struct {
		name       string
		thresholds []config.EvictionThreshold
		want       Pressure
	}{
		{name: "no thresholds", want: Pressure{}},

		{name: "memory quantity above available", thresholds: []config.EvictionThreshold{threshold(config.SignalMemoryAvailable, "1001")}, want: Pressure{Memory: true}},
		{name: "memory quantity equal to available", thresholds: []config.EvictionThreshold{threshold(config.SignalMemoryAvailable, "1000")}, want: Pressure{}},
		{name: "memory quantity below available", thresholds: []config.EvictionThreshold{threshold(config.SignalMemoryAvailable, "999")}, want: Pressure{}},
		{name: "memory percentage above available", thresholds: []config.EvictionThreshold{percent(config.SignalMemoryAvailable, 0.11)}, want: Pressure{Memory: true}},
		{name: "memory percentage equal to available", thresholds: []config.EvictionThreshold{percent(config.SignalMemoryAvailable, 0.1)}, want: Pressure{}},
		{name: "memory percentage below available", thresholds: []config.EvictionThreshold{percent(config.SignalMemoryAvailable, 0.09)}, want: Pressure{}},

		{name: "nodefs quantity above available", thresholds: []config.EvictionThreshold{threshold(config.SignalNodeFsAvailable, "2001")}, want: Pressure{Disk: true}},
		{name: "nodefs quantity equal to available", thresholds: []config.EvictionThreshold{threshold(config.SignalNodeFsAvailable, "2000")}, want: Pressure{}},
		{name: "nodefs percentage above available", thresholds: []config.EvictionThreshold{percent(config.SignalNodeFsAvailable, 0.15)}, want: Pressure{Disk: true}},
		{name: "nodefs percentage equal to available", thresholds: []config.EvictionThreshold{percent(config.SignalNodeFsAvailable, 0.1)}, want: Pressure{}},
		{name: "imagefs is the node filesystem", thresholds: []config.EvictionThreshold{percent(config.SignalImageFsAvailable, 0.15)}, want: Pressure{Disk: true}},
		{name: "imagefs below threshold by quantity", thresholds: []config.EvictionThreshold{threshold(config.SignalImageFsAvailable, "2001")}, want: Pressure{Disk: true}},
		{name: "imagefs equal to threshold", thresholds: []config.EvictionThreshold{threshold(config.SignalImageFsAvailable, "2000")}, want: Pressure{}},

		{name: "nodefs inodes quantity above free", thresholds: []config.EvictionThreshold{threshold(config.SignalNodeFsInodesFree, "301")}, want: Pressure{Disk: true}},
		{name: "nodefs inodes quantity equal to free", thresholds: []config.EvictionThreshold{threshold(config.SignalNodeFsInodesFree, "300")}, want: Pressure{}},
		{name: "nodefs inodes percentage above free", thresholds: []config.EvictionThreshold{percent(config.SignalNodeFsInodesFree, 0.2)}, want: Pressure{Disk: true}},
		{name: "nodefs inodes percentage equal to free", thresholds: []config.EvictionThreshold{percent(config.SignalNodeFsInodesFree, 0.1)}, want: Pressure{}},
		{name: "imagefs inodes percentage above free", thresholds: []config.EvictionThreshold{percent(config.SignalImageFsInodesFree, 0.2)}, want: Pressure{Disk: true}},
		{name: "imagefs inodes percentage below free", thresholds: []config.EvictionThreshold{percent(config.SignalImageFsInodesFree, 0.05)}, want: Pressure{}},

		{name: "PID quantity above available", thresholds: []config.EvictionThreshold{threshold(config.SignalPIDAvailable, "401")}, want: Pressure{PID: true}},
		{name: "PID quantity equal to available", thresholds: []config.EvictionThreshold{threshold(config.SignalPIDAvailable, "400")}, want: Pressure{}},
		{name: "PID percentage above available", thresholds: []config.EvictionThreshold{percent(config.SignalPIDAvailable, 0.3)}, want: Pressure{PID: true}},
		{name: "PID percentage equal to available", thresholds: []config.EvictionThreshold{percent(config.SignalPIDAvailable, 0.1)}, want: Pressure{}},

		{name: "zero percentage never fires", thresholds: []config.EvictionThreshold{percent(config.SignalMemoryAvailable, 0)}, want: Pressure{}},
		{name: "unknown signal ignored", thresholds: []config.EvictionThreshold{threshold("gpu.available", "1Ei")}, want: Pressure{}},
		{
			name: "one of several thresholds for a resource is enough",
			thresholds: []config.EvictionThreshold{
				threshold(config.SignalNodeFsAvailable, "1"),
				percent(config.SignalNodeFsInodesFree, 0.5),
				threshold(config.SignalImageFsAvailable, "1"),
			},
			want: Pressure{Disk: true},
		},
		{
			name: "a later threshold does not clear an earlier one",
			thresholds: []config.EvictionThreshold{
				threshold(config.SignalMemoryAvailable, "1Gi"),
				threshold(config.SignalMemoryAvailable, "1"),
			},
			want: Pressure{Memory: true},
		},
		{
			name: "all three at once",
			thresholds: []config.EvictionThreshold{
				threshold(config.SignalMemoryAvailable, "1Mi"),
				percent(config.SignalNodeFsAvailable, 0.5),
				percent(config.SignalPIDAvailable, 0.5),
			},
			want: Pressure{Memory: true, Disk: true, PID: true},
		},
		{
			name: "the defaults on a healthy node",
			thresholds: []config.EvictionThreshold{
				threshold(config.SignalMemoryAvailable, "100"),
				percent(config.SignalNodeFsAvailable, 0.1),
				percent(config.SignalNodeFsInodesFree, 0.05),
				percent(config.SignalImageFsAvailable, 0.1),
			},
			want: Pressure{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := EvaluatePressure(u, tc.thresholds); got != tc.want {
				t.Errorf("EvaluatePressure() = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestEvaluatePressureNothingLeft(t *testing.T) {
	u := Usage{MemoryCapacityBytes: 10000, FsCapacityBytes: 10000, FsInodes: 1000, PIDsMax: 1000}
	got := EvaluatePressure(u, []config.EvictionThreshold{
		{Signal: config.SignalMemoryAvailable, Percentage: 0.01},
		{Signal: config.SignalNodeFsAvailable, Percentage: 0.01},
		{Signal: config.SignalPIDAvailable, Percentage: 0.01},
	})
	if want := (Pressure{Memory: true, Disk: true, PID: true}); got != want {
		t.Errorf("EvaluatePressure() = %+v, want %+v", got, want)
	}
}
