package provider

import (
	"context"
	"errors"
	"io"
	"time"

	v1 "k8s.io/api/core/v1"
)

// Provider runs containers for the core. Every method must be safe for
// concurrent use: the core calls it from one worker per pod, so calls for
// different containers overlap freely.
type Provider interface {
	// Node describes what the provider adds to the Node object. It is
	// called once at registration and must not block.
	Node() NodeInfo

	// ImagePuller makes the images of the provider's containers available.
	ImagePuller

	// StartContainer starts one run of a container and returns at once
	// with a handle once it runs. An error means it never started; it wraps
	// ErrCreateContainer (the core reports CreateContainerError) or
	// ErrStartContainer (RunContainerError).
	StartContainer(ctx context.Context, cfg ContainerConfig) (Container, error)
}

// Container is one run of one container. Its methods are safe for
// concurrent use; Wait may be called any number of times.
type Container interface {
	// Wait blocks until the run ends (or ctx ends) and returns how it ended.
	Wait(ctx context.Context) (ExitStatus, error)

	// Stop ends the run within grace: a runtime that can ask the workload
	// to stop does so and forces it once grace has passed; one that cannot
	// may force it at any time within grace. Stop returns when the run has
	// ended or ctx ends; stopping a run that has ended is a no-op.
	Stop(ctx context.Context, grace time.Duration) error
}

// RuntimeIDer is implemented by container handles whose runtime names the
// run with an ID of its own (a CRI container ID). It becomes the container
// status' containerID (RUNTIME://ID), so that the runtime's tools find the
// container; without it the core uses ContainerConfig.ID.
type RuntimeIDer interface {
	RuntimeID() string
}

// NodeInfo is what a provider adds to the Node.
type NodeInfo struct {
	// Labels and Taints are added at registration.
	Labels map[string]string
	Taints []v1.Taint
	// RuntimeName and RuntimeVersion make nodeInfo.containerRuntimeVersion
	// (NAME://VERSION), e.g. wasmtime://39.0.1.
	RuntimeName, RuntimeVersion string
	// Architecture is nodeInfo.architecture, e.g. wasm-wasi.
	Architecture string
	// Containers is set by providers that run the machine's own
	// (Linux) containers rather than Wasm modules. A node with such a
	// provider registers with the machine's kubernetes.io/arch and os and
	// without the Wasm taints.
	Containers bool
}

// ContainerConfig is everything a run of a container needs, prepared by the
// core: the provider resolves nothing on its own.
type ContainerConfig struct {
	// ID is unique per run: pod UID, container name and run number. It
	// names the run in Adopter.ListContainers and ContainerStats.
	ID string
	// Pod is the pod sandbox the container runs in, for providers that
	// implement PodSandboxer; nil for the others.
	Pod *PodSandbox
	// PodUID, Namespace, PodName and Name identify the container.
	PodUID, Namespace, PodName, Name string
	// Image is the result of PullImage for this container's image.
	Image Image
	// Args is the full argv, argv[0] included: the command and args with
	// $(VAR) expanded, or the container's name as argv[0] when the pod
	// gives no command (a Wasm module has no image entrypoint).
	Args []string
	// Command and CommandArgs are the pod's command and args, expanded,
	// kept apart for runtimes whose images have an entrypoint (CRI): an
	// empty Command keeps the image's ENTRYPOINT, empty CommandArgs its CMD.
	Command, CommandArgs []string
	// Env is the resolved environment, in order.
	Env []EnvVar
	// WorkingDir is the guest's working directory, if set.
	WorkingDir string
	// Mounts are host directories (or files) to expose to the guest.
	Mounts []Mount
	// Resources are the container's limits; zero means none.
	Resources Resources
	// LogPath is where the run's log belongs, in the layout of
	// pkg/kubelet/logs (<root>/<ns>_<pod>_<uid>/<container>/<run>.log). A
	// provider that implements RuntimeLogs has its runtime write the
	// CRI-format log there; for the others the core writes it from Stdout
	// and Stderr.
	LogPath string
	// Stdout and Stderr receive the container's output; nil for providers
	// that implement RuntimeLogs. The core's log writers are safe for
	// concurrent use; the provider must not close them.
	Stdout, Stderr io.Writer
	// Stdin is the container's standard input, nil for none.
	Stdin io.Reader
}

// EnvVar is one resolved environment variable.
type EnvVar struct{ Name, Value string }

// Mount exposes HostPath at ContainerPath.
type Mount struct {
	HostPath, ContainerPath string
	ReadOnly                bool
}

// Resources are a container's limits.
type Resources struct {
	// MemoryLimitBytes caps the memory the container may use; exceeding it
	// ends the run as OOMKilled.
	MemoryLimitBytes int64
	// CPULimitMillis is the CPU limit in millicores.
	CPULimitMillis int64
	// CPURequestMillis is the CPU request in millicores (CPU shares for
	// runtimes that weigh containers).
	CPURequestMillis int64
}

// ExitStatus is how one run ended.
type ExitStatus struct {
	ExitCode int32
	// Reason is the kubelet's: Completed (code 0), Error, OOMKilled,
	// ContainerCannotRun, DeadlineExceeded…; empty lets the core derive
	// Completed or Error from the code.
	Reason string
	// Message explains a failure in words (a trap, a missing import).
	Message    string
	StartedAt  time.Time
	FinishedAt time.Time
}

// Errors that a provider wraps so that the core reports the kubelet's
// reasons.
var (
	ErrImagePull       = errors.New("image pull failed")                        // ErrImagePull
	ErrImageNeverPull  = errors.New("image not present with pull policy Never") // ErrImageNeverPull
	ErrImageInspect    = errors.New("image cannot be run by this provider")     // ErrImageInspect / InvalidImageName
	ErrCreateContainer = errors.New("container could not be created")           // CreateContainerError
	ErrStartContainer  = errors.New("container could not be started")           // RunContainerError
)

// ErrCreatePodSandbox is wrapped by PodSandboxer.StartPod errors; the core
// reports them as FailedCreatePodSandBox, as the kubelet does.
var ErrCreatePodSandbox = errors.New("pod sandbox could not be created")
