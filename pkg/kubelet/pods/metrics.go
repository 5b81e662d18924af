package pods

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	v1 "k8s.io/api/core/v1"
)

// metrics are the pod workers' Prometheus metrics, named as the kubelet's
// where the kubelet has the same one.
type metrics struct {
	podStartDuration  prometheus.Histogram
	runningContainers prometheus.Gauge
	containerStarts   prometheus.Counter
	pullDuration      prometheus.Histogram
	pullErrors        prometheus.Counter
	now               func() time.Time
}

func newMetrics(reg prometheus.Registerer, now func() time.Time) *metrics {
	m := &metrics{
		podStartDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "kubelet", Name: "pod_start_duration_seconds",
			Help:    "Duration in seconds from a pod's creation to the start of its first container run on this node.",
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 20, 30, 60, 120},
		}),
		runningContainers: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "kubelet", Name: "running_containers",
			Help: "Number of containers currently running.",
		}),
		containerStarts: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "krustlet", Name: "container_starts_total",
			Help: "Container runs started, restarts included.",
		}),
		pullDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "krustlet", Name: "image_pull_duration_seconds",
			Help:    "Duration in seconds of image pulls that downloaded something.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 14),
		}),
		pullErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "krustlet", Name: "image_pull_errors_total",
			Help: "Image pulls that failed.",
		}),
		now: now,
	}
	if reg != nil {
		reg.MustRegister(m.podStartDuration, m.runningContainers, m.containerStarts, m.pullDuration, m.pullErrors)
	}
	return m
}

func (m *metrics) containerStarted(pod *v1.Pod, r *run) {
	m.runningContainers.Inc()
	m.containerStarts.Inc()
	if r.id != "" && !pod.CreationTimestamp.IsZero() && r.startedAt.Sub(pod.CreationTimestamp.Time) >= 0 && isFirstRun(pod, r) {
		m.podStartDuration.Observe(r.startedAt.Sub(pod.CreationTimestamp.Time).Seconds())
	}
}

func (m *metrics) containerExited(*run)   { m.runningContainers.Dec() }
func (m *metrics) containerAdopted()      { m.runningContainers.Inc() }
func (m *metrics) pulled(d time.Duration) { m.pullDuration.Observe(d.Seconds()) }
func (m *metrics) pullFailed()            { m.pullErrors.Inc() }

// isFirstRun reports whether r is the first run of the pod's first
// container, the moment the pod counts as started.
func isFirstRun(pod *v1.Pod, r *run) bool {
	first := ""
	switch {
	case len(pod.Spec.InitContainers) > 0:
		first = pod.Spec.InitContainers[0].Name
	case len(pod.Spec.Containers) > 0:
		first = pod.Spec.Containers[0].Name
	}
	return r.id == runID(pod.UID, first, 0)
}
