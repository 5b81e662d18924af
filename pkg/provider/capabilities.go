package provider

import (
	"context"
	"net"
	"net/url"
	"time"

	v1 "k8s.io/api/core/v1"
)

// This file holds the optional capabilities: small interfaces a provider
// implements when its runtime can do what they describe. The core finds them
// by type assertion, so a provider states each with a `var _` pin.

// PodAdmitter is implemented by providers that cannot run every pod. The core
// asks before it admits a pod; a non-empty reason rejects the pod (the core
// uses reason as the pod's status reason, e.g. "UnsupportedPodSpec", and
// message as its message).
type PodAdmitter interface {
	Admit(pod *v1.Pod) (reason, message string)
}

// PodSandboxer is implemented by providers that need a pod-level sandbox
// (a CRI runtime: network namespace, pause container, pod IP). The core
// calls StartPod before any container of the pod, StopPod once the last
// container stopped, and RemovePod when the pod is gone. Its methods must
// be safe for concurrent use and idempotent: the core calls StartPod again
// after an agent restart or when a sandbox died.
type PodSandboxer interface {
	// StartPod creates the pod's sandbox, or returns the one that runs.
	// Errors wrap ErrCreatePodSandbox.
	StartPod(ctx context.Context, cfg PodConfig) (*PodSandbox, error)
	// StopPod stops the sandbox's processes and frees its network; the
	// sandbox can still be listed and removed.
	StopPod(ctx context.Context, uid string) error
	// RemovePod removes everything the sandbox holds.
	RemovePod(ctx context.Context, uid string) error
	// ListPods lists the UIDs of the pods that have a sandbox, ready or
	// not. After a restart the core removes those of pods that no longer
	// exist.
	ListPods(ctx context.Context) ([]string, error)
}

// PodConfig is what a pod sandbox is created from.
type PodConfig struct {
	// Pod is the pod as the API has it; a provider reads from it what its
	// runtime needs (hostname, DNS, ports, host namespaces, security).
	Pod *v1.Pod
	// Handler is the RuntimeClass handler the pod was routed by (empty for
	// the node's default).
	Handler string
	// LogDirectory is the pod's log directory in the layout of
	// pkg/kubelet/logs; the runs' LogPath are beneath it.
	LogDirectory string
}

// PodSandbox is a running pod sandbox.
type PodSandbox struct {
	// ID is the runtime's identity of the sandbox.
	ID string
	// IPs are the pod's addresses, the first of each family first; they
	// become status.podIPs. Empty: the pod shares the node's network.
	IPs []net.IP
}

// RuntimeLogs is implemented by providers whose runtime writes each run's
// CRI-format log itself at ContainerConfig.LogPath (containerd does). The
// core then hands the run no Stdout and Stderr and reads the file as it
// reads the ones it writes.
type RuntimeLogs interface {
	WritesContainerLogs()
}

// Adopter is implemented by providers whose containers outlive the agent (a
// CRI runtime). After a restart the core lists the runs still going and
// re-attaches to them instead of counting them as ended. In-process
// providers, whose runs end with the agent, do not implement it.
type Adopter interface {
	// ListContainers lists the runs in progress by ContainerConfig.ID.
	ListContainers(ctx context.Context) ([]RunningContainer, error)
	// Adopt returns a handle on a listed run.
	Adopt(ctx context.Context, id string) (Container, error)
}

// RunningContainer is one run a provider still has.
type RunningContainer struct {
	// ID is the ContainerConfig.ID the run was started with.
	ID        string
	StartedAt time.Time
	// ImageID is the Image.ID the run was started from.
	ImageID string
}

// HealthChecker is implemented by providers that can tell whether they can
// run pods now: a CRI runtime's own status, an engine and its cache dir. A
// non-nil error turns the Node's Ready condition False (reason
// KubeletNotReady, the error as message) and fails /healthz. It must be
// cheap and safe for concurrent use; the core calls it at every node status
// update.
type HealthChecker interface {
	Healthy(ctx context.Context) error
}

// StatsProvider is implemented by providers that can measure a running
// container. It must be safe for concurrent use.
type StatsProvider interface {
	// ContainerStats reads the run with the ContainerConfig.ID id.
	ContainerStats(ctx context.Context, id string) (ContainerStats, error)
}

// ContainerStats are one reading of a container's usage.
type ContainerStats struct {
	Timestamp time.Time
	// CPUNanos is the CPU time used since the run started.
	CPUNanos uint64
	// MemoryBytes is the working set.
	MemoryBytes uint64
}

// Streamer is implemented by providers that serve exec, attach and
// port-forward. As with the CRI, each method prepares one session and
// returns the URL of a streaming endpoint (SPDY or WebSocket, as the
// kubelet's streaming server speaks it) that the node API proxies the
// client's upgraded connection to. The provider serves that endpoint,
// typically on loopback. A provider without the capability makes the node
// API answer 501 naming the provider.
type Streamer interface {
	Exec(ctx context.Context, req ExecRequest) (*url.URL, error)
	Attach(ctx context.Context, req AttachRequest) (*url.URL, error)
	PortForward(ctx context.Context, req PortForwardRequest) (*url.URL, error)
}

// ExecRequest asks to run Cmd in a running container.
type ExecRequest struct {
	// ContainerID is the run's ContainerConfig.ID.
	ContainerID                string
	Cmd                        []string
	TTY, Stdin, Stdout, Stderr bool
}

// AttachRequest asks to attach to a running container's streams.
type AttachRequest struct {
	ContainerID                string
	TTY, Stdin, Stdout, Stderr bool
}

// PortForwardRequest asks to forward ports into a pod.
type PortForwardRequest struct {
	// PodUID names the pod; its sandbox is the provider's.
	PodUID string
	Ports  []int32
}
