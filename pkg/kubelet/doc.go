// Package kubelet assembles the node agent from its parts and runs them:
// credentials (pkg/bootstrap), the Node, its status and Lease (pkg/node),
// the provider chosen with --provider (pkg/provider), and the pod lifecycle.
//
// Run is the whole agent: it returns when ctx ends (SIGTERM/SIGINT) after
// every part stopped, within a bounded time, leaving the Node and its pods
// in place unless --drain-on-shutdown asks otherwise. Transient API failures
// never end it: every loop retries with back-off.
package kubelet
