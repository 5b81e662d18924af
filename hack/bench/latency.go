package main

import (
	"context"
	"fmt"
	"time"
)

// BurstRun is one burst of pods on one node, each pod measured from the
// time the watch first showed it (its creation) to the times it showed it
// scheduled, Running and Ready.
type BurstRun struct {
	Node      string  `json:"node"`
	N         int     `json:"n"`
	Scheduled Summary `json:"scheduled"`
	Running   Summary `json:"running"`
	Ready     Summary `json:"ready"`
	// NodeSide is scheduled → Ready: the node's share.
	NodeSide Summary `json:"nodeSide"`
	// WallSeconds is from the first creation to the last Ready.
	WallSeconds float64 `json:"wallSeconds"`
	// Writes are what the node agent wrote to the API (statuses, events;
	// lease renewals left out) from the creation of the burst until it went
	// quiet; WritesPerPod is their number over N.
	Writes       APIWrites `json:"writes"`
	WritesPerPod float64   `json:"writesPerPod"`
}

// BurstPair is a burst of N pods on the krustlet node and the same burst
// on the kwok node, one after the other.
type BurstPair struct {
	N        int      `json:"n"`
	Krustlet BurstRun `json:"krustlet"`
	Kwok     BurstRun `json:"kwok"`
	// ReadyRatioP50 and ReadyRatioP99 are krustlet's over kwok's.
	ReadyRatioP50 float64 `json:"readyRatioP50"`
	ReadyRatioP99 float64 `json:"readyRatioP99"`
}

func runLatency(ctx context.Context, e *Env, res *Results) error {
	for _, n := range e.cfg.Bursts {
		var pair BurstPair
		pair.N = n
		for _, target := range []struct {
			node string
			into *BurstRun
		}{{mainNodeName, &pair.Krustlet}, {kwokNodeName, &pair.Kwok}} {
			run, err := e.burst(ctx, target.node, n)
			if err != nil {
				return fmt.Errorf("burst of %d on %s: %w", n, target.node, err)
			}
			*target.into = run
			logf("burst %4d on %-10s: ready p50 %6.2fs p99 %6.2fs max %6.2fs (scheduled p99 %.2fs), wall %.1fs",
				n, target.node, run.Ready.P50, run.Ready.P99, run.Ready.Max, run.Scheduled.P99, run.WallSeconds)
		}
		pair.ReadyRatioP50 = ratio(pair.Krustlet.Ready.P50, pair.Kwok.Ready.P50)
		pair.ReadyRatioP99 = ratio(pair.Krustlet.Ready.P99, pair.Kwok.Ready.P99)
		res.Latency = append(res.Latency, pair)
	}
	return nil
}

// burst creates n sleeping pods of the cached testmod on node at once,
// waits for all to be Ready, measures, and deletes them.
func (e *Env) burst(ctx context.Context, node string, n int) (BurstRun, error) {
	set := fmt.Sprintf("lat-%s-%d", shortKind(node), n)
	pods := podSet(set, n, node, e.image(e.testmod), false, "sleep", "1h")
	from := time.Now()
	if err := e.createPods(ctx, pods); err != nil {
		return BurstRun{}, err
	}
	if err := e.pods.waitAll(ctx, names(pods), 2*time.Minute+time.Duration(n)*400*time.Millisecond, isReady); err != nil {
		return BurstRun{}, err
	}
	writes, err := e.writesUntilQuiet(ctx, node, from)
	if err != nil {
		return BurstRun{}, err
	}
	rs, _ := e.pods.snapshot(names(pods))
	var sched, running, ready, nodeSide []time.Duration
	first, last := rs[0].Added, rs[0].Ready
	for _, r := range rs {
		sched = append(sched, r.Scheduled.Sub(r.Added))
		running = append(running, r.Running.Sub(r.Added))
		ready = append(ready, r.Ready.Sub(r.Added))
		nodeSide = append(nodeSide, r.Ready.Sub(r.Scheduled))
		if r.Added.Before(first) {
			first = r.Added
		}
		if r.Ready.After(last) {
			last = r.Ready
		}
	}
	run := BurstRun{
		Node: node, N: n,
		Scheduled: summarize(sched), Running: summarize(running), Ready: summarize(ready), NodeSide: summarize(nodeSide),
		WallSeconds:  last.Sub(first).Seconds(),
		Writes:       writes,
		WritesPerPod: float64(writes.Writes) / float64(n),
	}
	return run, e.deleteSet(ctx, set, krustletNodes(node)...)
}

// shortKind names the kind of node in pod names.
func shortKind(node string) string {
	if node == kwokNodeName {
		return "kwok"
	}
	return "wasm"
}

// krustletNodes returns node if it is the krustlet node, for the
// quiesce after a deletion (kwok writes nothing for a force-deleted pod).
func krustletNodes(node string) []string {
	if node == kwokNodeName {
		return nil
	}
	return []string{node}
}

// agentUser is the API user whose writes are node's: the krustlet node's
// own, or kwok's.
func agentUser(node string) string {
	if node == kwokNodeName {
		return kwokUser
	}
	return nodeUser(node)
}

// writesUntilQuiet waits until node's agent has gone quiet and counts its
// writes since from, lease renewals left out.
func (e *Env) writesUntilQuiet(ctx context.Context, node string, from time.Time) (APIWrites, error) {
	user := agentUser(node)
	if err := e.audit.quiesce(ctx, user, 2*time.Second, 2*time.Minute); err != nil {
		return APIWrites{}, err
	}
	to := time.Now()
	ws, err := e.audit.writes(user, from, to)
	if err != nil {
		return APIWrites{}, err
	}
	var kept []auditEvent
	for _, w := range ws {
		if w.Resource != "leases" {
			kept = append(kept, w)
		}
	}
	return countWrites(user, kept, 0), nil
}
