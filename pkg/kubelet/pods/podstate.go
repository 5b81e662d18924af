package pods

import "fmt"

// podState is where a worker is with its pod. Only the worker goroutine
// changes it; others read it (admission counts the active pods).
type podState int32

const (
	// stateActive: admitted; the worker starts, restarts and stops the
	// pod's containers as its spec and restart policy say. The pod counts
	// against the node's capacity.
	stateActive podState = iota
	// stateRejected: refused at admission and not reported yet; the next
	// sync records the reason and moves on to stateFinished.
	stateRejected
	// stateFinished: the pod reached a terminal phase (its containers are
	// done, its deadline passed, it was evicted or rejected). Nothing runs
	// again; the worker only reports it until the pod is deleted.
	stateFinished
	// stateTerminating: the pod is being deleted. Its containers are
	// stopped within the grace period, then the API object is deleted once
	// its final status is written; the worker ends when the pod is gone.
	stateTerminating
)

func (s podState) String() string {
	switch s {
	case stateActive:
		return "Active"
	case stateRejected:
		return "Rejected"
	case stateFinished:
		return "Finished"
	case stateTerminating:
		return "Terminating"
	}
	return fmt.Sprintf("podState(%d)", int32(s))
}

// ending is why a pod finished, when the worker decided it (empty when the
// pod simply ran to completion): the pod status' reason and message.
type ending struct {
	reason, message string
}

// failsPod reports whether the ending makes the pod Failed whatever its
// containers did, as the kubelet's DeadlineExceeded and Evicted do.
func (e ending) failsPod() bool {
	return e.reason == reasonDeadlineExceeded || e.reason == reasonEvicted
}

// Pod status reasons the worker sets.
const (
	reasonDeadlineExceeded = "DeadlineExceeded"
	reasonEvicted          = "Evicted"
)
