package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/krustlet/krustlet-go/test/framework/controlplane"
	"github.com/krustlet/krustlet-go/test/framework/krustlet"
	"github.com/krustlet/krustlet-go/test/framework/wasmbuild"
)

const (
	// benchNamespace holds every pod of the bench.
	benchNamespace = "bench"
	// mainNodeName is the krustlet node of the latency, throughput,
	// cold/warm and API-cost scenarios; kwokNodeName is its kwok twin.
	mainNodeName = "bench-wasm"
	kwokNodeName = "bench-kwok"
)

// Env is what every scenario shares: one control plane, the krustlet
// node and the kwok node it compares, the trackers fed by informers, and
// the audit log.
type Env struct {
	cfg      Config
	dir      string
	repoRoot string
	cp       *controlplane.ControlPlane
	// client is cluster-admin without client-side rate limiting, so that
	// the bench itself never shapes the numbers it measures.
	client kubernetes.Interface

	krustletBin string
	testmod     string // path of the Go-built test module
	hello       string // path of the tiny WAT module
	kwokBin     string
	kwok        *controlplane.Process

	pods   *podTracker
	nodes  *nodeTracker
	leases *leaseTracker
	audit  *auditLog

	mainNode *krustlet.Node
	// agents are every krustlet node started, for teardown.
	agents []*krustlet.Node

	versions     Versions
	stopWatchers context.CancelFunc
}

// setup starts the control plane, builds what the scenarios run, joins
// the main krustlet node, starts kwok with its node, and warms the
// module cache of both.
func setup(ctx context.Context, cfg Config, o runOptions) (_ *Env, err error) {
	dir, err := os.MkdirTemp("", "krustlet-bench-")
	if err != nil {
		return nil, err
	}
	e := &Env{cfg: cfg, dir: dir, krustletBin: o.krustletBin}
	defer func() {
		if err != nil {
			if terr := e.teardown(true); terr != nil {
				logf("teardown after a failed setup: %v", terr)
			}
		}
	}()
	if e.repoRoot, err = controlplane.RepoRoot(); err != nil {
		return nil, err
	}
	logf("work directory %s", dir)
	e.cp, err = controlplane.Start(ctx, controlplane.Options{Dir: filepath.Join(dir, "cp"), Logf: logf})
	if err != nil {
		return nil, fmt.Errorf("starting the control plane: %w", err)
	}
	adminCfg := e.cp.AdminConfig()
	adminCfg.QPS = -1 // no client-side rate limit for the bench's own requests
	e.client = kubernetes.NewForConfigOrDie(adminCfg)
	watchCtx, cancel := context.WithCancel(context.Background())
	e.stopWatchers = cancel
	// kubelet-serving CSRs are approved as an operator's approver would.
	go controlplane.RunServingApprover(watchCtx, e.client) //nolint:errcheck

	if e.krustletBin == "" {
		logf("building krustlet")
		if e.krustletBin, err = buildKrustlet(ctx, e.repoRoot, dir); err != nil {
			return nil, err
		}
	}
	if e.testmod, err = wasmbuild.Build(ctx, "testmod"); err != nil {
		return nil, err
	}
	if e.hello, err = writeHelloModule(filepath.Join(dir, "modules")); err != nil {
		return nil, err
	}
	kwokVersion := ""
	if e.kwokBin, kwokVersion, err = ensureKwok(ctx, e.repoRoot, controlplane.DefaultCacheDir()); err != nil {
		return nil, err
	}
	e.versions = e.describeVersions(ctx, kwokVersion)

	if err := e.createNamespace(ctx); err != nil {
		return nil, err
	}
	if e.audit, err = openAuditLog(e.cp.AuditLogPath()); err != nil {
		return nil, err
	}
	if err := e.startWatchers(watchCtx); err != nil {
		return nil, err
	}

	logf("joining krustlet node %s and starting kwok with node %s", mainNodeName, kwokNodeName)
	maxPods := max(cfg.Completions, cfg.APISteadyPods, maxInt(cfg.Bursts)) + 100
	if e.mainNode, err = e.joinNode(mainNodeName, "--max-pods="+strconv.Itoa(maxPods)); err != nil {
		return nil, err
	}
	if err := e.startKwok(); err != nil {
		return nil, err
	}
	if err := createKwokNode(ctx, e.client, kwokNodeName); err != nil {
		return nil, err
	}
	if err := e.nodes.waitSchedulable(ctx, 3*time.Minute, e.agentsAlive(e.mainNode), mainNodeName, kwokNodeName); err != nil {
		return nil, err
	}
	// One pod on each node first: the module is pulled and compiled once,
	// so every scenario after this starts a cached module.
	if err := e.warmUp(ctx); err != nil {
		return nil, fmt.Errorf("warming up: %w", err)
	}
	return e, nil
}

