// Package metrics is the controller's Prometheus instrumentation: Tekton's
// own run metrics (tektoncd/pipeline's names and labels, plus the tenant's
// workspace), the work queues (client-go's workqueue metrics, under the
// names Kubernetes' controllers use), the time of each reconcile, every
// request per server (kcp, each workload cluster) and the fleet's
// admission. Each Metrics has its own registry: two controllers in one
// process (tests) never share a series.
package metrics

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/client-go/util/workqueue"
)

// Options shape the series.
type Options struct {
	// WorkspaceLabel adds a workspace label to the run metrics; off, the
	// series are upstream's exactly.
	WorkspaceLabel bool
	// MaxWorkspaces bounds the workspace label: runs of workspaces beyond
	// the first MaxWorkspaces seen count under "other" (default 1000), so
	// that a platform with many tenants cannot blow up the series count.
	MaxWorkspaces int
	// MaxLabelValues bounds each label whose values tenants choose
	// (namespace, task, pipeline) the same way (default 1000).
	MaxLabelValues int
}

// Metrics is one controller's instrumentation. A nil *Metrics records
// nothing, so that constructors used by unit tests need none.
type Metrics struct {
	registry   *prometheus.Registry
	reconciles *prometheus.HistogramVec
	requests   *prometheus.HistogramVec
	writeWaits *prometheus.HistogramVec
	queues     *queueMetrics
	leader     prometheus.Gauge
	// trace keeps the last reconciles and requests, for one object's way
	// from creation to pod (/debug/trace).
	trace trace
	// Runs are Tekton's run metrics, fed by the tenant informers.
	Runs *Runs
}

// latencyBuckets cover a request or reconcile from a millisecond (a
// workload apiserver on loopback) to a minute (a kcp write under load).
var latencyBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

// New makes a Metrics with its registry, Go and process collectors
// included.
func New(opts Options) *Metrics {
	if opts.MaxWorkspaces <= 0 {
		opts.MaxWorkspaces = 1000
	}
	if opts.MaxLabelValues <= 0 {
		opts.MaxLabelValues = 1000
	}
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		reconciles: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "pipelines_service_reconcile_duration_seconds",
			Help:    "Time of one reconcile, by controller and result (success, error).",
			Buckets: latencyBuckets,
		}, []string{"controller", "result"}),
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "pipelines_service_client_request_duration_seconds",
			Help:    "Time of the controller's API requests (watches excluded), by server (kcp or a workload cluster), verb, resource and response code.",
			Buckets: latencyBuckets,
		}, []string{"server", "verb", "resource", "code"}),
		writeWaits: newWriteWaits(),
		queues:     newQueueMetrics(),
		leader: prometheus.NewGauge(prometheus.GaugeOpts{Name: "pipelines_service_leader",
			Help: "1 while this replica holds the leader Lease and reconciles, 0 while it stands by."}),
		Runs: newRuns(opts),
	}
	m.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.reconciles, m.requests, m.writeWaits, m.leader)
	m.queues.register(m.registry)
	m.Runs.register(m.registry)
	return m
}

// SetLeading says whether this replica leads. Only the leader records and
// exports the run metrics: every replica's informers see every run, and a
// sum over replicas must count each once.
func (m *Metrics) SetLeading(leading bool) {
	if m == nil {
		return
	}
	m.Runs.leading.Store(leading)
	if leading {
		m.leader.Set(1)
	} else {
		m.leader.Set(0)
	}
}

// Register adds collectors (the fleet's admission, for one) to the
// registry.
func (m *Metrics) Register(c ...prometheus.Collector) {
	if m == nil {
		return
	}
	m.registry.MustRegister(c...)
}

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{Registry: m.registry})
}

// ObserveReconcile records one reconcile of controller.
func (m *Metrics) ObserveReconcile(controller string, d time.Duration, err error) {
	if m == nil {
		return
	}
	result := "success"
	if err != nil {
		result = "error"
	}
	m.reconciles.WithLabelValues(controller, result).Observe(d.Seconds())
}

// TraceReconcile records the span of controller's reconcile of key.
func (m *Metrics) TraceReconcile(controller, key string, start time.Time, d time.Duration) {
	if m == nil {
		return
	}
	m.trace.add(Span{Start: start, Seconds: d.Seconds(), Controller: controller, Key: key})
}

// QueueProvider is the workqueue metrics provider of this registry (nil
// for a nil Metrics: client-go's no-op then).
func (m *Metrics) QueueProvider() workqueue.MetricsProvider {
	if m == nil {
		return nil
	}
	return m.queues
}

// WrapTransport times every request but watches under server, for
// rest.Config.WrapTransport, with the apiserver's own verb and resource
// labels so that both sides of a request compare. It traces each under the
// reconcile that made it (WithReconcile).
func (m *Metrics) WrapTransport(server string) func(http.RoundTripper) http.RoundTripper {
	return func(rt http.RoundTripper) http.RoundTripper {
		if m == nil {
			return rt
		}
		return roundTripFunc(func(req *http.Request) (*http.Response, error) {
			if req.URL.Query().Get("watch") == "true" {
				return rt.RoundTrip(req)
			}
			start := time.Now()
			resp, err := rt.RoundTrip(req)
			code := "error"
			if err == nil {
				code = strconv.Itoa(resp.StatusCode)
			}
			took := time.Since(start)
			resource := ResourceOf(req.URL.Path)
			m.requests.WithLabelValues(server, req.Method, resource, code).Observe(took.Seconds())
			of := reconcileFrom(req.Context())
			m.trace.add(Span{Start: start, Seconds: took.Seconds(), Wait: waitOf(req.Context()).Seconds(),
				Controller: of.controller, Key: of.key, Server: server, Verb: req.Method, Resource: resource, Code: code})
			return resp, err
		})
	}
}

// ResourceOf is the resource (and subresource) of an API path, through a
// virtual workspace or a /clusters/<name> prefix or not: "taskruns",
// "taskruns/status", "namespaces"; "" for a path that names none.
func ResourceOf(path string) string {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	i := slices.IndexFunc(parts, func(p string) bool { return p == "api" || p == "apis" })
	if i < 0 {
		return ""
	}
	if parts[i] == "api" {
		i += 2 // api/v1
	} else {
		i += 3 // apis/<group>/<version>
	}
	if i > len(parts) {
		return ""
	}
	rest := parts[i:]
	if len(rest) > 2 && rest[0] == "namespaces" {
		rest = rest[2:] // namespaces/<ns>/<resource>/...
	}
	switch len(rest) {
	case 0:
		return ""
	case 1, 2:
		return rest[0]
	}
	return rest[0] + "/" + rest[2]
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }
