package server

import (
	"context"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	statsv1alpha1 "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/krustlet/krustlet-go/pkg/kubelet/pods"
	"github.com/krustlet/krustlet-go/pkg/node"
	"github.com/krustlet/krustlet-go/pkg/provider"
)

// userHZ is the unit of /proc/stat: clock ticks per second on Linux.
const userHZ = 100

// statsSource reads what /stats/summary and /metrics/resource report.
type statsSource struct {
	nodeName string
	machine  node.Machine
	pods     PodSource
	bootTime time.Time
	now      func() time.Time
	mu       sync.Mutex
	lastCPU  map[string]cpuSample
}

type cpuSample struct {
	at    time.Time
	nanos uint64
}

// nodeCPU returns the CPU time the machine has spent busy, from /proc/stat.
func (s *statsSource) nodeCPU() (uint64, bool) {
	data, err := os.ReadFile(s.machine.Path("/proc/stat"))
	if err != nil {
		return 0, false
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0, false
	}
	var busy uint64
	for i, v := range f[1:] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			continue
		}
		busy += n
	}
	return busy * (1e9 / userHZ), true
}

// rate is the CPU use in nanocores since the previous reading of key.
func (s *statsSource) rate(key string, at time.Time, nanos uint64) *uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	prev, ok := s.lastCPU[key]
	s.lastCPU[key] = cpuSample{at: at, nanos: nanos}
	if !ok || !at.After(prev.at) || nanos < prev.nanos {
		return nil
	}
	r := uint64(float64(nanos-prev.nanos) / at.Sub(prev.at).Seconds())
	return &r
}

type containerReading struct {
	rc    pods.RunningContainer
	stats provider.ContainerStats
}

// containers reads every running container.
func (s *statsSource) containers(ctx context.Context) []containerReading {
	var out []containerReading
	for _, rc := range s.pods.RunningContainers() {
		sp, ok := rc.Provider.(provider.StatsProvider)
		if !ok {
			continue
		}
		st, err := sp.ContainerStats(ctx, rc.ID)
		if err != nil {
			klog.FromContext(ctx).V(4).Info("No stats for container", "id", rc.ID, "err", err)
			continue
		}
		out = append(out, containerReading{rc: rc, stats: st})
	}
	return out
}

// summary builds the Summary API answer.
func (s *statsSource) summary(ctx context.Context) statsv1alpha1.Summary {
	now := s.now()
	mt := metav1.NewTime(now)
	sum := statsv1alpha1.Summary{Node: statsv1alpha1.NodeStats{NodeName: s.nodeName, StartTime: metav1.NewTime(s.bootTime)}}
	if cpu, ok := s.nodeCPU(); ok {
		sum.Node.CPU = &statsv1alpha1.CPUStats{Time: mt, UsageCoreNanoSeconds: &cpu, UsageNanoCores: s.rate("node", now, cpu)}
	}
	if u, err := s.machine.Usage(); err == nil {
		ws := uint64(u.MemoryCapacityBytes - u.MemoryAvailableBytes)
		avail := uint64(u.MemoryAvailableBytes)
		sum.Node.Memory = &statsv1alpha1.MemoryStats{Time: mt, AvailableBytes: &avail, UsageBytes: &ws, WorkingSetBytes: &ws}
		capacity, available := uint64(u.FsCapacityBytes), uint64(u.FsAvailableBytes)
		used := capacity - available
		inodes, free := uint64(u.FsInodes), uint64(u.FsInodesFree)
		fs := &statsv1alpha1.FsStats{Time: mt, CapacityBytes: &capacity, AvailableBytes: &available, UsedBytes: &used, Inodes: &inodes, InodesFree: &free}
		sum.Node.Fs = fs
		sum.Node.Runtime = &statsv1alpha1.RuntimeStats{ImageFs: fs}
		maxPID, curPID := u.PIDsMax, u.PIDsMax-u.PIDsAvailable
		sum.Node.Rlimit = &statsv1alpha1.RlimitStats{Time: mt, MaxPID: &maxPID, NumOfRunningProcesses: &curPID}
	}

	byPod := map[string]*statsv1alpha1.PodStats{}
	var order []string
	for _, p := range s.pods.Pods() {
		if p.Status.Phase == v1.PodSucceeded || p.Status.Phase == v1.PodFailed {
			continue
		}
		ps := &statsv1alpha1.PodStats{PodRef: statsv1alpha1.PodReference{Name: p.Name, Namespace: p.Namespace, UID: string(p.UID)}, Containers: []statsv1alpha1.ContainerStats{}}
		if p.Status.StartTime != nil {
			ps.StartTime = *p.Status.StartTime
		}
		byPod[string(p.UID)] = ps
		order = append(order, string(p.UID))
	}
	for _, r := range s.containers(ctx) {
		ps, ok := byPod[string(r.rc.Pod.UID)]
		if !ok {
			continue
		}
		t := metav1.NewTime(r.stats.Timestamp)
		cpu, mem := r.stats.CPUNanos, r.stats.MemoryBytes
		ps.Containers = append(ps.Containers, statsv1alpha1.ContainerStats{
			Name:      r.rc.Container,
			StartTime: metav1.NewTime(r.rc.StartedAt),
			CPU:       &statsv1alpha1.CPUStats{Time: t, UsageCoreNanoSeconds: &cpu, UsageNanoCores: s.rate(r.rc.ID, r.stats.Timestamp, cpu)},
			Memory:    &statsv1alpha1.MemoryStats{Time: t, WorkingSetBytes: &mem, UsageBytes: &mem},
		})
	}
	for _, uid := range order {
		ps := byPod[uid]
		var cpu, mem uint64
		var nano *uint64
		for _, c := range ps.Containers {
			cpu += *c.CPU.UsageCoreNanoSeconds
			mem += *c.Memory.WorkingSetBytes
			if c.CPU.UsageNanoCores != nil {
				if nano == nil {
					nano = new(uint64)
				}
				*nano += *c.CPU.UsageNanoCores
			}
		}
		ps.CPU = &statsv1alpha1.CPUStats{Time: mt, UsageCoreNanoSeconds: &cpu, UsageNanoCores: nano}
		ps.Memory = &statsv1alpha1.MemoryStats{Time: mt, WorkingSetBytes: &mem, UsageBytes: &mem}
		sum.Pods = append(sum.Pods, *ps)
	}
	return sum
}

