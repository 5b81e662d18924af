package pods

import (
	"fmt"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/krustlet/krustlet-go/pkg/provider"
)

// containerState is what the worker knows of one container of its pod. It
// is owned by the worker goroutine.
type containerState struct {
	name    string
	init    bool
	sidecar bool

	// restartCount is the number of runs after the first.
	restartCount int32
	// runs is the number of runs started by anyone (this agent or a
	// previous one).
	runs int32
	// current is the run in progress, nil when none.
	current *run
	// last is how the most recent finished run ended; prev the one before.
	last, prev *v1.ContainerStateTerminated
	// waiting says why the container does not run now (when current is
	// nil and it is not finished for good).
	waiting *v1.ContainerStateWaiting
	// imageID and containerID of the latest run.
	imageID, containerID string
	image                string
	// pullFailedAt is when the last pull of the image failed.
	pullFailedAt time.Time
	// startFailedAt is when the provider last failed to start a run; zero
	// once a run started.
	startFailedAt time.Time
	// adoptable is the run a previous agent reported running; a provider
	// whose runs outlive the agent may still have it (see worker.adopt).
	adoptable *adoptInfo
}

// adoptInfo names a run that may have outlived the agent.
type adoptInfo struct {
	id        string
	startedAt time.Time
}

// runID names run number n of a container of a pod: the provider's
// ContainerConfig.ID and the key of the runs in progress.
func runID(podUID types.UID, container string, n int32) string {
	return fmt.Sprintf("%s_%s_%d", podUID, container, n)
}

// run is one run of a container.
type run struct {
	handle    provider.Container
	id        string
	startedAt time.Time
	logPath   string
	// done is closed once exit is set.
	done chan struct{}
	exit provider.ExitStatus
	// stopping is set when the worker asked the run to stop.
	stopping bool
}

func (r *run) finished() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// terminated converts an exit into the API's terminated state.
func terminated(e provider.ExitStatus, containerID string) *v1.ContainerStateTerminated {
	reason := e.Reason
	if reason == "" {
		reason = "Completed"
		if e.ExitCode != 0 {
			reason = "Error"
		}
	}
	return &v1.ContainerStateTerminated{
		ExitCode:    e.ExitCode,
		Reason:      reason,
		Message:     e.Message,
		StartedAt:   metav1.NewTime(e.StartedAt),
		FinishedAt:  metav1.NewTime(e.FinishedAt),
		ContainerID: containerID,
	}
}

// succeeded reports whether the container's last run ended with code 0 and
// nothing runs now.
func (c *containerState) succeeded() bool {
	return c.current == nil && c.last != nil && c.last.ExitCode == 0
}

// running reports whether a run is in progress.
func (c *containerState) running() bool {
	return c.current != nil && !c.current.finished()
}

// restoreFrom seeds the state from the API status a previous agent wrote: a
// container that was running then is gone now and counts as having ended
// with the agent.
func (c *containerState) restoreFrom(uid types.UID, s *v1.ContainerStatus, now time.Time) {
	c.restartCount = s.RestartCount
	c.imageID, c.containerID = s.ImageID, s.ContainerID
	if s.LastTerminationState.Terminated != nil {
		c.prev = s.LastTerminationState.Terminated.DeepCopy()
	}
	switch {
	case s.State.Terminated != nil:
		c.last = s.State.Terminated.DeepCopy()
		c.runs = s.RestartCount + 1
	case s.State.Running != nil:
		c.last = &v1.ContainerStateTerminated{
			ExitCode:    137,
			Reason:      "Error",
			Message:     "the node agent restarted while the container was running",
			StartedAt:   s.State.Running.StartedAt,
			FinishedAt:  metav1.NewTime(now),
			ContainerID: s.ContainerID,
		}
		c.runs = s.RestartCount + 1
		c.adoptable = &adoptInfo{id: runID(uid, c.name, s.RestartCount), startedAt: s.State.Running.StartedAt.Time}
	case s.State.Waiting != nil && s.LastTerminationState.Terminated != nil:
		c.last, c.prev = c.prev, nil
		c.runs = s.RestartCount + 1
	}
}

// record notes the end of the current run.
func (c *containerState) record() {
	r := c.current
	c.prev = c.last
	c.last = terminated(r.exit, c.containerID)
	c.current = nil
}
