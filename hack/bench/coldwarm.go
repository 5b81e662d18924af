package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"
)

// ColdWarmModule is the first pod of a module the node never saw (it
// reads, hashes and compiles it) against the pods after it (compiled
// module in memory), each measured from creation to Succeeded on the
// watch, pods one at a time.
type ColdWarmModule struct {
	Module    string    `json:"module"`
	SizeBytes int       `json:"sizeBytes"`
	Cold      []float64 `json:"coldSeconds"`
	Warm      []float64 `json:"warmSeconds"`
	// ColdMedian minus WarmMedian: what the first pod pays.
	ColdMedian  float64 `json:"coldMedian"`
	WarmMedian  float64 `json:"warmMedian"`
	FirstPodTax float64 `json:"firstPodTax"`
}

// warmPerCold is how many pods follow each cold one.
const warmPerCold = 2

func runColdWarm(ctx context.Context, e *Env, res *Results) error {
	dir := filepath.Join(e.dir, "modules")
	for _, m := range []struct{ name, src string }{{"hello (WAT)", e.hello}, {"testmod (Go)", e.testmod}} {
		cw := ColdWarmModule{Module: m.name}
		for rep := range e.cfg.ColdWarmReps {
			path, size, err := freshCopy(m.src, dir, fmt.Sprintf("cw%d", rep))
			if err != nil {
				return err
			}
			cw.SizeBytes = size
			for i := range 1 + warmPerCold {
				name := fmt.Sprintf("cw-%s-%d-%d", shortModule(m.src, e), rep, i)
				// Both modules exit 0 at once: testmod with "exit 0",
				// hello with no arguments.
				args := []string{}
				if m.src == e.testmod {
					args = []string{"exit", "0"}
				}
				pod := benchPod(name, mainNodeName, e.image(path), "coldwarm", false, args...)
				if err := e.createPods(ctx, podList(pod)); err != nil {
					return err
				}
				if err := e.pods.waitAll(ctx, []string{name}, 2*time.Minute, isSucceeded); err != nil {
					return err
				}
				r := e.pods.get(name)
				d := r.Completed.Sub(r.Added).Seconds()
				if i == 0 {
					cw.Cold = append(cw.Cold, d)
				} else {
					cw.Warm = append(cw.Warm, d)
				}
				// Let the node write what follows (events) before the next.
				if err := e.audit.quiesce(ctx, nodeUser(mainNodeName), time.Second, time.Minute); err != nil {
					return err
				}
			}
		}
		cw.ColdMedian, cw.WarmMedian = median(cw.Cold), median(cw.Warm)
		cw.FirstPodTax = cw.ColdMedian - cw.WarmMedian
		logf("%s (%d bytes): cold %.2fs, warm %.2fs (medians)", m.name, cw.SizeBytes, cw.ColdMedian, cw.WarmMedian)
		res.ColdWarm = append(res.ColdWarm, cw)
	}
	return e.deleteSet(ctx, "coldwarm", mainNodeName)
}

func shortModule(src string, e *Env) string {
	if src == e.testmod {
		return "go"
	}
	return "wat"
}
