package pods

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/krustlet/krustlet-go/pkg/provider"
)

// This file holds the test doubles of the pod workers' dependencies: a
// provider whose pulls, starts and exits the test controls, a volume manager,
// a config builder, and a clock whose timers the test can see.

var (
	_ provider.Provider    = (*fakeProvider)(nil)
	_ provider.Container   = (*fakeContainer)(nil)
	_ provider.PodAdmitter = (*admittingProvider)(nil)
	_ VolumeManager        = (*fakeVolumes)(nil)
	_ ConfigBuilder        = (*fakeBuilder)(nil)
	_ clock.WithTicker     = (*fakeClock)(nil)
)

// fakeProvider runs nothing: each StartContainer returns a fakeContainer
// that ends when the test says so or when it is stopped.
type fakeProvider struct {
	mu sync.Mutex
	// pullErrs are returned, first to last, by the next pulls of an image.
	pullErrs map[string][]error
	// startErr, when set, fails a start when it returns an error; it is
	// called with mu held.
	startErr func(provider.ContainerConfig) error
	// present images are reported as already present (unless pulled
	// with policy Always); a successful pull makes an image present.
	present map[string]bool
	// blockPulls, when set, holds every pull until it is closed or the
	// pull's ctx ends.
	blockPulls chan struct{}

	pulls  []provider.PullRequest
	starts []provider.ContainerConfig
	runs   map[string][]*fakeContainer
}

func newFakeProvider() *fakeProvider {
	return &fakeProvider{
		pullErrs: map[string][]error{},
		present:  map[string]bool{},
		runs:     map[string][]*fakeContainer{},
	}
}

func (p *fakeProvider) Node() provider.NodeInfo {
	return provider.NodeInfo{RuntimeName: "fake", RuntimeVersion: "1.0", Architecture: "wasm-wasi"}
}

func (p *fakeProvider) PullImage(ctx context.Context, req provider.PullRequest) (provider.Image, error) {
	p.mu.Lock()
	p.pulls = append(p.pulls, req)
	block := p.blockPulls
	var err error
	if errs := p.pullErrs[req.Image]; len(errs) > 0 {
		err, p.pullErrs[req.Image] = errs[0], errs[1:]
	}
	present := p.present[req.Image] && req.Policy != v1.PullAlways
	p.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return provider.Image{}, fmt.Errorf("%w: %v", provider.ErrImagePull, ctx.Err())
		}
	}
	if err != nil {
		return provider.Image{}, err
	}
	p.mu.Lock()
	p.present[req.Image] = true
	p.mu.Unlock()
	return provider.Image{Ref: req.Image, ID: req.Image + "@sha256:0123", Size: 4096, AlreadyPresent: present}, nil
}

func (p *fakeProvider) StartContainer(_ context.Context, cfg provider.ContainerConfig) (provider.Container, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.starts = append(p.starts, cfg)
	if p.startErr != nil {
		if err := p.startErr(cfg); err != nil {
			return nil, err
		}
	}
	c := &fakeContainer{cfg: cfg, done: make(chan struct{})}
	p.runs[cfg.Name] = append(p.runs[cfg.Name], c)
	return c, nil
}

func (p *fakeProvider) failPulls(image string, errs ...error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pullErrs[image] = append(p.pullErrs[image], errs...)
}

func (p *fakeProvider) setStartErr(f func(provider.ContainerConfig) error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.startErr = f
}

// runCount is how many runs of the container were started.
func (p *fakeProvider) runCount(name string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.runs[name])
}

func (p *fakeProvider) startCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.starts)
}

func (p *fakeProvider) pullCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.pulls)
}

// run waits for run i (from 0) of container name to start and returns it.
func (p *fakeProvider) run(t *testing.T, name string, i int) *fakeContainer {
	t.Helper()
	var c *fakeContainer
	waitFor(t, fmt.Sprintf("run %d of container %s", i, name), func() error {
		p.mu.Lock()
		defer p.mu.Unlock()
		if len(p.runs[name]) <= i {
			return fmt.Errorf("%d runs started", len(p.runs[name]))
		}
		c = p.runs[name][i]
		return nil
	})
	return c
}

// fakeContainer is one run; it ends through exit or Stop.
type fakeContainer struct {
	cfg  provider.ContainerConfig
	once sync.Once
	done chan struct{}

	mu     sync.Mutex
	status provider.ExitStatus
	stops  []time.Duration
}

// exit ends the run as if the module returned code.
func (c *fakeContainer) exit(code int32) { c.end(provider.ExitStatus{ExitCode: code}) }

func (c *fakeContainer) end(s provider.ExitStatus) {
	c.once.Do(func() {
		c.mu.Lock()
		c.status = s
		c.mu.Unlock()
		close(c.done)
	})
}

func (c *fakeContainer) Wait(ctx context.Context) (provider.ExitStatus, error) {
	select {
	case <-c.done:
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.status, nil
	case <-ctx.Done():
		return provider.ExitStatus{}, ctx.Err()
	}
}

// Stop records grace and ends the run as a runtime would: 143 when the
// workload was asked to stop, 137 when it was killed at once.
func (c *fakeContainer) Stop(_ context.Context, grace time.Duration) error {
	c.mu.Lock()
	c.stops = append(c.stops, grace)
	c.mu.Unlock()
	code := int32(143)
	if grace == 0 {
		code = 137
	}
	c.end(provider.ExitStatus{ExitCode: code})
	return nil
}

