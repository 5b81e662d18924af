package main

import (
	"context"
	"fmt"
	"time"
)

// APIPhase is one window in which the krustlet node and the kwok node ran
// side by side with the same number of pods each.
type APIPhase struct {
	Name          string    `json:"name"`
	PodsPerNode   int       `json:"podsPerNode"`
	WindowSeconds float64   `json:"windowSeconds"`
	Krustlet      APIWrites `json:"krustlet"`
	Kwok          APIWrites `json:"kwok"`
	// APIServerCores and EtcdCores are what those processes used in the
	// window, with both nodes (and nothing else of the bench) running.
	APIServerCores float64 `json:"apiServerCores"`
	EtcdCores      float64 `json:"etcdCores"`
	// KrustletCores is what the krustlet agent used; KwokCores what kwok
	// did.
	KrustletCores float64 `json:"krustletCores"`
	KwokCores     float64 `json:"kwokCores"`
	// KrustletRSSMiB and KwokRSSMiB are the agents' RSS at the end of the
	// window.
	KrustletRSSMiB float64 `json:"krustletRSSMiB"`
	KwokRSSMiB     float64 `json:"kwokRSSMiB"`
}

func runAPICost(ctx context.Context, e *Env, res *Results) error {
	idle, err := e.apiWindow(ctx, "idle", 0)
	if err != nil {
		return err
	}
	res.APICost = append(res.APICost, idle)
	steady, err := e.apiWindow(ctx, fmt.Sprintf("%d steady pods", e.cfg.APISteadyPods), e.cfg.APISteadyPods)
	if err != nil {
		return err
	}
	res.APICost = append(res.APICost, steady)
	return nil
}

// apiWindow puts pods sleeping pods on each node, waits until both are
// quiet, and counts their writes in the audit log over the window.
func (e *Env) apiWindow(ctx context.Context, name string, pods int) (APIPhase, error) {
	set := fmt.Sprintf("api-%d", pods)
	if pods > 0 {
		all := append(podSet(set+"-wasm", pods, mainNodeName, e.image(e.testmod), false, "sleep", "1h"),
			podSet(set+"-kwok", pods, kwokNodeName, e.image(e.testmod), false, "sleep", "1h")...)
		if err := e.createPods(ctx, all); err != nil {
			return APIPhase{}, err
		}
		if err := e.pods.waitAll(ctx, names(all), 3*time.Minute, isReady); err != nil {
			return APIPhase{}, err
		}
	}
	if err := e.audit.quiesce(ctx, nodeUser(mainNodeName), 3*time.Second, 2*time.Minute); err != nil {
		return APIPhase{}, err
	}
	if err := e.audit.quiesce(ctx, kwokUser, 3*time.Second, 2*time.Minute); err != nil {
		return APIPhase{}, err
	}
	pids, err := e.controlPlanePIDs()
	if err != nil {
		return APIPhase{}, err
	}
	w := e.cfg.APIWindow
	logf("counting writes for %v (%s)", w, name)
	cpu := startCPU(pids["kube-apiserver"], pids["etcd"], e.mainNode.Proc.PID, e.kwok.PID)
	from := time.Now()
	select {
	case <-ctx.Done():
		return APIPhase{}, ctx.Err()
	case <-time.After(w):
	}
	to := time.Now()
	cores := cpu.cores()
	krss, _, _ := procStatus(e.mainNode.Proc.PID)
	wrss, _, _ := procStatus(e.kwok.PID)
	// The audit log is written as each request completes; give the last
	// ones a moment to land.
	time.Sleep(time.Second)
	kw, err := e.audit.writes(nodeUser(mainNodeName), from, to)
	if err != nil {
		return APIPhase{}, err
	}
	kk, err := e.audit.writes(kwokUser, from, to)
	if err != nil {
		return APIPhase{}, err
	}
	ph := APIPhase{
		Name: name, PodsPerNode: pods, WindowSeconds: to.Sub(from).Seconds(),
		Krustlet:       countWrites(nodeUser(mainNodeName), kw, to.Sub(from)),
		Kwok:           countWrites(kwokUser, kk, to.Sub(from)),
		APIServerCores: cores[0], EtcdCores: cores[1], KrustletCores: cores[2], KwokCores: cores[3],
		KrustletRSSMiB: float64(krss) / (1 << 20), KwokRSSMiB: float64(wrss) / (1 << 20),
	}
	logf("%s: krustlet %.1f writes/min %v, kwok %.1f writes/min %v", name, ph.Krustlet.PerMinute, ph.Krustlet.ByKind, ph.Kwok.PerMinute, ph.Kwok.ByKind)
	if pods > 0 {
		if err := e.deleteSet(ctx, set+"-kwok"); err != nil {
			return ph, err
		}
		if err := e.deleteSet(ctx, set+"-wasm", mainNodeName); err != nil {
			return ph, err
		}
	}
	return ph, nil
}
