package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"
)

// Config holds the sizes of every scenario. Full and Smoke are the two
// presets; flags override single fields.
type Config struct {
	Mode string `json:"mode"`
	// Bursts are the sizes of the pod start-latency bursts.
	Bursts []int `json:"bursts"`
	// Completions is the number of run-to-completion pods of the
	// throughput scenario.
	Completions int `json:"completions"`
	// ColdWarmReps is how many fresh modules of each kind the cold/warm
	// scenario starts.
	ColdWarmReps int `json:"coldWarmReps"`
	// DensityStep pods are added per density step, up to DensityBudget
	// pods, or until the node's RSS reaches DensityMemBudgetMiB.
	DensityStep         int `json:"densityStep"`
	DensityBudget       int `json:"densityBudget"`
	DensityMemBudgetMiB int `json:"densityMemBudgetMiB"`
	// APIWindow is how long the writes of each node are counted, idle
	// and with APISteadyPods pods.
	APIWindow     time.Duration `json:"apiWindow"`
	APISteadyPods int           `json:"apiSteadyPods"`
	// Nodes krustlet nodes (then as many kwok nodes) with PodsPerNode
	// pods each are watched for NodesWindow.
	Nodes       int           `json:"nodes"`
	PodsPerNode int           `json:"podsPerNode"`
	NodesWindow time.Duration `json:"nodesWindow"`
	// KubeAPIQPS and KubeAPIBurst are passed to every krustlet node.
	KubeAPIQPS   int `json:"kubeAPIQPS"`
	KubeAPIBurst int `json:"kubeAPIBurst"`
	// Deadline bounds the whole run.
	Deadline time.Duration `json:"deadline"`
}

// Full is the preset of make bench: about 15 minutes on 2 cores (45 at most).
var Full = Config{
	Mode:                "full",
	Bursts:              []int{1, 100, 500},
	Completions:         1000,
	ColdWarmReps:        3,
	DensityStep:         250,
	DensityBudget:       2000,
	DensityMemBudgetMiB: 12 << 10,
	APIWindow:           60 * time.Second,
	APISteadyPods:       100,
	Nodes:               20,
	PodsPerNode:         3,
	NodesWindow:         60 * time.Second,
	KubeAPIQPS:          50,
	KubeAPIBurst:        100,
	Deadline:            45 * time.Minute,
}

// Smoke is the preset of make bench-smoke: every scenario with small
// numbers, so that the harness never rots.
var Smoke = Config{
	Mode:                "smoke",
	Bursts:              []int{1, 10},
	Completions:         50,
	ColdWarmReps:        1,
	DensityStep:         20,
	DensityBudget:       40,
	DensityMemBudgetMiB: 4 << 10,
	APIWindow:           20 * time.Second,
	APISteadyPods:       10,
	Nodes:               2,
	PodsPerNode:         2,
	NodesWindow:         15 * time.Second,
	KubeAPIQPS:          50,
	KubeAPIBurst:        100,
	Deadline:            10 * time.Minute,
}

func main() {
	smoke := flag.Bool("smoke", false, "run the quick variant (small numbers) instead of the full one")
	out := flag.String("out", "", "directory for report.md, results.json and the PNG plots (required)")
	krustletBin := flag.String("krustlet", "", "prebuilt krustlet binary; built from the checkout when empty")
	keep := flag.Bool("keep", false, "keep the work directory (logs, data dirs) even when every scenario passed")
	only := flag.String("only", "", "comma-separated scenarios to run (latency,throughput,coldwarm,apicost,density,manynodes); all when empty")
	qps := flag.Int("kube-api-qps", 0, "--kube-api-qps of the krustlet nodes (default: the preset's, 50)")
	burst := flag.Int("kube-api-burst", 0, "--kube-api-burst of the krustlet nodes (default: the preset's, 100)")
	render := flag.String("render", "", "run nothing: write the report and plots again from this results.json")
	flag.Parse()
	if *out == "" {
		fmt.Fprintln(os.Stderr, "bench: -out is required")
		os.Exit(2)
	}
	if *render != "" {
		if err := rerender(*render, *out); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	cfg := Full
	if *smoke {
		cfg = Smoke
	}
	if *qps > 0 {
		cfg.KubeAPIQPS = *qps
	}
	if *burst > 0 {
		cfg.KubeAPIBurst = *burst
	}
	scenarios, err := parseOnly(*only)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, cfg.Deadline)
	defer cancel()
	outDir, err := filepath.Abs(*out)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	if err := run(ctx, cfg, runOptions{out: outDir, krustletBin: *krustletBin, keep: *keep, scenarios: scenarios}); err != nil {
		fmt.Fprintln(os.Stderr, "bench: FAILED:", err)
		os.Exit(1)
	}
	fmt.Println("bench: every scenario passed; report in", filepath.Join(outDir, "report.md"))
}

