package runtimeclass

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/krustlet/krustlet-go/pkg/provider"
)

// fake is a provider that runs nothing; each instance is told apart by id.
type fake struct{ id string }

func (f *fake) Node() provider.NodeInfo { return provider.NodeInfo{RuntimeName: f.id} }
func (f *fake) PullImage(context.Context, provider.PullRequest) (provider.Image, error) {
	return provider.Image{}, nil
}
func (f *fake) StartContainer(context.Context, provider.ContainerConfig) (provider.Container, error) {
	return nil, errors.New("not running anything")
}

func init() {
	// One implementation registered under two names, as two providers of
	// one node.
	for _, name := range []string{"fake-a", "fake-b"} {
		provider.Register(name, func(provider.Options) (provider.Provider, error) { return &fake{id: name}, nil })
	}
}

func classes(list ...*nodev1.RuntimeClass) ClassGetter {
	return func(name string) (*nodev1.RuntimeClass, error) {
		for _, c := range list {
			if c.Name == name {
				return c, nil
			}
		}
		return nil, apierrors.NewNotFound(nodev1.Resource("runtimeclasses"), name)
	}
}

func class(name, handler string) *nodev1.RuntimeClass {
	return &nodev1.RuntimeClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Handler: handler}
}

func podWithClass(name string) *v1.Pod {
	p := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns"}}
	if name != "" {
		p.Spec.RuntimeClassName = &name
	}
	return p
}

func newTestRouter(t *testing.T) *Router {
	t.Helper()
	var runtimes []Runtime
	for _, name := range []string{"fake-a", "fake-b"} {
		p, err := provider.New(name, provider.Options{})
		if err != nil {
			t.Fatal(err)
		}
		runtimes = append(runtimes, Runtime{Name: name, Provider: p})
	}
	r, err := NewRouter(runtimes,
		map[string]string{"fake-a": "fake-a", "fake-b": "fake-b", "spin": "fake-b"},
		classes(class("a", "fake-a"), class("b", "fake-b"), class("spin", "spin"), class("gvisor", "runsc")))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRoute(t *testing.T) {
	r := newTestRouter(t)
	for _, tc := range []struct {
		class       string
		wantHandler string
		wantID      string
		wantErr     error
		wantMsg     string
	}{
		{class: "", wantHandler: "", wantID: "fake-a"},
		{class: "a", wantHandler: "fake-a", wantID: "fake-a"},
		{class: "b", wantHandler: "fake-b", wantID: "fake-b"},
		{class: "spin", wantHandler: "spin", wantID: "fake-b"},
		{class: "missing", wantErr: ErrClassNotFound, wantMsg: `RuntimeClass not found: "missing"`},
		{class: "gvisor", wantErr: ErrHandlerNotServed, wantMsg: `RuntimeClass "gvisor" has handler "runsc"; this node serves fake-a, fake-b, spin`},
	} {
		t.Run(tc.class, func(t *testing.T) {
			route, err := r.Route(podWithClass(tc.class))
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.wantMsg) {
					t.Fatalf("err = %v, want %v containing %q", err, tc.wantErr, tc.wantMsg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if route.Handler != tc.wantHandler || route.Runtime.Provider.(*fake).id != tc.wantID {
				t.Fatalf("route = %q → %s, want %q → %s", route.Handler, route.Runtime.Name, tc.wantHandler, tc.wantID)
			}
		})
	}
}

func TestRouteLookupError(t *testing.T) {
	r, err := NewRouter([]Runtime{{Name: "fake-a", Provider: &fake{id: "a"}}}, nil, func(string) (*nodev1.RuntimeClass, error) {
		return nil, errors.New("cache not synced")
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Route(podWithClass("x"))
	if err == nil || errors.Is(err, ErrClassNotFound) || !strings.Contains(err.Error(), "cache not synced") {
		t.Fatalf("err = %v", err)
	}
}

func TestNewRouterRefuses(t *testing.T) {
	a := Runtime{Name: "fake-a", Provider: &fake{id: "a"}}
	for name, tc := range map[string]struct {
		runtimes []Runtime
		handlers map[string]string
		want     string
	}{
		"none":            {want: "no provider"},
		"duplicate":       {runtimes: []Runtime{a, a}, want: `provider "fake-a" given twice`},
		"nil provider":    {runtimes: []Runtime{{Name: "x"}}, want: `provider "x" is nil`},
		"unknown handler": {runtimes: []Runtime{a}, handlers: map[string]string{"h": "cri"}, want: `handler "h" names provider "cri"`},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := NewRouter(tc.runtimes, tc.handlers, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestHandlers(t *testing.T) {
	r := newTestRouter(t)
	if got := r.Handlers(); !slices.Equal(got, []string{"fake-a", "fake-b", "spin"}) {
		t.Fatalf("Handlers = %v", got)
	}
	if got := r.HandlersOf("fake-b"); !slices.Equal(got, []string{"fake-b", "spin"}) {
		t.Fatalf("HandlersOf(fake-b) = %v", got)
	}
	if r.Default().Name != "fake-a" {
		t.Fatalf("Default = %s", r.Default().Name)
	}
	if _, err := NewRouter([]Runtime{r.Default()}, nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := (&Router{runtimes: r.runtimes}).Route(podWithClass("a")); !errors.Is(err, ErrClassNotFound) {
		t.Fatalf("router without class lookup: err = %v", err)
	}
}
