package server

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/krustlet/krustlet-go/pkg/kubelet/pods"
	"github.com/krustlet/krustlet-go/pkg/kubelet/runtimeclass"
	"github.com/krustlet/krustlet-go/pkg/provider"
)

// plainProvider runs containers and streams nothing.
type plainProvider struct{ containers bool }

func (p *plainProvider) Node() provider.NodeInfo { return provider.NodeInfo{Containers: p.containers} }
func (p *plainProvider) PullImage(context.Context, provider.PullRequest) (provider.Image, error) {
	return provider.Image{}, nil
}
func (p *plainProvider) StartContainer(context.Context, provider.ContainerConfig) (provider.Container, error) {
	return nil, nil
}

// streamingProvider records what it was asked and names loc as its
// streaming endpoint.
type streamingProvider struct {
	plainProvider
	loc   *url.URL
	execs []provider.ExecRequest
	fwds  []provider.PortForwardRequest
}

var _ provider.Streamer = (*streamingProvider)(nil)

func (p *streamingProvider) Exec(_ context.Context, r provider.ExecRequest) (*url.URL, error) {
	p.execs = append(p.execs, r)
	return p.loc, nil
}
func (p *streamingProvider) Attach(context.Context, provider.AttachRequest) (*url.URL, error) {
	return p.loc, nil
}
func (p *streamingProvider) PortForward(_ context.Context, r provider.PortForwardRequest) (*url.URL, error) {
	p.fwds = append(p.fwds, r)
	return p.loc, nil
}

// streamPods is a PodSource with one running pod on one provider.
type streamPods struct {
	pod   *v1.Pod
	route runtimeclass.Route
}

func (s *streamPods) Pods() []*v1.Pod { return []*v1.Pod{s.pod} }
func (s *streamPods) RunningContainers() []pods.RunningContainer {
	return []pods.RunningContainer{{Pod: s.pod, Container: "app", ID: "uid_app_0", Provider: s.route.Runtime.Provider}}
}
func (s *streamPods) LogFile(string, string, string, bool) (string, func() bool, error) {
	return "", nil, pods.ErrNotFound
}
func (s *streamPods) Route(uid types.UID) (runtimeclass.Route, bool) {
	return s.route, uid == s.pod.UID
}

func streamServer(p provider.Provider, name string) *Server {
	pod := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web", UID: "uid"},
		Spec: v1.PodSpec{Containers: []v1.Container{{Name: "app"}}}}
	return &Server{o: Options{Pods: &streamPods{pod: pod, route: runtimeclass.Route{Runtime: runtimeclass.Runtime{Name: name, Provider: p}}}}}
}

func serve(s *Server, method, target string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	s.routes().ServeHTTP(rec, httptest.NewRequest(method, target, nil))
	return rec
}

func TestStreamingNotSupported(t *testing.T) {
	for _, tc := range []struct {
		target, want string
		containers   bool
	}{
		{"/exec/default/web/app?command=sh", "exec is not supported by the wasmtime provider, which runs pod default/web: it serves no exec, attach or port-forward (a WebAssembly module has no shell", false},
		{"/attach/default/web/uid/app?stdout=1", "attach is not supported by the wasmtime provider", false},
		{"/portForward/default/web?port=80", "portForward is not supported by the wasmtime provider", false},
		{"/exec/default/web/app?command=sh", "exec is not supported by the oci provider, which runs pod default/web: it serves no exec, attach or port-forward\n", true},
		{"/run/default/web/app", "run is not supported by this node", false},
	} {
		name := "wasmtime"
		if tc.containers {
			name = "oci"
		}
		rec := serve(streamServer(&plainProvider{containers: tc.containers}, name), http.MethodPost, tc.target)
		if rec.Code != http.StatusNotImplemented || !strings.HasPrefix(rec.Body.String(), tc.want) {
			t.Errorf("%s: %d %q, want 501 %q", tc.target, rec.Code, rec.Body.String(), tc.want)
		}
	}
}

func TestStreamingBadRequests(t *testing.T) {
	s := streamServer(&streamingProvider{}, "cri")
	for target, want := range map[string]int{
		"/exec/default/web":                 http.StatusBadRequest,
		"/exec/default/web/app":             http.StatusBadRequest, // no command
		"/exec/default/other/app?command=x": http.StatusNotFound,
		"/exec/default/web/db?command=x":    http.StatusNotFound,
		"/portForward/default/web?port=0":   http.StatusBadRequest,
		"/portForward/default/web?port=x":   http.StatusBadRequest,
	} {
		if rec := serve(s, http.MethodPost, target); rec.Code != want {
			t.Errorf("%s: %d %q, want %d", target, rec.Code, rec.Body.String(), want)
		}
	}
}

func TestStreamingProxiesToProvider(t *testing.T) {
	var reached []string
	endpoint := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached = append(reached, r.URL.Path)
	}))
	defer endpoint.Close()
	loc, _ := url.Parse(endpoint.URL + "/session/1")
	p := &streamingProvider{loc: loc}
	s := streamServer(p, "cri")
	// A plain request is refused by the proxy, which only passes upgraded
	// (SPDY or WebSocket) connections; reaching it shows the provider was
	// asked with the right request.
	rec := serve(s, http.MethodPost, "/exec/default/web/app?command=ls&command=-l&stdout=1&tty=true")
	if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "Upgrade request required") {
		t.Fatalf("exec: %d %q", rec.Code, rec.Body.String())
	}
	if len(p.execs) != 1 || !slices.Equal(p.execs[0].Cmd, []string{"ls", "-l"}) || p.execs[0].ContainerID != "uid_app_0" ||
		!p.execs[0].Stdout || !p.execs[0].TTY || p.execs[0].Stdin || p.execs[0].Stderr {
		t.Fatalf("exec request = %+v", p.execs)
	}
	serve(s, http.MethodPost, "/portForward/default/web?port=8080&port=9090")
	if len(p.fwds) != 1 || p.fwds[0].PodUID != "uid" || !slices.Equal(p.fwds[0].Ports, []int32{8080, 9090}) {
		t.Fatalf("port-forward request = %+v", p.fwds)
	}
}
