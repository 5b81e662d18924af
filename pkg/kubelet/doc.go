// Package kubelet assembles the node agent from its parts and runs them:
// credentials (pkg/bootstrap), the Node, its status and Lease (pkg/node),
// the providers listed by --provider (pkg/provider) with the router that
// picks one per pod (pkg/kubelet/runtimeclass), and the pod lifecycle
// (pkg/kubelet/pods).
//
// The set of providers decides what the Node says (runtimes.go): a node of
// Wasm providers only keeps krustlet's wasm32-wasi labels and taints, one
// that also runs the machine's containers registers as the machine it is;
// every RuntimeClass handler served gets a handler.krustlet.dev/<handler>
// label and an entry in status.runtimeHandlers; the providers' health
// drives the Ready condition and /healthz.
//
// Run is the whole agent: it returns when ctx ends (SIGTERM/SIGINT) after
// every part stopped, within a bounded time, leaving the Node and its pods
// in place unless --drain-on-shutdown asks otherwise. Transient API failures
// never end it: every loop retries with back-off. A part that fails for
// good (the node API cannot listen) stops the others and Run returns its
// error, so that the process exits non-zero and a supervisor restarts it.
package kubelet
