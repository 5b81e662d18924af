package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
)

const densityNodeName = "bench-density"

// DensityStep is the state of the density node once a step's pods all
// run.
type DensityStep struct {
	Pods int `json:"pods"`
	// StepSeconds is how long the step's pods took, from the first
	// creation to the last Running.
	StepSeconds float64 `json:"stepSeconds"`
	RSSMiB      float64 `json:"rssMiB"`
	Threads     int     `json:"threads"`
	// OpenFiles is how many file descriptors the agent has open.
	OpenFiles int `json:"openFiles"`
	// LeaseMaxIntervalSeconds is the longest time between two lease
	// renewals during the step (10 s when on time).
	LeaseMaxIntervalSeconds float64 `json:"leaseMaxIntervalSeconds"`
	// ExtraPodReadySeconds is creation → Ready of one more pod started
	// once the node is quiet again.
	ExtraPodReadySeconds float64 `json:"extraPodReadySeconds"`
	MemAvailableMiB      float64 `json:"memAvailableMiB"`
}

// DensityResult is the whole density run.
type DensityResult struct {
	Node    string        `json:"node"`
	MaxPods int           `json:"maxPods"`
	Steps   []DensityStep `json:"steps"`
	// StopReason says why no further step ran.
	StopReason string `json:"stopReason"`
	// MiBPerPod and ThreadsPerPod are least-squares slopes over the steps.
	MiBPerPod       float64 `json:"mibPerPod"`
	ThreadsPerPod   float64 `json:"threadsPerPod"`
	OpenFilesPerPod float64 `json:"openFilesPerPod"`
	// OpenFilesLimit is the agent's RLIMIT_NOFILE (soft): with
	// OpenFilesPerPod it bounds the pods a node can run.
	OpenFilesLimit int `json:"openFilesLimit"`
}

// errRefused is a pod the node or the scheduler would not take: the end of
// the density run, not a failure.
var errRefused = errors.New("refused")

