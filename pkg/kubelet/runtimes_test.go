package kubelet

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
	v1 "k8s.io/api/core/v1"

	"github.com/krustlet/krustlet-go/pkg/config"
	"github.com/krustlet/krustlet-go/pkg/kubelet/runtimeclass"
	"github.com/krustlet/krustlet-go/pkg/provider"
)

type fakeProvider struct {
	info   provider.NodeInfo
	health error
}

func (p *fakeProvider) Node() provider.NodeInfo { return p.info }
func (p *fakeProvider) PullImage(context.Context, provider.PullRequest) (provider.Image, error) {
	return provider.Image{}, nil
}
func (p *fakeProvider) StartContainer(context.Context, provider.ContainerConfig) (provider.Container, error) {
	return nil, errors.New("unused")
}
func (p *fakeProvider) Healthy(context.Context) error { return p.health }

var wasmInfo = provider.NodeInfo{
	Labels:       map[string]string{v1.LabelArchStable: wasmArch, v1.LabelOSStable: wasmArch},
	Taints:       []v1.Taint{{Key: v1.LabelArchStable, Value: wasmArch, Effect: v1.TaintEffectNoSchedule}},
	RuntimeName:  "wasmtime",
	Architecture: "wasm-wasi",
}

func router(t *testing.T, handlers map[string]string, runtimes ...runtimeclass.Runtime) *runtimeclass.Router {
	t.Helper()
	r, err := runtimeclass.NewRouter(runtimes, handlers, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestIdentityOfWasmOnlyNode(t *testing.T) {
	r := router(t, map[string]string{"wasmtime": "wasmtime", "fast": "wasmtime"},
		runtimeclass.Runtime{Name: "wasmtime", Provider: &fakeProvider{info: wasmInfo}})
	id := identityOf(r)
	if id.labels[v1.LabelArchStable] != wasmArch || id.labels[v1.LabelOSStable] != wasmArch ||
		id.labels[HandlerLabelPrefix+"wasmtime"] != "true" || id.labels[HandlerLabelPrefix+"fast"] != "true" {
		t.Errorf("labels = %v", id.labels)
	}
	if len(id.taints) != 1 || id.info.Architecture != "wasm-wasi" {
		t.Errorf("taints %v, architecture %q", id.taints, id.info.Architecture)
	}
	if hs := runtimeHandlers(r); len(hs) != 2 || hs[0].Name != "fast" || hs[1].Name != "wasmtime" {
		t.Errorf("runtimeHandlers = %v", hs)
	}
}

func TestIdentityOfMixedNode(t *testing.T) {
	ctr := &fakeProvider{info: provider.NodeInfo{RuntimeName: "containerd", Containers: true}}
	r := router(t, map[string]string{"cri": "cri", "wasmtime": "wasmtime"},
		runtimeclass.Runtime{Name: "cri", Provider: ctr},
		runtimeclass.Runtime{Name: "wasmtime", Provider: &fakeProvider{info: wasmInfo}})
	id := identityOf(r)
	if id.labels[v1.LabelArchStable] != runtime.GOARCH || id.labels[v1.LabelOSStable] != "linux" || id.labels[HandlerLabelPrefix+"wasmtime"] != "true" {
		t.Errorf("labels = %v", id.labels)
	}
	if len(id.taints) != 0 || id.info.Architecture != runtime.GOARCH || id.info.RuntimeName != "containerd" {
		t.Errorf("taints %v, info %+v", id.taints, id.info)
	}
}

func TestProviderHealth(t *testing.T) {
	broken := &fakeProvider{info: wasmInfo, health: errors.New("cache dir gone")}
	r := router(t, nil, runtimeclass.Runtime{Name: "ok", Provider: &fakeProvider{}}, runtimeclass.Runtime{Name: "wasmtime", Provider: broken})
	errs := providerHealth(context.Background(), r)
	if len(errs) != 1 || errs[0].Error() != "provider wasmtime is not ready: cache dir gone" {
		t.Fatalf("errs = %v", errs)
	}
	broken.health = nil
	if errs := providerHealth(context.Background(), r); len(errs) != 0 {
		t.Fatalf("errs = %v", errs)
	}
}

// A part that fails ends the agent with its error, without a signal.
func TestWaitAndStopOnFailedPart(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	g, gctx := errgroup.WithContext(ctx)
	bind := errors.New("listen tcp 127.0.0.1:10250: bind: address already in use")
	g.Go(func() error { return bind })
	g.Go(func() error { <-gctx.Done(); return nil })
	cfg := &config.Config{ShutdownGracePeriod: 5 * time.Second}
	done := make(chan error, 1)
	go func() { done <- waitAndStop(ctx, gctx, g, cfg, nil) }()
	select {
	case err := <-done:
		if !errors.Is(err, bind) {
			t.Fatalf("err = %v, want the part's", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the agent did not stop after a part failed")
	}
}

func TestWaitAndStopOnSignal(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { <-gctx.Done(); return nil })
	cancel()
	if err := waitAndStop(ctx, gctx, g, &config.Config{ShutdownGracePeriod: 5 * time.Second}, nil); err != nil {
		t.Fatalf("err = %v", err)
	}
	// A part that returns nil before the signal is a failure too.
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	g2, gctx2 := errgroup.WithContext(ctx2)
	g2.Go(func() error { return nil })
	g2.Go(func() error { return errors.New("boom") })
	err := waitAndStop(ctx2, gctx2, g2, &config.Config{ShutdownGracePeriod: 5 * time.Second}, nil)
	if err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("err = %v", err)
	}
}
