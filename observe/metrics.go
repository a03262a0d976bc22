package observe

import (
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/hardened-runtime/hardened/observe/event"
)

// containerLabels name a container in every per-container metric: the
// containerd namespace, and the Kubernetes namespace, pod and container
// name as cAdvisor and kube-state-metrics call them; outside Kubernetes
// namespace and pod are empty and container is the containerd id. Container
// ids are not labels: a restarted container continues its pod's series.
var containerLabels = []string{"containerd_namespace", "namespace", "pod", "container"}

type seriesKey [4]string

func labelsOf(c event.Container) seriesKey {
	name := c.Name
	if c.Pod == "" && name == "" {
		name = c.ID
	}
	return seriesKey{c.Namespace, c.PodNamespace, c.Pod, name}
}

func (k seriesKey) labels() prometheus.Labels {
	return prometheus.Labels{"containerd_namespace": k[0], "namespace": k[1], "pod": k[2], "container": k[3]}
}

// Metrics are the observer's Prometheus metrics.
type Metrics struct {
	reg          *prometheus.Registry
	denied       *prometheus.CounterVec
	audited      *prometheus.CounterVec
	execs        *prometheus.CounterVec
	records      *prometheus.CounterVec
	unattributed prometheus.Counter
}

// NewMetrics registers the metrics, and the Go and process collectors, in
// a registry of their own. stats reports the observer's own counters at
// scrape time.
func NewMetrics(stats func() Stats) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.denied = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hardened_seccomp_denied_total",
		Help: "Syscalls the seccomp filter of a hardened container denied, by syscall and action (errno, kill_process, ...); expected=\"true\" for probes the level denies by design (clone3).",
	}, append(containerLabels[:4:4], "syscall", "action", "expected"))
	m.audited = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hardened_seccomp_audited_total",
		Help: "Syscalls a hardened container's level would deny and let run because its seccomp.mode is audit (trial mode).",
	}, append(containerLabels[:4:4], "syscall"))
	m.execs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hardened_execs_total",
		Help: "Processes exec'd into hardened containers (kubectl exec, ctr task exec, exec probes), by decision (allowed, refused).",
	}, append(containerLabels[:4:4], "decision"))
	m.records = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hardened_observe_records_total",
		Help: "Seccomp audit records the observer read, by source (netlink, kmsg).",
	}, []string{"source"})
	m.unattributed = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "hardened_observe_unattributed_records_total",
		Help: "Seccomp audit records of processes in no hardened container (host processes with filters of their own, other runtimes' containers).",
	})
	stat := func(name, help string, f func(Stats) float64, counter bool) prometheus.Collector {
		if counter {
			return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return f(stats()) })
		}
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return f(stats()) })
	}
	m.reg.MustRegister(m.denied, m.audited, m.execs, m.records, m.unattributed,
		stat("hardened_observe_overruns_total", "Times the kernel dropped audit records or process events because the observer fell behind (each may be many records).",
			func(s Stats) float64 { return float64(s.Overruns) }, true),
		stat("hardened_observe_events_suppressed_total", "Events the rate limit held back (their counts go into later events).",
			func(s Stats) float64 { return float64(s.Suppressed) }, true),
		stat("hardened_observe_records_dropped_total", "Records counted in metrics only because too many (container, syscall, action) were tracked at once.",
			func(s Stats) float64 { return float64(s.Overflow) }, true),
		stat("hardened_observe_containers", "Hardened containers the observer knows.",
			func(s Stats) float64 { return float64(s.Containers) }, false),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Registry is the metrics' registry (for tests and embedding).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

func (m *Metrics) record(source string) { m.records.WithLabelValues(source).Inc() }

func (m *Metrics) denial(d Denial) {
	if d.Container.ID == "" {
		m.unattributed.Inc()
		return
	}
	k := labelsOf(d.Container)
	if d.Action == "log" {
		m.audited.WithLabelValues(k[0], k[1], k[2], k[3], d.Syscall).Inc()
		return
	}
	m.denied.WithLabelValues(k[0], k[1], k[2], k[3], d.Syscall, d.Action, strconv.FormatBool(d.Expected)).Inc()
}

func (m *Metrics) exec(e *event.Event) {
	k := labelsOf(e.Container)
	decision := "allowed"
	if e.Exec.Refused {
		decision = "refused"
	}
	m.execs.WithLabelValues(k[0], k[1], k[2], k[3], decision).Inc()
}

// forget deletes the series of a container's names once no live container
// has them, so that pods that come and go do not grow the metrics forever.
func (m *Metrics) forget(c event.Container) {
	l := labelsOf(c).labels()
	m.denied.DeletePartialMatch(l)
	m.audited.DeletePartialMatch(l)
	m.execs.DeletePartialMatch(l)
}
