package server

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/proxy"
	"k8s.io/klog/v2"

	"github.com/krustlet/krustlet-go/pkg/provider"
)

// Streaming: /exec, /attach and /portForward, as the kubelet serves them.
// The pod's provider prepares the session and names a streaming endpoint
// (provider.Streamer); the client's upgraded connection is proxied to it.
// A provider without the capability gets 501 naming it.

// streamTarget is the pod (and the run of its container) a streaming
// request is for.
type streamTarget struct {
	pod       *v1.Pod
	container string
	// runID is the provider's ID of the container's run in progress.
	runID    string
	streamer provider.Streamer
}

// target parses /{verb}/{namespace}/{pod}[/{uid}][/{container}] and finds the
// pod, its container's run and its provider's streaming capability. It
// answers the request itself and returns false when it cannot be served.
func (s *Server) target(w http.ResponseWriter, r *http.Request, verb string, withContainer bool) (streamTarget, bool) {
	parts := strings.Split(strings.Trim(strings.TrimPrefix(r.URL.Path, "/"+verb+"/"), "/"), "/")
	var ns, name, uid, container string
	switch {
	case withContainer && len(parts) == 3:
		ns, name, container = parts[0], parts[1], parts[2]
	case withContainer && len(parts) == 4:
		ns, name, uid, container = parts[0], parts[1], parts[2], parts[3]
	case !withContainer && len(parts) == 2:
		ns, name = parts[0], parts[1]
	case !withContainer && len(parts) == 3:
		ns, name, uid = parts[0], parts[1], parts[2]
	default:
		want := "{namespace}/{pod}"
		if withContainer {
			want += "/{container}"
		}
		http.Error(w, fmt.Sprintf("expected /%s/%s", verb, want), http.StatusBadRequest)
		return streamTarget{}, false
	}
	var pod *v1.Pod
	for _, p := range s.o.Pods.Pods() {
		if p.Namespace == ns && p.Name == name && (uid == "" || string(p.UID) == uid) {
			pod = p
		}
	}
	if pod == nil {
		http.Error(w, fmt.Sprintf("pod %q in namespace %q is not on this node", name, ns), http.StatusNotFound)
		return streamTarget{}, false
	}
	if withContainer && !slices.ContainsFunc(pod.Spec.Containers, func(c v1.Container) bool { return c.Name == container }) &&
		!slices.ContainsFunc(pod.Spec.InitContainers, func(c v1.Container) bool { return c.Name == container }) {
		http.Error(w, fmt.Sprintf("container %q is not in pod %q", container, name), http.StatusNotFound)
		return streamTarget{}, false
	}
	route, ok := s.o.Pods.Route(pod.UID)
	if !ok {
		http.Error(w, fmt.Sprintf("pod %q has no provider yet: it has not started", name), http.StatusServiceUnavailable)
		return streamTarget{}, false
	}
	st, ok := route.Runtime.Provider.(provider.Streamer)
	if !ok {
		msg := fmt.Sprintf("%s is not supported by the %s provider, which runs pod %s/%s: it serves no exec, attach or port-forward", verb, route.Runtime.Name, ns, name)
		if !route.Runtime.Provider.Node().Containers {
			msg += " (a WebAssembly module has no shell, no process to attach to and no network namespace to forward into)"
		}
		http.Error(w, msg, http.StatusNotImplemented)
		return streamTarget{}, false
	}
	t := streamTarget{pod: pod, container: container, streamer: st}
	if withContainer {
		for _, rc := range s.o.Pods.RunningContainers() {
			if rc.Pod.UID == pod.UID && rc.Container == container {
				t.runID = rc.ID
			}
		}
		if t.runID == "" {
			http.Error(w, fmt.Sprintf("container %q of pod %q is not running", container, name), http.StatusBadRequest)
			return streamTarget{}, false
		}
	}
	return t, true
}

// streamFlags reads the stdin/stdout/stderr/tty query flags of exec and
// attach (kubectl's names, and the older input/output/error).
func streamFlags(q url.Values) (stdin, stdout, stderr, tty bool) {
	flag := func(names ...string) bool {
		for _, n := range names {
			if b, err := strconv.ParseBool(q.Get(n)); err == nil && b {
				return true
			}
		}
		return false
	}
	return flag("stdin", "input"), flag("stdout", "output"), flag("stderr", "error"), flag("tty")
}

func (s *Server) exec(w http.ResponseWriter, r *http.Request) {
	t, ok := s.target(w, r, "exec", true)
	if !ok {
		return
	}
	q := r.URL.Query()
	cmd := q["command"]
	if len(cmd) == 0 {
		http.Error(w, "exec needs at least one command parameter", http.StatusBadRequest)
		return
	}
	req := provider.ExecRequest{ContainerID: t.runID, Cmd: cmd}
	req.Stdin, req.Stdout, req.Stderr, req.TTY = streamFlags(q)
	loc, err := t.streamer.Exec(r.Context(), req)
	s.proxyStream(w, r, loc, err)
}

func (s *Server) attach(w http.ResponseWriter, r *http.Request) {
	t, ok := s.target(w, r, "attach", true)
	if !ok {
		return
	}
	req := provider.AttachRequest{ContainerID: t.runID}
	req.Stdin, req.Stdout, req.Stderr, req.TTY = streamFlags(r.URL.Query())
	loc, err := t.streamer.Attach(r.Context(), req)
	s.proxyStream(w, r, loc, err)
}

func (s *Server) portForward(w http.ResponseWriter, r *http.Request) {
	t, ok := s.target(w, r, "portForward", false)
	if !ok {
		return
	}
	req := provider.PortForwardRequest{PodUID: string(t.pod.UID)}
	for _, p := range r.URL.Query()["port"] {
		n, err := strconv.ParseUint(p, 10, 16)
		if err != nil || n == 0 {
			http.Error(w, fmt.Sprintf("invalid port %q", p), http.StatusBadRequest)
			return
		}
		req.Ports = append(req.Ports, int32(n))
	}
	loc, err := t.streamer.PortForward(r.Context(), req)
	s.proxyStream(w, r, loc, err)
}

// run is the kubelet's debugging /run: running a command without streams.
// No provider offers it.
func (s *Server) run(w http.ResponseWriter, _ *http.Request) {
	http.Error(w, "run is not supported by this node: use exec", http.StatusNotImplemented)
}

// proxyStream hands the client's connection to the provider's streaming
// endpoint.
func (s *Server) proxyStream(w http.ResponseWriter, r *http.Request, loc *url.URL, err error) {
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	h := proxy.NewUpgradeAwareHandler(loc, nil, false, true, errorResponder{})
	h.ServeHTTP(w, r)
}

type errorResponder struct{}

func (errorResponder) Error(w http.ResponseWriter, r *http.Request, err error) {
	code := http.StatusInternalServerError
	var status apierrors.APIStatus
	if errors.As(err, &status) && status.Status().Code != 0 {
		code = int(status.Status().Code)
	}
	klog.FromContext(r.Context()).V(2).Info("Proxying a stream failed", "err", err, "code", code)
	http.Error(w, err.Error(), code)
}