// buildKrustlet builds ./cmd/krustlet as make build does (cgo, -trimpath,
// the version stamped), so that the bench measures what users run.
func buildKrustlet(ctx context.Context, repoRoot, dir string) (string, error) {
	git := func(fallback string, args ...string) string {
		cmd := exec.CommandContext(ctx, "git", args...)
		cmd.Dir = repoRoot
		out, err := cmd.Output()
		if s := strings.TrimSpace(string(out)); err == nil && s != "" {
			return s
		}
		return fallback
	}
	// Read-only git commands only: which commit, and whether the
	// checkout has local changes.
	version := git("v0.0.0-dev", "describe", "--tags", "--always", "--dirty")
	commit := git("unknown", "rev-parse", "--short", "HEAD")
	const pkg = "github.com/krustlet/krustlet-go/pkg/version"
	ldflags := fmt.Sprintf("-X %[1]s.gitVersion=%[2]s -X %[1]s.gitCommit=%[3]s -X %[1]s.buildDate=%[4]s",
		pkg, version, commit, time.Now().UTC().Format(time.RFC3339))
	bin := filepath.Join(dir, "krustlet")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", ldflags, "-o", bin, "./cmd/krustlet")
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building krustlet: %w\n%s", err, out)
	}
	return bin, nil
}

// joinNode joins a krustlet node with the bench's rate limits and local
// modules allowed, and records it for teardown.
func (e *Env) joinNode(name string, extra ...string) (*krustlet.Node, error) {
	base := filepath.Join(e.dir, "nodes", name)
	n, err := krustlet.Join(e.krustletBin, e.cp, krustlet.Options{
		Name:    name,
		DataDir: filepath.Join(base, "data"),
		LogDir:  filepath.Join(e.dir, "logs"),
		Extra: append([]string{
			"--x-allow-local-modules",
			"--kube-api-qps=" + strconv.Itoa(e.cfg.KubeAPIQPS),
			"--kube-api-burst=" + strconv.Itoa(e.cfg.KubeAPIBurst),
		}, extra...),
	})
	if err != nil {
		return nil, err
	}
	e.agents = append(e.agents, n)
	return n, nil
}

// agentsAlive returns a check that fails once any of nodes, or kwok, has
// exited, with the end of its log.
func (e *Env) agentsAlive(nodes ...*krustlet.Node) func() error {
	return func() error {
		var procs []*controlplane.Process
		for _, n := range nodes {
			procs = append(procs, n.Proc)
		}
		if e.kwok != nil {
			procs = append(procs, e.kwok)
		}
		for _, p := range procs {
			if done, err := p.Exited(); done {
				return fmt.Errorf("%s exited (%v); end of %s:\n%s", p.Name, err, p.Log, tailFile(p.Log, 15))
			}
		}
		return nil
	}
}

// tailFile returns the last lines of a file, for error messages.
func tailFile(path string, lines int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	all := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	return strings.Join(all[max(0, len(all)-lines):], "\n")
}

