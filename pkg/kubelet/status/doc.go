// Package status writes pod statuses to the API server for the pod
// workers, as the kubelet's status manager does: each pod's latest status is
// kept here, written as a strategic-merge patch of the status subresource
// only when it differs from what was written, coalesced per pod (a burst of
// changes is one patch), retried with back-off, with the pod UID as a
// precondition, and never moving a terminal phase (Succeeded, Failed) back.
// Once a terminating pod's final status is written, the manager deletes the
// pod object with grace period 0 and a UID precondition, which completes a
// graceful deletion.
package status
