package node

import (
	"context"
	"fmt"
	"net"
	"slices"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/krustlet/krustlet-go/pkg/config"
	"github.com/krustlet/krustlet-go/pkg/provider"
)

// Setter sets one part of a node's status. Setters are applied in order to
// a copy of the Node; an error leaves the rest of the status as it was.
type Setter func(ctx context.Context, node *v1.Node) error

// NodeAddress sets InternalIP addresses (one per IP family) and Hostname.
func NodeAddress(ips []net.IP, hostname string) Setter {
	return func(_ context.Context, node *v1.Node) error {
		addrs := make([]v1.NodeAddress, 0, len(ips)+1)
		for _, ip := range ips {
			addrs = append(addrs, v1.NodeAddress{Type: v1.NodeInternalIP, Address: ip.String()})
		}
		addrs = append(addrs, v1.NodeAddress{Type: v1.NodeHostName, Address: hostname})
		node.Status.Addresses = addrs
		return nil
	}
}

// MachineInfo sets capacity from the machine and --max-pods, and
// allocatable as the kubelet computes it: capacity minus system and kube
// reservations minus the hard eviction thresholds of memory and nodefs.
func MachineInfo(maxPods int32, capacity func() (Capacity, error), reserved v1.ResourceList, evictionHard []config.EvictionThreshold) Setter {
	return func(_ context.Context, node *v1.Node) error {
		c, err := capacity()
		if err != nil {
			return fmt.Errorf("reading machine capacity: %w", err)
		}
		node.Status.Capacity = v1.ResourceList{
			v1.ResourceCPU:              *resource.NewMilliQuantity(c.MilliCPU, resource.DecimalSI),
			v1.ResourceMemory:           *resource.NewQuantity(c.MemoryBytes, resource.BinarySI),
			v1.ResourceEphemeralStorage: *resource.NewQuantity(c.EphemeralStorageBytes, resource.BinarySI),
			v1.ResourcePods:             *resource.NewQuantity(int64(maxPods), resource.DecimalSI),
		}
		alloc := node.Status.Capacity.DeepCopy()
		for name, q := range reserved {
			if v, ok := alloc[name]; ok {
				v.Sub(q)
				alloc[name] = v
			}
		}
		for _, t := range evictionHard {
			var name v1.ResourceName
			switch t.Signal {
			case config.SignalMemoryAvailable:
				name = v1.ResourceMemory
			case config.SignalNodeFsAvailable:
				name = v1.ResourceEphemeralStorage
			default:
				continue
			}
			v := alloc[name]
			v.Sub(thresholdQuantity(t, node.Status.Capacity[name]))
			alloc[name] = v
		}
		for name, v := range alloc {
			if v.Sign() < 0 {
				alloc[name] = *resource.NewQuantity(0, v.Format)
			}
		}
		node.Status.Allocatable = alloc
		return nil
	}
}

// thresholdQuantity is a threshold as an amount of capacity.
func thresholdQuantity(t config.EvictionThreshold, capacity resource.Quantity) resource.Quantity {
	if t.Quantity != nil {
		return *t.Quantity
	}
	return *resource.NewQuantity(int64(float64(capacity.Value())*float64(t.Percentage)), resource.BinarySI)
}

// SystemInfo is what nodeInfo reports about this machine and build.
type SystemInfo struct {
	MachineID, SystemUUID, BootID string
	KernelVersion, OSImage        string
	KubeletVersion                string
}

// VersionInfo sets nodeInfo: this build's version, the provider's runtime
// and architecture, the machine's identity and kernel.
func VersionInfo(sys SystemInfo, p provider.NodeInfo) Setter {
	return func(_ context.Context, node *v1.Node) error {
		node.Status.NodeInfo = v1.NodeSystemInfo{
			MachineID:               sys.MachineID,
			SystemUUID:              sys.SystemUUID,
			BootID:                  sys.BootID,
			KernelVersion:           sys.KernelVersion,
			OSImage:                 sys.OSImage,
			ContainerRuntimeVersion: p.RuntimeName + "://" + p.RuntimeVersion,
			KubeletVersion:          sys.KubeletVersion,
			OperatingSystem:         "linux",
			Architecture:            p.Architecture,
		}
		return nil
	}
}