func runDensity(ctx context.Context, e *Env, res *Results) error {
	// The main node has nothing more to do; its idle traffic would only
	// add noise here.
	if e.mainNode != nil && e.mainNode.Proc.Alive() {
		if err := e.stopNode(ctx, e.mainNode); err != nil {
			return err
		}
	}
	cfg := e.cfg
	steps := (cfg.DensityBudget + cfg.DensityStep - 1) / cfg.DensityStep
	// Room for the budget and the extra pod of every step.
	maxPods := cfg.DensityBudget + steps + 1
	d := &DensityResult{Node: densityNodeName, MaxPods: maxPods}
	res.Density = d
	joined := time.Now()
	node, err := e.joinNode(densityNodeName, "--max-pods="+strconv.Itoa(maxPods))
	if err != nil {
		return err
	}
	defer func() {
		if err := e.stopNode(context.Background(), node); err != nil {
			logf("stopping %s: %v", densityNodeName, err)
		}
	}()
	if err := e.nodes.waitSchedulable(ctx, 3*time.Minute, e.agentsAlive(node), densityNodeName); err != nil {
		return err
	}
	image := e.image(e.testmod)
	// A new node compiles the module for its first pod: do that first, so
	// that every measured pod starts a cached module.
	warm := benchPod("dens-warmup", densityNodeName, image, "density-warmup", false, "sleep", "1h")
	if err := e.createPods(ctx, podList(warm)); err != nil {
		return err
	}
	if err := e.pods.waitAll(ctx, []string{warm.Name}, 2*time.Minute, isReady); err != nil {
		return err
	}
	if err := e.deleteSet(ctx, "density-warmup", densityNodeName); err != nil {
		return err
	}
	pods, extra := 0, 0
	measure := func(stepStart time.Time, stepSeconds float64) error {
		if err := e.audit.quiesce(ctx, nodeUser(densityNodeName), 2*time.Second, 2*time.Minute); err != nil {
			return err
		}
		name := fmt.Sprintf("dens-extra-%02d", extra)
		extra++
		if err := e.createPods(ctx, podList(benchPod(name, densityNodeName, image, "density", false, "sleep", "1h"))); err != nil {
			return err
		}
		if err := e.pods.waitAll(ctx, []string{name}, 2*time.Minute, isReady); err != nil {
			return err
		}
		pods++
		r := e.pods.get(name)
		rss, threads, err := procStatus(node.Proc.PID)
		if err != nil {
			return err
		}
		fds, limit, err := openFiles(node.Proc.PID)
		if err != nil {
			return err
		}
		d.OpenFilesLimit = limit
		ls := e.leases.stats(densityNodeName, stepStart, time.Now())
		st := DensityStep{
			Pods: pods, StepSeconds: stepSeconds, RSSMiB: float64(rss) / (1 << 20), Threads: threads, OpenFiles: fds,
			LeaseMaxIntervalSeconds: ls.MaxInterval.Seconds(),
			ExtraPodReadySeconds:    r.Ready.Sub(r.Added).Seconds(),
			MemAvailableMiB:         float64(meminfo("MemAvailable")) / (1 << 20),
		}
		d.Steps = append(d.Steps, st)
		logf("density %5d pods: RSS %7.1f MiB, %5d threads, %5d open files, lease max interval %5.1fs, extra pod ready in %.2fs, step took %.1fs",
			st.Pods, st.RSSMiB, st.Threads, st.OpenFiles, st.LeaseMaxIntervalSeconds, st.ExtraPodReadySeconds, st.StepSeconds)
		return nil
	}
	// Step 0: the idle node and its first pod; its lease window starts
	// when the node joined.
	if err := measure(joined, 0); err != nil {
		return err
	}
	for {
		if pods >= cfg.DensityBudget {
			d.StopReason = fmt.Sprintf("budget of %d pods reached", cfg.DensityBudget)
			break
		}
		last := d.Steps[len(d.Steps)-1]
		if last.RSSMiB >= float64(cfg.DensityMemBudgetMiB) {
			d.StopReason = fmt.Sprintf("agent RSS %.0f MiB reached the memory budget of %d MiB", last.RSSMiB, cfg.DensityMemBudgetMiB)
			break
		}
		if last.MemAvailableMiB < 2048 {
			d.StopReason = fmt.Sprintf("the machine has only %.0f MiB available", last.MemAvailableMiB)
			break
		}
		n := min(cfg.DensityStep, cfg.DensityBudget-pods)
		batch := make([]*v1.Pod, n)
		for i := range batch {
			batch[i] = benchPod(fmt.Sprintf("dens-%04d", pods+i), densityNodeName, image, "density", false, "sleep", "1h")
		}
		start := time.Now()
		if err := e.createPods(ctx, batch); err != nil {
			return err
		}
		timeout := 2*time.Minute + time.Duration(n)*300*time.Millisecond
		err := e.pods.waitAll(ctx, names(batch), timeout, runningOrRefused)
		if errors.Is(err, errRefused) {
			d.StopReason = "the node refused pods: " + err.Error()
			break
		}
		if err != nil && len(d.Steps) > 1 && ctx.Err() == nil {
			d.StopReason = "a step did not finish: " + err.Error()
			break
		}
		if err != nil {
			return err
		}
		rs, _ := e.pods.snapshot(names(batch))
		lastRunning := start
		for _, r := range rs {
			lastRunning = latest(lastRunning, r.Running)
		}
		pods += n
		if err := measure(start, lastRunning.Sub(start).Seconds()); err != nil {
			return err
		}
	}
	logf("density stopped: %s", d.StopReason)
	var xs, rss, threads, fds []float64
	for _, s := range d.Steps {
		xs = append(xs, float64(s.Pods))
		rss = append(rss, s.RSSMiB)
		threads = append(threads, float64(s.Threads))
		fds = append(fds, float64(s.OpenFiles))
	}
	d.MiBPerPod, d.ThreadsPerPod, d.OpenFilesPerPod = slope(xs, rss), slope(xs, threads), slope(xs, fds)
	return e.deleteSet(ctx, "density")
}

// runningOrRefused waits for Running; a pod the node failed at admission
// or the scheduler found no room for ends the run.
func runningOrRefused(r *podRecord) (bool, error) {
	if !r.Running.IsZero() {
		return true, nil
	}
	if r.Phase == v1.PodFailed {
		return false, fmt.Errorf("%w: pod %s failed: %s %s", errRefused, r.Name, r.Reason, r.Message)
	}
	if r.Unschedulable && r.Node == "" && strings.Contains(r.Message, "Too many pods") {
		return false, fmt.Errorf("%w: pod %s unschedulable: %s", errRefused, r.Name, r.Message)
	}
	return false, nil
}