// stopNode stops a krustlet node at once (SIGKILL: its pods are gone from
// the API already, and its shutdown is not what is measured), unmounts what
// it left, and deletes its Node object.
func (e *Env) stopNode(ctx context.Context, n *krustlet.Node) error {
	var errs []error
	if n.Proc.Alive() {
		errs = append(errs, n.Kill())
	}
	errs = append(errs, krustlet.UnmountAll(n.DataDir))
	if err := e.client.CoreV1().Nodes().Delete(ctx, n.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (e *Env) warmUp(ctx context.Context) error {
	set := "warmup"
	pods := []*v1.Pod{
		benchPod("warmup-krustlet", mainNodeName, e.image(e.testmod), set, false, "sleep", "1h"),
		benchPod("warmup-kwok", kwokNodeName, e.image(e.testmod), set, false, "sleep", "1h"),
	}
	if err := e.createPods(ctx, pods); err != nil {
		return err
	}
	if err := e.pods.waitAll(ctx, names(pods), 3*time.Minute, isReady); err != nil {
		return err
	}
	return e.deleteSet(ctx, set, mainNodeName)
}

// image is the pod image of a module file on the node's file system.
func (e *Env) image(path string) string { return "fs/" + path }

func (e *Env) createNamespace(ctx context.Context) error {
	_, err := e.client.CoreV1().Namespaces().Create(ctx, &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: benchNamespace}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	// Pods are refused until the namespace's default ServiceAccount exists.
	deadline := time.Now().Add(time.Minute)
	for {
		_, err := e.client.CoreV1().ServiceAccounts(benchNamespace).Get(ctx, "default", metav1.GetOptions{})
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no default ServiceAccount in namespace %s: %w", benchNamespace, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// resetPods deletes every bench pod and waits for them to go, after a
// failed scenario.
func (e *Env) resetPods(ctx context.Context) error {
	zero := int64(0)
	err := e.client.CoreV1().Pods(benchNamespace).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: &zero}, metav1.ListOptions{})
	if err != nil {
		return err
	}
	if err := e.pods.waitNone(ctx, 2*time.Minute); err != nil {
		return err
	}
	return e.audit.quiesce(ctx, nodeUser(mainNodeName), 2*time.Second, time.Minute)
}

// teardown stops everything setup started, by PID, and removes the work
// directory unless keep.
func (e *Env) teardown(keep bool) error {
	var errs []error
	if e.stopWatchers != nil {
		e.stopWatchers()
	}
	if e.kwok != nil {
		errs = append(errs, e.kwok.Stop(10*time.Second))
	}
	for _, n := range e.agents {
		if n.Proc.Alive() {
			errs = append(errs, n.Kill())
		}
		errs = append(errs, krustlet.UnmountAll(n.DataDir))
	}
	if e.cp != nil {
		errs = append(errs, e.cp.Stop())
	}
	if e.audit != nil {
		e.audit.close()
	}
	err := errors.Join(errs...)
	if keep || err != nil {
		logf("work directory kept: %s (logs under %s and %s)", e.dir, filepath.Join(e.dir, "logs"), filepath.Join(e.dir, "cp", "logs"))
	} else if rerr := os.RemoveAll(e.dir); rerr != nil {
		err = errors.Join(err, rerr)
	}
	return err
}

// Versions are the versions of everything measured.
type Versions struct {
	Krustlet   string `json:"krustlet"`
	Commit     string `json:"commit"`
	Kubernetes string `json:"kubernetes"`
	Kwok       string `json:"kwok"`
	Wasmtime   string `json:"wasmtimeGo"`
	Go         string `json:"go"`
}

var requireLine = regexp.MustCompile(`(?m)^\s*(?:require\s+)?(\S+)\s+(v\S+)`)

func (e *Env) describeVersions(ctx context.Context, kwokVersion string) Versions {
	v := Versions{Kubernetes: e.cp.Binaries.KubernetesVersion, Kwok: kwokVersion, Go: runtime.Version()}
	if out, err := exec.CommandContext(ctx, e.krustletBin, "version").CombinedOutput(); err == nil {
		v.Krustlet = strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
	}
	// Read-only: which commit the checkout is at, and whether it has local
	// changes.
	cmd := exec.CommandContext(ctx, "git", "describe", "--tags", "--always", "--dirty")
	cmd.Dir = e.repoRoot
	if out, err := cmd.Output(); err == nil {
		v.Commit = strings.TrimSpace(string(out))
	}
	if gomod, err := os.ReadFile(filepath.Join(e.repoRoot, "go.mod")); err == nil {
		for _, m := range requireLine.FindAllStringSubmatch(string(gomod), -1) {
			if strings.HasPrefix(m[1], "github.com/bytecodealliance/wasmtime-go") {
				v.Wasmtime = m[2]
			}
		}
	}
	return v
}

// RateLimits are the client-side limits that shape the numbers.
type RateLimits struct {
	KrustletQPS   int    `json:"krustletQPS"`
	KrustletBurst int    `json:"krustletBurst"`
	Kwok          string `json:"kwok"`
	Scheduler     string `json:"scheduler"`
	Bench         string `json:"bench"`
}

func (e *Env) rateLimits() RateLimits {
	return RateLimits{
		KrustletQPS:   e.cfg.KubeAPIQPS,
		KrustletBurst: e.cfg.KubeAPIBurst,
		Kwok:          "none: kwok " + e.versions.Kwok + " replaces client-go's limiter with flowcontrol.NewFakeAlwaysRateLimiter(); 4 pod and 4 node stage workers, 4 lease workers (its defaults)",
		Scheduler:     "kube-scheduler defaults: client QPS 50, burst 100 (binding and its Scheduled event share them)",
		Bench:         "none (QPS -1) for the bench's own creates, deletes and watches",
	}
}

func maxInt(xs []int) int {
	m := 0
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}

func splitComma(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// nodeUser is the API user of a krustlet node.
func nodeUser(node string) string { return "system:node:" + node }
