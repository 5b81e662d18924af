// Package runtimeclass picks the provider that runs a pod, as the kubelet's
// runtimeclass manager picks a CRI handler.
//
// A node runs one or more providers (--provider wasmtime,cri; the first is
// the default). Each serves one or more RuntimeClass handlers: its own name,
// plus the names --runtime-handlers maps to it. A pod names a RuntimeClass
// (spec.runtimeClassName); the class names a handler; the handler names the
// provider. A pod without a class goes to the default provider.
//
//	router, err := runtimeclass.NewRouter(runtimes, cfg.Handlers(), classLister.Get)
//	route, err := router.Route(pod)
//	// route.Runtime.Provider runs the pod; route.Handler is what it was picked by.
//
// An unknown class or a handler no provider serves is an error the pod
// worker reports as FailedCreatePodSandBox and retries with back-off: the
// class may be created, or the node restarted with the handler, later.
package runtimeclass
