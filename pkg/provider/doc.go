// Package provider defines the boundary between the kubelet core and the
// runtimes that run containers, and the name → factory registry behind
// --provider.
//
// The core (pkg/kubelet) owns the pod lifecycle once: admission, pulls in
// order, volumes, environment, init containers, restart policy and back-off,
// status, events and log files. A Provider only pulls images and runs one
// container at a time from a fully prepared ContainerConfig, the split the
// real kubelet makes with CRI. Optional capabilities (admission checks,
// statistics, exec) are separate small interfaces that the core finds by
// type assertion; the kubelet API answers 501 when one is absent.
//
// Implementations know nothing of the registry; the command wires them in:
//
//	provider.Register("wasmtime", func(o provider.Options) (provider.Provider, error) {
//		return wasmtime.New(...)
//	})
//
// and the node agent calls provider.New(cfg.Provider, opts), which fails with
// the list of registered names when the name is unknown.
package provider
