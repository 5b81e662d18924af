package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

const (
	// labelSet groups the pods of one burst or step, so they are deleted
	// together.
	labelSet = "bench.krustlet.dev/set"
	// labelCompletes marks run-to-completion pods: kwok's pod-complete
	// stage (kwok-stages.yaml) moves those to Succeeded once Running.
	labelCompletes = "bench.krustlet.dev/completes"
	// createWorkers is how many pods the bench creates at once.
	createWorkers = 16
)

// benchPod is a pod for node that runs image with args in one container.
// It tolerates the Wasm taints and selects the node by host name (see
// test/e2e wasmPod), so the scheduler binds it; kwok nodes carry the same
// labels and taints, so the same pod fits both.
func benchPod(name, node, image, set string, completes bool, args ...string) *v1.Pod {
	f := false
	zero := int64(0)
	l := map[string]string{labelSet: set}
	if completes {
		l[labelCompletes] = "true"
	}
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: benchNamespace, Labels: l},
		Spec: v1.PodSpec{
			NodeSelector:                  map[string]string{v1.LabelHostname: node},
			Tolerations:                   []v1.Toleration{{Key: v1.LabelArchStable, Operator: v1.TolerationOpEqual, Value: wasmArch}},
			AutomountServiceAccountToken:  &f,
			RestartPolicy:                 v1.RestartPolicyNever,
			TerminationGracePeriodSeconds: &zero,
			Containers:                    []v1.Container{{Name: "main", Image: image, Args: args}},
		},
	}
}

// wasmArch is the arch and os label value (and taint value) of Wasm nodes.
const wasmArch = "wasm32-wasi"

// podSet makes n pods named PREFIX-NNNN of one set.
func podSet(prefix string, n int, node, image string, completes bool, args ...string) []*v1.Pod {
	pods := make([]*v1.Pod, n)
	for i := range pods {
		pods[i] = benchPod(fmt.Sprintf("%s-%04d", prefix, i), node, image, prefix, completes, args...)
	}
	return pods
}

func names(pods []*v1.Pod) []string {
	out := make([]string, len(pods))
	for i, p := range pods {
		out[i] = p.Name
	}
	return out
}

// createPods creates pods with createWorkers requests in flight.
func (e *Env) createPods(ctx context.Context, pods []*v1.Pod) error {
	ch := make(chan *v1.Pod)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for range min(createWorkers, len(pods)) {
		wg.Go(func() {
			for p := range ch {
				_, err := e.client.CoreV1().Pods(p.Namespace).Create(ctx, p, metav1.CreateOptions{})
				if err != nil {
					mu.Lock()
					if first == nil {
						first = fmt.Errorf("creating pod %s: %w", p.Name, err)
					}
					mu.Unlock()
				}
			}
		})
	}
	for _, p := range pods {
		select {
		case ch <- p:
		case <-ctx.Done():
		}
	}
	close(ch)
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

// deleteSet deletes the pods of a set at once (grace period 0: the API
// forgets them immediately, the node stops them when its watch says so),
// waits for the watch to show them gone, then for each krustlet node of
// quiet to finish the writes that follows (Killing events): the next
// measurement must not start behind a queue of them.
func (e *Env) deleteSet(ctx context.Context, set string, quiet ...string) error {
	zero := int64(0)
	sel := labels.SelectorFromSet(labels.Set{labelSet: set}).String()
	list, err := e.client.CoreV1().Pods(benchNamespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return err
	}
	if err := e.client.CoreV1().Pods(benchNamespace).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: &zero}, metav1.ListOptions{LabelSelector: sel}); err != nil {
		return fmt.Errorf("deleting pods of %s: %w", set, err)
	}
	var ns []string
	for _, p := range list.Items {
		ns = append(ns, p.Name)
	}
	if err := e.pods.waitGone(ctx, ns, 3*time.Minute); err != nil {
		return err
	}
	for _, node := range quiet {
		if err := e.audit.quiesce(ctx, nodeUser(node), 2*time.Second, 2*time.Minute); err != nil {
			return err
		}
	}
	return nil
}

func podList(pods ...*v1.Pod) []*v1.Pod { return pods }
