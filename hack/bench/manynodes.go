package main

import (
	"context"
	"fmt"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/krustlet/krustlet-go/test/framework/krustlet"
)

// NodesRun is many nodes of one kind on the control plane at once.
type NodesRun struct {
	Kind        string `json:"kind"`
	Nodes       int    `json:"nodes"`
	PodsPerNode int    `json:"podsPerNode"`
	// ReadySeconds is from the start (joins, or Node creation for kwok) to
	// every node Ready and schedulable; PodsSeconds from then to every pod
	// Running.
	ReadySeconds  float64 `json:"readySeconds"`
	PodsSeconds   float64 `json:"podsSeconds"`
	WindowSeconds float64 `json:"windowSeconds"`
	// NotReadySamples counts node samples (every 2 s, each node) that were
	// not Ready during the window; ReadySamples the others.
	ReadySamples    int `json:"readySamples"`
	NotReadySamples int `json:"notReadySamples"`
	// LeaseMaxIntervalSeconds is the longest time between two renewals of
	// any node's lease in the window; LateLeases counts nodes with an
	// interval over 12.5 s (the 10 s renew interval plus a quarter),
	// ExpiredLeases those over 40 s (the lease duration).
	LeaseMaxIntervalSeconds float64 `json:"leaseMaxIntervalSeconds"`
	LateLeases              int     `json:"lateLeases"`
	ExpiredLeases           int     `json:"expiredLeases"`
	APIServerCores          float64 `json:"apiServerCores"`
	EtcdCores               float64 `json:"etcdCores"`
	// AgentCores and AgentRSSMiB add up every agent process (one per
	// krustlet node; the one kwok process).
	AgentCores      float64 `json:"agentCores"`
	AgentRSSMiB     float64 `json:"agentRSSMiB"`
	WritesPerMinute float64 `json:"writesPerMinute"`
}

// ManyNodesResult compares many krustlet nodes with as many kwok nodes.
type ManyNodesResult struct {
	Krustlet NodesRun `json:"krustlet"`
	Kwok     NodesRun `json:"kwok"`
}

