// Package pods runs the pods bound to this node: it owns the pod lifecycle
// once, for every provider, as the kubelet's pod workers and syncPod do.
//
// An informer on the pods with spec.nodeName=<node> feeds the Manager; each
// pod UID gets one worker goroutine that reconciles what runs with what the
// pod asks for whenever the pod changes, a container exits or a back-off
// expires. Nothing polls. A worker:
//
//  1. admits the pod once (package admission, with the say of the provider
//     the pod is routed to) or fails it with the kubelet's reason;
//  2. sets up its volumes, routes the pod to its provider (Router: the
//     RuntimeClass handler, or the node's default) and, for a provider
//     that makes one, starts the pod's sandbox, whose IPs become the pod's;
//     a pod that cannot be routed or get a sandbox stays Pending with
//     FailedCreatePodSandBox and is retried with back-off. Then it runs
//     init containers one after another
//     (sidecars, init containers with restartPolicy Always, start in order
//     and keep running), then the app containers: pull (with back-off:
//     ErrImagePull then ImagePullBackOff), resolve the container's config
//     (CreateContainerConfigError), start it through the provider with
//     stdout and stderr going to a CRI-format log file per run (or the
//     provider's runtime writing that file itself), and wait for it;
//  3. applies restartPolicy (Always, OnFailure, Never) with the kubelet's
//     crash-loop back-off: 10 s doubling to 5 min, reset after 10 min of
//     clean running;
//  4. computes the exact pod status (phase by the kubelet's rules,
//     conditions, container states with lastState and restartCount) and
//     hands it to the status manager;
//  5. on deletion, stops the containers within the grace period, writes the
//     final status and lets the status manager delete the pod object; a
//     force-deleted pod is stopped at once; activeDeadlineSeconds fails the
//     pod with DeadlineExceeded. The sandbox stops with the last container
//     and is removed with the pod.
//
// A worker's lifecycle is a podState (Active, Rejected, Finished,
// Terminating); one finish path ends a pod that stays in the API, one
// terminate path a deleted one. The files split the worker by concern:
// worker.go (loop and sync), worker_start.go (routing, sandbox, adoption,
// pulls, starts), worker_stop.go, worker_status.go, worker_volumes.go; deps
// is the narrow set of shared parts a worker uses.
//
// When the agent restarts, pods bound to the node are picked up again from
// their API status: terminal pods stay terminal, containers that were
// running count as ended by the restart (and restart per policy) unless
// their provider's runs outlive the agent (provider.Adopter) and still run,
// and the files of pods deleted meanwhile are removed.
package pods
