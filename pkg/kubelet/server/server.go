package server

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"

	"github.com/krustlet/krustlet-go/pkg/kubelet/pods"
	"github.com/krustlet/krustlet-go/pkg/kubelet/runtimeclass"
	"github.com/krustlet/krustlet-go/pkg/node"
)

// PodSource is what the node API reads of the pods. It must be safe for
// concurrent use.
type PodSource interface {
	// Pods lists the pods bound to this node.
	Pods() []*v1.Pod
	// RunningContainers lists the container runs in progress.
	RunningContainers() []pods.RunningContainer
	// LogFile returns the log file of a container's latest (or previous)
	// run and whether that run is still writing; errors wrap
	// pods.ErrNotFound or pods.ErrBadRequest.
	LogFile(namespace, name, container string, previous bool) (string, func() bool, error)
	// Route returns the provider a pod runs on, false until it is routed.
	Route(uid types.UID) (runtimeclass.Route, bool)
}

// Options configure the node API server.
type Options struct {
	NodeName string
	// Address and Port of the TLS endpoint (--address, --port).
	Address net.IP
	Port    int32
	// HealthzAddress and HealthzPort of the plain /healthz; port 0 disables it.
	HealthzAddress net.IP
	HealthzPort    int32
	// GetCertificate returns the current serving certificate.
	GetCertificate func(*tls.ClientHelloInfo) (*tls.Certificate, error)
	Auth           AuthOptions
	// EnableDebugging serves /containerLogs and /debug/pprof.
	EnableDebugging bool
	Pods            PodSource
	Machine         node.Machine
	// Metrics is served on /metrics.
	Metrics *prometheus.Registry
	// Healthy reports the agent's health for /healthz; nil is healthy.
	Healthy func() error
	Now     func() time.Time
}

// Server is the node API.
type Server struct {
	o       Options
	auth    *auth
	stats   *statsSource
	handler http.Handler
}

// New builds the server; Run serves it.
func New(o Options) (*Server, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Healthy == nil {
		o.Healthy = func() error { return nil }
	}
	a, err := newAuth(o.NodeName, o.Auth)
	if err != nil {
		return nil, err
	}
	s := &Server{o: o, auth: a, stats: &statsSource{
		nodeName: o.NodeName, machine: o.Machine, pods: o.Pods,
		now: o.Now, lastCPU: map[string]cpuSample{}, bootTime: bootTime(o.Machine, o.Now()),
	}}
	s.handler = a.wrap(s.routes())
	return s, nil
}

// Handler is the authenticated and authorised node API, for tests.
func (s *Server) Handler() http.Handler { return s.handler }

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", s.healthz)
	mux.HandleFunc("/pods", s.pods)
	mux.HandleFunc("/stats/summary", s.summary)
	mux.HandleFunc("/stats/", s.summary)
	resources := prometheus.NewRegistry()
	resources.MustRegister(resourceCollector{s.stats})
	mux.Handle("/metrics/resource", promhttp.HandlerFor(resources, promhttp.HandlerOpts{}))
	if s.o.Metrics != nil {
		mux.Handle("/metrics", promhttp.HandlerFor(s.o.Metrics, promhttp.HandlerOpts{}))
	}
	if s.o.EnableDebugging {
		mux.HandleFunc("/containerLogs/", s.containerLogs)
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	mux.HandleFunc("/exec/", s.exec)
	mux.HandleFunc("/attach/", s.attach)
	mux.HandleFunc("/portForward/", s.portForward)
	mux.HandleFunc("/run/", s.run)
	return mux
}

// Run serves until ctx ends, then shuts down within a few seconds.
func (s *Server) Run(ctx context.Context) error {
	logger := klog.FromContext(ctx).WithName("node-api")
	addr := net.JoinHostPort(s.o.Address.String(), strconv.Itoa(int(s.o.Port)))
	srv := &http.Server{
		Addr:    addr,
		Handler: s.handler,
		TLSConfig: &tls.Config{
			MinVersion:     tls.VersionTLS12,
			GetCertificate: s.o.GetCertificate,
			// Certificates are verified by the authenticator against the
			// client CA, as in the kubelet.
			ClientAuth: tls.RequestClientCert,
		},
		ReadHeaderTimeout: 30 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return klog.NewContext(ctx, logger) },
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("node API: %w", err)
	}
	errs := make(chan error, 2)
	go func() { errs <- srv.ServeTLS(ln, "", "") }()
	logger.Info("Serving the node API", "address", addr)

	var health *http.Server
	if s.o.HealthzPort > 0 {
		haddr := net.JoinHostPort(s.o.HealthzAddress.String(), strconv.Itoa(int(s.o.HealthzPort)))
		mux := http.NewServeMux()
		mux.HandleFunc("/healthz", s.healthz)
		health = &http.Server{Addr: haddr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		hln, err := net.Listen("tcp", haddr)
		if err != nil {
			srv.Close()
			return fmt.Errorf("healthz: %w", err)
		}
		go func() { errs <- health.Serve(hln) }()
		logger.Info("Serving healthz", "address", haddr)
	}
	select {
	case <-ctx.Done():
	case err := <-errs:
		if !errors.Is(err, http.ErrServerClosed) {
			srv.Close()
			if health != nil {
				health.Close()
			}
			return err
		}
	}
	shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdown)
	if health != nil {
		_ = health.Shutdown(shutdown)
	}
	return nil
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	if err := s.o.Healthy(); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	fmt.Fprint(w, "ok")
}

func (s *Server) pods(w http.ResponseWriter, _ *http.Request) {
	list := v1.PodList{TypeMeta: metav1.TypeMeta{Kind: "PodList", APIVersion: "v1"}}
	for _, p := range s.o.Pods.Pods() {
		list.Items = append(list.Items, *p)
	}
	writeJSON(w, list)
}

func (s *Server) summary(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/stats/summary" && r.URL.Path != "/stats/summary/" {
		http.Error(w, "only /stats/summary is served", http.StatusNotFound)
		return
	}
	writeJSON(w, s.stats.summary(r.Context()))
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(v); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
}

// bootTime reads when the machine booted, from /proc/stat's btime.
func bootTime(m node.Machine, now time.Time) time.Time {
	data, err := os.ReadFile(m.Path("/proc/stat"))
	if err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "btime "); ok {
				if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
					return time.Unix(n, 0)
				}
			}
		}
	}
	return now
}
