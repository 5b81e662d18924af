// Package pods runs the pods bound to this node: it owns the pod lifecycle
// once, for every provider, as the kubelet's pod workers and syncPod do.
//
// An informer on the pods with spec.nodeName=<node> feeds the Manager; each
// pod UID gets one worker goroutine that reconciles what runs with what the
// pod asks for whenever the pod changes, a container exits or a back-off
// expires. Nothing polls. A worker:
//
//  1. admits the pod once (package admission) or fails it with the
//     kubelet's reason;
//  2. sets up its volumes, then runs init containers one after another
//     (sidecars, init containers with restartPolicy Always, start in order
//     and keep running), then the app containers: pull (with back-off:
//     ErrImagePull then ImagePullBackOff), resolve the container's config
//     (CreateContainerConfigError), start it through the provider with
//     stdout and stderr going to a CRI-format log file per run, and wait
//     for it;
//  3. applies restartPolicy (Always, OnFailure, Never) with the kubelet's
//     crash-loop back-off: 10 s doubling to 5 min, reset after 10 min of
//     clean running;
//  4. computes the exact pod status (phase by the kubelet's rules,
//     conditions, container states with lastState and restartCount) and
//     hands it to the status manager;
//  5. on deletion, stops the containers within the grace period, writes the
//     final status and lets the status manager delete the pod object; a
//     force-deleted pod is stopped at once; activeDeadlineSeconds fails the
//     pod with DeadlineExceeded.
//
// When the agent restarts, pods bound to the node are picked up again from
// their API status: terminal pods stay terminal, containers that were
// running count as ended by the restart (and restart per policy), and the
// files of pods deleted meanwhile are removed.
package pods
