// Package provider defines the boundary between the kubelet core and the
// runtimes that run containers, and the name → factory registry behind
// --provider.
//
// The core (pkg/kubelet) owns the pod lifecycle once: admission, pulls in
// order, volumes, environment, init containers, restart policy and back-off,
// status, events and log files. A Provider only pulls images and runs one
// container at a time from a fully prepared ContainerConfig, the split the
// real kubelet makes with CRI.
//
// Everything else a runtime may or may not do is an optional capability, a
// small interface the core finds by type assertion (capabilities.go and
// images.go):
//
//	PodAdmitter            refuse pods the runtime cannot run
//	PodSandboxer           a sandbox per pod (network namespace, pod IPs)
//	RuntimeLogs            the runtime writes the CRI-format logs itself
//	Adopter                runs outlive the agent and are re-attached
//	HealthChecker          whether the runtime can run pods (node Ready)
//	StatsProvider          CPU and memory of a run
//	Streamer               exec, attach, port-forward (501 without it)
//	ImageLister            the Node's status.images
//	ImageGarbageCollector  remove unused images as the disk fills
//
// The core resolves a pod's registry credentials once, for every provider,
// through a CredentialSource (pkg/credentials implements it).
//
// Each implementation pins what it implements:
//
//	var (
//		_ provider.Provider      = (*Provider)(nil)
//		_ provider.HealthChecker = (*Provider)(nil)
//	)
//
// A node runs several providers at once; the core picks one per pod through
// its RuntimeClass handler (pkg/kubelet/runtimeclass).
//
// Implementations know nothing of the factory registry; the command wires
// them in:
//
//	provider.Register("wasmtime", func(o provider.Options) (provider.Provider, error) {
//		return wasmtime.New(...)
//	})
//
// and the node agent calls provider.New(name, opts) for each provider it
// runs, which fails with the list of registered names when a name is
// unknown.
package provider