func (c *fakeContainer) stopped() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.stops...)
}

// admittingProvider is a provider that refuses some pods.
type admittingProvider struct {
	*fakeProvider
	reason, message string
}

func (p *admittingProvider) Admit(pod *v1.Pod) (string, string) {
	if pod.Annotations["unsupported"] == "" {
		return "", ""
	}
	return p.reason, p.message
}

// fakeVolumes makes the pod directory and fails SetUp as told.
type fakeVolumes struct {
	mu sync.Mutex
	// err, when set, fails SetUp when it returns an error.
	err      func() error
	tornDown []types.UID
}

func (v *fakeVolumes) setErr(f func() error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.err = f
}

func (v *fakeVolumes) SetUp(_ context.Context, _ *v1.Pod, podDir string) (map[string]string, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.err != nil {
		if err := v.err(); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(podDir, 0o755); err != nil {
		return nil, err
	}
	return map[string]string{}, nil
}

func (v *fakeVolumes) TearDown(_ context.Context, uid types.UID, _ string) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.tornDown = append(v.tornDown, uid)
	return nil
}

func (v *fakeVolumes) tornDownUIDs() []types.UID {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]types.UID(nil), v.tornDown...)
}

// fakeBuilder resolves every container to its name and fails Env as told.
type fakeBuilder struct {
	mu     sync.Mutex
	envErr func(*v1.Container) error
}

func (b *fakeBuilder) setEnvErr(f func(*v1.Container) error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.envErr = f
}

func (b *fakeBuilder) Env(_ context.Context, pod *v1.Pod, c *v1.Container) ([]provider.EnvVar, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.envErr != nil {
		if err := b.envErr(c); err != nil {
			return nil, err
		}
	}
	return []provider.EnvVar{{Name: "POD_NAME", Value: pod.Name}}, nil
}

func (b *fakeBuilder) Args(_ *v1.Pod, c *v1.Container, _ []provider.EnvVar) []string {
	return append([]string{c.Name}, c.Args...)
}

func (b *fakeBuilder) Command(c *v1.Container, _ []provider.EnvVar) ([]string, []string) {
	return c.Command, c.Args
}

func (b *fakeBuilder) Mounts(*v1.Pod, *v1.Container, []provider.EnvVar, map[string]string) ([]provider.Mount, error) {
	return nil, nil
}

// fakeClock is a testingclock.FakeClock whose timers the test can see. Its
// timers fire without blocking the stepping test (a timer whose last firing
// was not received yet keeps that one), and a firing stays in the channel
// across Stop and Reset, so a worker that computed its next wake-up from
// the time before a Step still wakes and looks again.
type fakeClock struct {
	*testingclock.FakeClock

	mu     sync.Mutex
	timers []*fakeTimer
}

type fakeTimer struct {
	c      *fakeClock
	ch     chan time.Time
	target time.Time
	armed  bool
}

func newFakeClock() *fakeClock {
	return &fakeClock{FakeClock: testingclock.NewFakeClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))}
}

func (c *fakeClock) NewTimer(d time.Duration) clock.Timer {
	t := &fakeTimer{c: c, ch: make(chan time.Time, 1)}
	c.mu.Lock()
	c.timers = append(c.timers, t)
	c.mu.Unlock()
	t.Reset(d)
	return t
}

func (t *fakeTimer) C() <-chan time.Time { return t.ch }

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := t.armed
	t.armed = false
	return was
}

func (t *fakeTimer) Reset(d time.Duration) bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := t.armed
	t.target, t.armed = t.c.Now().Add(d), true
	return was
}

// Step moves the clock and fires the timers that are due.
func (c *fakeClock) Step(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stepLocked(d)
}

func (c *fakeClock) stepLocked(d time.Duration) {
	c.FakeClock.Step(d)
	now := c.Now()
	for _, t := range c.timers {
		if t.armed && !t.target.After(now) {
			t.armed = false
			select {
			case t.ch <- now:
			default:
			}
		}
	}
}

// advance moves the clock by d through the timers the workers arm: it waits
// until a timer is armed to fire at or before now+d, steps to the earliest
// one in the same critical section (so that no worker re-arms in between),
// and goes on until the clock reached now+d with a timer firing there. It
// fails when the workers do not plan to wake by then.
func (c *fakeClock) advance(t *testing.T, d time.Duration) {
	t.Helper()
	end := c.Now().Add(d)
	for !c.Now().Equal(end) {
		waitFor(t, fmt.Sprintf("a timer armed to fire within %v", end.Sub(c.Now())), func() error {
			c.mu.Lock()
			defer c.mu.Unlock()
			var next time.Time
			var armed []string
			for _, t := range c.timers {
				if !t.armed {
					continue
				}
				armed = append(armed, t.target.Sub(c.Now()).String())
				if !t.target.After(end) && (next.IsZero() || t.target.Before(next)) {
					next = t.target
				}
			}
			if next.IsZero() {
				return fmt.Errorf("timers armed in %v", armed)
			}
			c.stepLocked(next.Sub(c.Now()))
			return nil
		})
	}
}

// waitFor polls cond until it returns nil, failing the test after a few
// seconds with cond's last error. It waits for goroutines, never for time
// to pass in the logic under test: that follows the fake clock.
func waitFor(t testing.TB, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: %v", what, err)
		}
		time.Sleep(time.Millisecond)
	}
}