// RuntimeHandlers sets status.runtimeHandlers: the RuntimeClass handlers the
// node's providers serve.
func RuntimeHandlers(handlers []v1.NodeRuntimeHandler) Setter {
	return func(_ context.Context, node *v1.Node) error {
		node.Status.RuntimeHandlers = slices.Clone(handlers)
		return nil
	}
}

// DaemonEndpoints sets the port the API server reaches the node API on.
func DaemonEndpoints(port int32) Setter {
	return func(_ context.Context, node *v1.Node) error {
		node.Status.DaemonEndpoints.KubeletEndpoint.Port = port
		return nil
	}
}

// Images sets status.images from the provider's list (largest first), cut
// to max entries.
func Images(max int, list func(context.Context) ([]v1.ContainerImage, error)) Setter {
	return func(ctx context.Context, node *v1.Node) error {
		images, err := list(ctx)
		if err != nil {
			return fmt.Errorf("listing images: %w", err)
		}
		if len(images) > max {
			images = images[:max]
		}
		node.Status.Images = images
		return nil
	}
}

// ReadyCondition sets Ready from errs: True with KubeletReady when it
// returns none, False with KubeletNotReady and the errors otherwise.
func ReadyCondition(now func() metav1.Time, errs func() []error) Setter {
	return func(_ context.Context, node *v1.Node) error {
		status, reason, message := v1.ConditionTrue, "KubeletReady", "kubelet is posting ready status"
		if es := errs(); len(es) > 0 {
			status, reason, message = v1.ConditionFalse, "KubeletNotReady", joinErrors(es)
		}
		setCondition(node, v1.NodeReady, status, reason, message, now())
		return nil
	}
}

// PressureCondition sets one pressure condition from a reading: MemoryPressure,
// DiskPressure or PIDPressure, with the kubelet's reasons and messages.
func PressureCondition(t v1.NodeConditionType, now func() metav1.Time, under func() (bool, error)) Setter {
	texts := pressureTexts[t]
	return func(_ context.Context, node *v1.Node) error {
		pressure, err := under()
		if err != nil {
			return fmt.Errorf("reading %s: %w", t, err)
		}
		if pressure {
			setCondition(node, t, v1.ConditionTrue, texts[2], texts[3], now())
		} else {
			setCondition(node, t, v1.ConditionFalse, texts[0], texts[1], now())
		}
		return nil
	}
}

// pressureTexts are the kubelet's reason and message without and with
// pressure.
var pressureTexts = map[v1.NodeConditionType][4]string{
	v1.NodeMemoryPressure: {"KubeletHasSufficientMemory", "kubelet has sufficient memory available", "KubeletHasInsufficientMemory", "kubelet has insufficient memory available"},
	v1.NodeDiskPressure:   {"KubeletHasNoDiskPressure", "kubelet has no disk pressure", "KubeletHasDiskPressure", "kubelet has disk pressure"},
	v1.NodePIDPressure:    {"KubeletHasSufficientPID", "kubelet has sufficient PID available", "KubeletHasInsufficientPID", "kubelet has insufficient PID available"},
}

// setCondition updates or adds a condition. The heartbeat always moves; the
// transition time only when the status changes.
func setCondition(node *v1.Node, t v1.NodeConditionType, status v1.ConditionStatus, reason, message string, now metav1.Time) {
	for i := range node.Status.Conditions {
		c := &node.Status.Conditions[i]
		if c.Type != t {
			continue
		}
		if c.Status != status {
			c.LastTransitionTime = now
		}
		c.Status, c.Reason, c.Message, c.LastHeartbeatTime = status, reason, message, now
		return
	}
	node.Status.Conditions = append(node.Status.Conditions, v1.NodeCondition{
		Type: t, Status: status, Reason: reason, Message: message,
		LastHeartbeatTime: now, LastTransitionTime: now,
	})
}

func joinErrors(es []error) string {
	s := ""
	for i, e := range es {
		if i > 0 {
			s += ", "
		}
		s += e.Error()
	}
	return "[" + s + "]"
}