// resourceCollector serves /metrics/resource in the format metrics-server
// (0.6 and later) scrapes, the kubelet's resource metrics.
type resourceCollector struct{ s *statsSource }

var (
	descNodeCPU      = prometheus.NewDesc("node_cpu_usage_seconds_total", "Cumulative cpu time consumed by the node in core-seconds", nil, nil)
	descNodeMemory   = prometheus.NewDesc("node_memory_working_set_bytes", "Current working set of the node in bytes", nil, nil)
	descPodCPU       = prometheus.NewDesc("pod_cpu_usage_seconds_total", "Cumulative cpu time consumed by the pod in core-seconds", []string{"namespace", "pod"}, nil)
	descPodMemory    = prometheus.NewDesc("pod_memory_working_set_bytes", "Current working set of the pod in bytes", []string{"namespace", "pod"}, nil)
	descContCPU      = prometheus.NewDesc("container_cpu_usage_seconds_total", "Cumulative cpu time consumed by the container in core-seconds", []string{"container", "namespace", "pod"}, nil)
	descContMemory   = prometheus.NewDesc("container_memory_working_set_bytes", "Current working set of the container in bytes", []string{"container", "namespace", "pod"}, nil)
	descContStart    = prometheus.NewDesc("container_start_time_seconds", "Start time of the container since unix epoch in seconds", []string{"container", "namespace", "pod"}, nil)
	descScrapeErrors = prometheus.NewDesc("resource_scrape_error", "1 if there was an error while getting container metrics, 0 otherwise", nil, nil)
)

func (c resourceCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descNodeCPU, descNodeMemory, descPodCPU, descPodMemory, descContCPU, descContMemory, descContStart, descScrapeErrors} {
		ch <- d
	}
}

func (c resourceCollector) Collect(ch chan<- prometheus.Metric) {
	ctx := context.Background()
	sum := c.s.summary(ctx)
	scrapeError := 0.0
	at := func(t metav1.Time, m prometheus.Metric, err error) {
		if err != nil {
			scrapeError = 1
			return
		}
		ch <- prometheus.NewMetricWithTimestamp(t.Time, m)
	}
	if n := sum.Node; n.CPU != nil {
		m, err := prometheus.NewConstMetric(descNodeCPU, prometheus.CounterValue, float64(*n.CPU.UsageCoreNanoSeconds)/1e9)
		at(n.CPU.Time, m, err)
	}
	if n := sum.Node; n.Memory != nil {
		m, err := prometheus.NewConstMetric(descNodeMemory, prometheus.GaugeValue, float64(*n.Memory.WorkingSetBytes))
		at(n.Memory.Time, m, err)
	}
	for _, p := range sum.Pods {
		m, err := prometheus.NewConstMetric(descPodCPU, prometheus.CounterValue, float64(*p.CPU.UsageCoreNanoSeconds)/1e9, p.PodRef.Namespace, p.PodRef.Name)
		at(p.CPU.Time, m, err)
		m, err = prometheus.NewConstMetric(descPodMemory, prometheus.GaugeValue, float64(*p.Memory.WorkingSetBytes), p.PodRef.Namespace, p.PodRef.Name)
		at(p.Memory.Time, m, err)
		for _, cs := range p.Containers {
			m, err := prometheus.NewConstMetric(descContCPU, prometheus.CounterValue, float64(*cs.CPU.UsageCoreNanoSeconds)/1e9, cs.Name, p.PodRef.Namespace, p.PodRef.Name)
			at(cs.CPU.Time, m, err)
			m, err = prometheus.NewConstMetric(descContMemory, prometheus.GaugeValue, float64(*cs.Memory.WorkingSetBytes), cs.Name, p.PodRef.Namespace, p.PodRef.Name)
			at(cs.Memory.Time, m, err)
			m, err = prometheus.NewConstMetric(descContStart, prometheus.GaugeValue, float64(cs.StartTime.Unix()), cs.Name, p.PodRef.Namespace, p.PodRef.Name)
			at(cs.StartTime, m, err)
		}
	}
	ch <- prometheus.MustNewConstMetric(descScrapeErrors, prometheus.GaugeValue, scrapeError)
}
