package kubelet

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"k8s.io/client-go/rest"
)

// newMetricsRegistry is the registry behind the node API's /metrics: the
// Go runtime's and the process's metrics plus the agent's own.
func newMetricsRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

var (
	apiRequests = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "krustlet", Name: "api_request_duration_seconds",
		Help:    "Duration of requests to the API server, by client (main, heartbeat), verb, resource and status code.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
	}, []string{"client", "verb", "resource", "code"})
	apiErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "krustlet", Name: "api_request_errors_total",
		Help: "Requests to the API server that failed: transport errors (code \"\") and 5xx answers.",
	}, []string{"client", "code"})
)

// instrument measures every request cfg's clients make. Lease renewals are
// the heartbeat client's PUTs on leases, so their latency is
// krustlet_api_request_duration_seconds{client="heartbeat",resource="leases",verb="PUT"}.
func instrument(cfg *rest.Config, reg *prometheus.Registry, client string) {
	if reg != nil {
		_ = reg.Register(apiRequests)
		_ = reg.Register(apiErrors)
	}
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripperFunc(func(r *http.Request) (*http.Response, error) {
			start := time.Now()
			resp, err := rt.RoundTrip(r)
			code := ""
			if resp != nil {
				code = strconv.Itoa(resp.StatusCode)
			}
			apiRequests.WithLabelValues(client, r.Method, resource(r.URL.Path), code).Observe(time.Since(start).Seconds())
			if err != nil || (resp != nil && resp.StatusCode >= 500) {
				apiErrors.WithLabelValues(client, code).Inc()
			}
			return resp, err
		})
	})
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// resource extracts the resource of an API path: /api/v1/namespaces/x/pods/y
// → pods; /apis/coordination.k8s.io/v1/namespaces/x/leases/y → leases.
func resource(path string) string {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	if len(parts) < 2 {
		return path
	}
	switch parts[0] {
	case "api":
		parts = parts[2:]
	case "apis":
		if len(parts) < 3 {
			return parts[1]
		}
		parts = parts[3:]
	default:
		return "nonresource"
	}
	if len(parts) >= 2 && parts[0] == "namespaces" && len(parts) > 2 {
		parts = parts[2:]
	}
	if len(parts) == 0 {
		return "namespaces"
	}
	return parts[0]
}
