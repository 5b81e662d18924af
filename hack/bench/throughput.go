package main

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// ThroughputRun is N run-to-completion pods created at once on one node.
type ThroughputRun struct {
	Node string `json:"node"`
	N    int    `json:"n"`
	// WallSeconds is from the first creation to the last Succeeded seen on
	// the watch; PodsPerSecond is N over it.
	WallSeconds   float64 `json:"wallSeconds"`
	PodsPerSecond float64 `json:"podsPerSecond"`
	// NodeSideSeconds is from the earliest container startedAt to the
	// latest finishedAt the node recorded (whole seconds, so ±1 s);
	// NodeSidePodsPerSecond is N over it.
	NodeSideSeconds       float64 `json:"nodeSideSeconds"`
	NodeSidePodsPerSecond float64 `json:"nodeSidePodsPerSecond"`
	// Completion is creation → Succeeded per pod.
	Completion Summary `json:"completion"`
	// Writes and WritesPerPod are what the node agent wrote (see
	// BurstRun).
	Writes       APIWrites `json:"writes"`
	WritesPerPod float64   `json:"writesPerPod"`
	// Curve is when each pod was seen Succeeded, in seconds since the
	// first creation, sorted: the completions-over-time plot.
	Curve []float64 `json:"curve"`
}

// ThroughputResult compares krustlet and kwok.
type ThroughputResult struct {
	N        int           `json:"n"`
	Krustlet ThroughputRun `json:"krustlet"`
	Kwok     ThroughputRun `json:"kwok"`
}

func runThroughput(ctx context.Context, e *Env, res *Results) error {
	tr := &ThroughputResult{N: e.cfg.Completions}
	for _, target := range []struct {
		node string
		into *ThroughputRun
	}{{mainNodeName, &tr.Krustlet}, {kwokNodeName, &tr.Kwok}} {
		run, err := e.completions(ctx, target.node, e.cfg.Completions)
		if err != nil {
			return fmt.Errorf("%d completions on %s: %w", e.cfg.Completions, target.node, err)
		}
		*target.into = run
		logf("%d completions on %-10s: %.1f pods/s end to end (%.1fs), node side %.1f pods/s (%.0fs)",
			run.N, target.node, run.PodsPerSecond, run.WallSeconds, run.NodeSidePodsPerSecond, run.NodeSideSeconds)
	}
	res.Throughput = tr
	return nil
}

// completions creates n pods of testmod that exit at once on node, waits
// for all to succeed, measures, and deletes them.
func (e *Env) completions(ctx context.Context, node string, n int) (ThroughputRun, error) {
	set := "tput-" + shortKind(node)
	pods := podSet(set, n, node, e.image(e.testmod), true, "exit", "0")
	from := time.Now()
	if err := e.createPods(ctx, pods); err != nil {
		return ThroughputRun{}, err
	}
	if err := e.pods.waitAll(ctx, names(pods), 3*time.Minute+time.Duration(n)*300*time.Millisecond, isSucceeded); err != nil {
		return ThroughputRun{}, err
	}
	writes, err := e.writesUntilQuiet(ctx, node, from)
	if err != nil {
		return ThroughputRun{}, err
	}
	rs, _ := e.pods.snapshot(names(pods))
	first, last := rs[0].Added, rs[0].Completed
	firstStart, lastFinish := rs[0].StartedAt, rs[0].FinishedAt
	var done []time.Duration
	for _, r := range rs {
		if r.Added.Before(first) {
			first = r.Added
		}
		last = latest(last, r.Completed)
		if !r.StartedAt.IsZero() && (firstStart.IsZero() || r.StartedAt.Before(firstStart)) {
			firstStart = r.StartedAt
		}
		lastFinish = latest(lastFinish, r.FinishedAt)
		done = append(done, r.Completed.Sub(r.Added))
	}
	run := ThroughputRun{Node: node, N: n, WallSeconds: last.Sub(first).Seconds(), Completion: summarize(done), Writes: writes, WritesPerPod: float64(writes.Writes) / float64(n)}
	run.PodsPerSecond = ratio(float64(n), run.WallSeconds)
	if !firstStart.IsZero() && !lastFinish.IsZero() {
		// Whole seconds on both ends: a span under a second counts as one.
		run.NodeSideSeconds = max(lastFinish.Sub(firstStart).Seconds(), 1)
		run.NodeSidePodsPerSecond = float64(n) / run.NodeSideSeconds
	}
	// The curve of completions over time, from the first creation.
	run.Curve = curve(rs, first)
	return run, e.deleteSet(ctx, set, krustletNodes(node)...)
}

// curve returns the completion times of rs in seconds since t0, sorted.
func curve(rs []*podRecord, t0 time.Time) []float64 {
	out := make([]float64, 0, len(rs))
	for _, r := range rs {
		out = append(out, r.Completed.Sub(t0).Seconds())
	}
	slices.Sort(out)
	return out
}

func latest(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
