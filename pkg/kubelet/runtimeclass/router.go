package runtimeclass

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	v1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/krustlet/krustlet-go/pkg/provider"
)

// Runtime is one provider of the node under the name it was built by.
type Runtime struct {
	// Name is the provider's name, as --provider takes it.
	Name     string
	Provider provider.Provider
}

// Route is where a pod runs.
type Route struct {
	// Handler is the RuntimeClass handler the pod was routed by; empty for a
	// pod without a class.
	Handler string
	// Runtime runs the pod.
	Runtime Runtime
}

// ClassGetter returns a RuntimeClass by name, e.g. a lister's Get; a missing
// class is an apierrors NotFound.
type ClassGetter func(name string) (*nodev1.RuntimeClass, error)

// Errors of Route, wrapped with the names involved.
var (
	// ErrClassNotFound: the pod's RuntimeClass does not exist.
	ErrClassNotFound = errors.New("RuntimeClass not found")
	// ErrHandlerNotServed: no provider of this node serves the handler.
	ErrHandlerNotServed = errors.New("runtime handler not served by this node")
)

// Router picks the provider of each pod. It is safe for concurrent use.
type Router struct {
	runtimes []Runtime
	handlers map[string]int // handler → index in runtimes
	classes  ClassGetter
}

// NewRouter builds a router over runtimes, the first of which is the
// default. handlers maps each RuntimeClass handler to a runtime's name;
// every handler must name one of runtimes. classes looks up RuntimeClasses;
// nil makes every pod with a class fail to route.
func NewRouter(runtimes []Runtime, handlers map[string]string, classes ClassGetter) (*Router, error) {
	if len(runtimes) == 0 {
		return nil, errors.New("runtimeclass: no provider")
	}
	r := &Router{runtimes: slices.Clone(runtimes), handlers: map[string]int{}, classes: classes}
	index := map[string]int{}
	for i, rt := range runtimes {
		if rt.Provider == nil {
			return nil, fmt.Errorf("runtimeclass: provider %q is nil", rt.Name)
		}
		if _, dup := index[rt.Name]; dup {
			return nil, fmt.Errorf("runtimeclass: provider %q given twice", rt.Name)
		}
		index[rt.Name] = i
	}
	for h, name := range handlers {
		i, ok := index[name]
		if !ok {
			return nil, fmt.Errorf("runtimeclass: handler %q names provider %q, which this node does not run", h, name)
		}
		r.handlers[h] = i
	}
	return r, nil
}

// Route returns the runtime of pod. Errors wrap ErrClassNotFound or
// ErrHandlerNotServed, or are the lookup's own.
func (r *Router) Route(pod *v1.Pod) (Route, error) {
	if pod.Spec.RuntimeClassName == nil || *pod.Spec.RuntimeClassName == "" {
		return Route{Runtime: r.runtimes[0]}, nil
	}
	name := *pod.Spec.RuntimeClassName
	if r.classes == nil {
		return Route{}, fmt.Errorf("%w: %q (this node does not read RuntimeClasses)", ErrClassNotFound, name)
	}
	class, err := r.classes(name)
	switch {
	case apierrors.IsNotFound(err):
		return Route{}, fmt.Errorf("%w: %q", ErrClassNotFound, name)
	case err != nil:
		return Route{}, fmt.Errorf("looking up RuntimeClass %q: %w", name, err)
	}
	i, ok := r.handlers[class.Handler]
	if !ok {
		return Route{}, fmt.Errorf("%w: RuntimeClass %q has handler %q; this node serves %s",
			ErrHandlerNotServed, name, class.Handler, strings.Join(r.Handlers(), ", "))
	}
	return Route{Handler: class.Handler, Runtime: r.runtimes[i]}, nil
}

// Default is the runtime of pods without a class.
func (r *Router) Default() Runtime { return r.runtimes[0] }

// Runtimes lists the node's providers, the default first.
func (r *Router) Runtimes() []Runtime { return slices.Clone(r.runtimes) }

// Handlers lists the handlers served, sorted.
func (r *Router) Handlers() []string {
	out := make([]string, 0, len(r.handlers))
	for h := range r.handlers {
		out = append(out, h)
	}
	slices.Sort(out)
	return out
}

// HandlersOf lists the handlers a runtime serves, sorted.
func (r *Router) HandlersOf(name string) []string {
	var out []string
	for h, i := range r.handlers {
		if r.runtimes[i].Name == name {
			out = append(out, h)
		}
	}
	slices.Sort(out)
	return out
}