func runManyNodes(ctx context.Context, e *Env, res *Results) error {
	mn := &ManyNodesResult{}
	res.ManyNodes = mn
	// Only the nodes of this scenario run from here on.
	if e.mainNode != nil && e.mainNode.Proc.Alive() {
		if err := e.stopNode(ctx, e.mainNode); err != nil {
			return err
		}
	}
	if err := e.client.CoreV1().Nodes().Delete(ctx, kwokNodeName, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	var err error
	if mn.Krustlet, err = e.manyKrustlets(ctx); err != nil {
		return fmt.Errorf("krustlet nodes: %w", err)
	}
	if mn.Kwok, err = e.manyKwoks(ctx); err != nil {
		return fmt.Errorf("kwok nodes: %w", err)
	}
	return nil
}

func (e *Env) manyKrustlets(ctx context.Context) (NodesRun, error) {
	run := NodesRun{Kind: "krustlet", Nodes: e.cfg.Nodes, PodsPerNode: e.cfg.PodsPerNode}
	start := time.Now()
	var nodes []*krustlet.Node
	defer func() {
		for _, n := range nodes {
			if err := e.stopNode(context.Background(), n); err != nil {
				logf("stopping %s: %v", n.Name, err)
			}
		}
	}()
	var nodeNames, users []string
	for i := range e.cfg.Nodes {
		n, err := e.joinNode(fmt.Sprintf("bench-many-%02d", i))
		if err != nil {
			return run, err
		}
		nodes = append(nodes, n)
		nodeNames = append(nodeNames, n.Name)
		users = append(users, nodeUser(n.Name))
	}
	pids := func() []int {
		var out []int
		for _, n := range nodes {
			out = append(out, n.Proc.PID)
		}
		return out
	}
	if err := e.manyNodes(ctx, &run, start, nodeNames, users, pids, e.agentsAlive(nodes...)); err != nil {
		return run, err
	}
	return run, nil
}

func (e *Env) manyKwoks(ctx context.Context) (NodesRun, error) {
	run := NodesRun{Kind: "kwok", Nodes: e.cfg.Nodes, PodsPerNode: e.cfg.PodsPerNode}
	start := time.Now()
	var nodeNames []string
	defer func() {
		for _, n := range nodeNames {
			if err := e.client.CoreV1().Nodes().Delete(context.Background(), n, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				logf("deleting kwok node %s: %v", n, err)
			}
		}
	}()
	for i := range e.cfg.Nodes {
		name := fmt.Sprintf("bench-kwok-many-%02d", i)
		if err := createKwokNode(ctx, e.client, name); err != nil {
			return run, err
		}
		nodeNames = append(nodeNames, name)
	}
	pids := func() []int { return []int{e.kwok.PID} }
	if err := e.manyNodes(ctx, &run, start, nodeNames, []string{kwokUser}, pids, e.agentsAlive()); err != nil {
		return run, err
	}
	return run, nil
}

// manyNodes waits for the nodes, gives each its pods, watches them all for
// the window, and deletes the pods.
func (e *Env) manyNodes(ctx context.Context, run *NodesRun, start time.Time, nodeNames, users []string, agentPIDs func() []int, alive func() error) error {
	if err := e.nodes.waitSchedulable(ctx, 5*time.Minute, alive, nodeNames...); err != nil {
		return err
	}
	run.ReadySeconds = time.Since(start).Seconds()
	logf("%d %s nodes Ready in %.1fs", len(nodeNames), run.Kind, run.ReadySeconds)
	set := "many-" + run.Kind
	var pods []*v1.Pod
	for _, n := range nodeNames {
		for j := range e.cfg.PodsPerNode {
			pods = append(pods, benchPod(fmt.Sprintf("%s-%s-%d", set, n, j), n, e.image(e.testmod), set, false, "sleep", "1h"))
		}
	}
	podsStart := time.Now()
	if err := e.createPods(ctx, pods); err != nil {
		return err
	}
	if err := e.pods.waitAll(ctx, names(pods), 5*time.Minute, isReady); err != nil {
		return err
	}
	run.PodsSeconds = time.Since(podsStart).Seconds()
	if err := e.audit.quiesceAll(ctx, 3*time.Second, 2*time.Minute, users...); err != nil {
		return err
	}
	cp, err := e.controlPlanePIDs()
	if err != nil {
		return err
	}
	logf("watching %d %s nodes for %v", len(nodeNames), run.Kind, e.cfg.NodesWindow)
	agents := agentPIDs()
	cpu := startCPU(append([]int{cp["kube-apiserver"], cp["etcd"]}, agents...)...)
	from := time.Now()
	tick := time.NewTicker(2 * time.Second)
	deadline := time.After(e.cfg.NodesWindow)
sampling:
	for {
		select {
		case <-ctx.Done():
			tick.Stop()
			return ctx.Err()
		case <-deadline:
			break sampling
		case <-tick.C:
			ready := e.nodes.readyCount(nodeNames)
			run.ReadySamples += ready
			run.NotReadySamples += len(nodeNames) - ready
		}
	}
	tick.Stop()
	to := time.Now()
	run.WindowSeconds = to.Sub(from).Seconds()
	cores := cpu.cores()
	run.APIServerCores, run.EtcdCores = cores[0], cores[1]
	for i, pid := range agents {
		run.AgentCores += cores[2+i]
		if rss, _, err := procStatus(pid); err == nil {
			run.AgentRSSMiB += float64(rss) / (1 << 20)
		}
	}
	for _, n := range nodeNames {
		ls := e.leases.stats(n, from, to)
		iv := ls.MaxInterval.Seconds()
		run.LeaseMaxIntervalSeconds = max(run.LeaseMaxIntervalSeconds, iv)
		if iv > 12.5 {
			run.LateLeases++
		}
		if iv > 40 {
			run.ExpiredLeases++
		}
	}
	time.Sleep(time.Second) // let the audit log catch up with the window
	ws, err := e.audit.writesAll(from, to, users...)
	if err != nil {
		return err
	}
	run.WritesPerMinute = float64(len(ws)) / to.Sub(from).Minutes()
	logf("%d %s nodes: not-Ready samples %d/%d, lease max interval %.1fs (late %d, expired %d), apiserver %.2f cores, etcd %.2f cores, agents %.2f cores %.0f MiB, %.0f writes/min",
		len(nodeNames), run.Kind, run.NotReadySamples, run.ReadySamples+run.NotReadySamples, run.LeaseMaxIntervalSeconds, run.LateLeases, run.ExpiredLeases,
		run.APIServerCores, run.EtcdCores, run.AgentCores, run.AgentRSSMiB, run.WritesPerMinute)
	return e.deleteSet(ctx, set)
}