// scenarioNames lists the scenarios in the order they run.
var scenarioNames = []string{"latency", "throughput", "coldwarm", "apicost", "density", "manynodes"}

func parseOnly(s string) (map[string]bool, error) {
	sel := map[string]bool{}
	if s == "" {
		for _, n := range scenarioNames {
			sel[n] = true
		}
		return sel, nil
	}
	for _, n := range splitComma(s) {
		known := false
		for _, k := range scenarioNames {
			known = known || k == n
		}
		if !known {
			return nil, fmt.Errorf("unknown scenario %q (known: %v)", n, scenarioNames)
		}
		sel[n] = true
	}
	return sel, nil
}

type runOptions struct {
	out         string
	krustletBin string
	keep        bool
	scenarios   map[string]bool
}

// run sets the environment up, runs the selected scenarios in order (a
// failed one is recorded and the next one still runs), and writes the
// report. It returns an error when the environment or any scenario failed;
// performance numbers never fail it.
func run(ctx context.Context, cfg Config, o runOptions) (err error) {
	started := time.Now()
	res := &Results{Config: cfg, Started: started, Machine: describeMachine(ctx)}
	logf("krustlet-go bench (%s) starting; load average %s", cfg.Mode, res.Machine.LoadAvgStart)

	env, err := setup(ctx, cfg, o)
	if err != nil {
		return fmt.Errorf("setting up: %w", err)
	}
	defer func() {
		failed := err != nil
		if cerr := env.teardown(failed || o.keep); cerr != nil {
			logf("teardown: %v", cerr)
			err = errors.Join(err, fmt.Errorf("teardown: %w", cerr))
		}
	}()
	res.Versions = env.versions
	res.RateLimits = env.rateLimits()

	steps := []struct {
		name string
		run  func(context.Context, *Env, *Results) error
	}{
		{"latency", runLatency},
		{"throughput", runThroughput},
		{"coldwarm", runColdWarm},
		{"apicost", runAPICost},
		{"density", runDensity},
		{"manynodes", runManyNodes},
	}
	var failed []error
	for _, s := range steps {
		if !o.scenarios[s.name] {
			continue
		}
		if ctx.Err() != nil {
			failed = append(failed, fmt.Errorf("%s: not run: %w", s.name, ctx.Err()))
			res.Errors = append(res.Errors, ScenarioError{Scenario: s.name, Error: "not run: " + ctx.Err().Error()})
			continue
		}
		logf("=== %s", s.name)
		t0 := time.Now()
		serr := s.run(ctx, env, res)
		res.Timings = append(res.Timings, ScenarioTiming{Scenario: s.name, Seconds: time.Since(t0).Seconds(), LoadAvg: loadAvg()})
		if serr != nil {
			logf("--- %s FAILED after %v: %v", s.name, time.Since(t0).Round(time.Second), serr)
			failed = append(failed, fmt.Errorf("%s: %w", s.name, serr))
			res.Errors = append(res.Errors, ScenarioError{Scenario: s.name, Error: serr.Error()})
			// Leave nothing of a failed scenario behind for the next.
			if cerr := env.resetPods(ctx); cerr != nil {
				logf("cleaning up after %s: %v", s.name, cerr)
			}
			continue
		}
		logf("--- %s done in %v", s.name, time.Since(t0).Round(time.Second))
	}
	res.Finished = time.Now()
	res.Machine.LoadAvgEnd = loadAvg()
	if werr := writeReport(o.out, res); werr != nil {
		failed = append(failed, fmt.Errorf("writing the report: %w", werr))
	}
	logf("bench finished in %v", time.Since(started).Round(time.Second))
	return errors.Join(failed...)
}

func logf(format string, args ...any) {
	fmt.Printf("%s bench: %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}
