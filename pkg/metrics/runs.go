package metrics

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/kcp-dev/logicalcluster/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/tektoncd/pipeline/pkg/apis/pipeline"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/cache"
)

// Names, labels, buckets and status values are tektoncd/pipeline's
// (pkg/taskrunmetrics, pkg/pipelinerunmetrics, v1.9) at the defaults of
// its config-observability: histograms, level "task" and "pipeline", no
// reason label. knative's Prometheus exporter prefixes them with the
// component, "tekton_pipelines_controller".
const (
	namespace = "tekton_pipelines_controller"
	anonymous = "anonymous"
	// otherValues is the value of a bounded label beyond its bound.
	otherValues = "other"
)

var durationBuckets = []float64{10, 30, 60, 300, 900, 1800, 3600, 5400, 10800, 21600, 43200, 86400}

// Lister lists the runs of every workspace (a kcp cluster-aware lister's
// List).
type Lister interface {
	List(selector labels.Selector) ([]runtime.Object, error)
}

// Runs are Tekton's run metrics. Durations and totals are recorded when an
// informer sees a run become done, once per run and process (a relist
// after a restart sees runs already done: they are not counted again).
// The running gauges count the informers' caches at each scrape, as
// Tekton's RunningTaskRuns lists its lister.
type Runs struct {
	workspaceLabel bool
	// leading: only the leader records and exports (Metrics.SetLeading).
	leading atomic.Bool

	// workspaces bound the workspace label; names the values tenants
	// choose (namespace, task, pipeline), one bound per label, so that a
	// tenant creating runs under ever new names cannot grow the series
	// (and the controller's memory) without end.
	workspaces *bounded
	names      map[string]*bounded

	mu       sync.Mutex
	taskRuns Lister
	pipeRuns Lister

	prDuration   *prometheus.HistogramVec
	prTRDuration *prometheus.HistogramVec
	trDuration   *prometheus.HistogramVec
	prTotal      *prometheus.CounterVec
	trTotal      *prometheus.CounterVec
	runningPRs   *prometheus.Desc
	runningTRs   *prometheus.Desc
}

func newRuns(opts Options) *Runs {
	with := func(l ...string) []string {
		if opts.WorkspaceLabel {
			return append(l, "workspace")
		}
		return l
	}
	histogram := func(name, help string, l ...string) *prometheus.HistogramVec {
		return prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Name: name, Help: help, Buckets: durationBuckets}, with(l...))
	}
	counter := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help}, with("status"))
	}
	return &Runs{
		workspaceLabel: opts.WorkspaceLabel,
		workspaces:     newBounded(opts.MaxWorkspaces),
		names:          map[string]*bounded{"namespace": newBounded(opts.MaxLabelValues), "task": newBounded(opts.MaxLabelValues), "pipeline": newBounded(opts.MaxLabelValues)},
		prDuration:     histogram("pipelinerun_duration_seconds", "The pipelinerun execution time in seconds", "status", "namespace", "pipeline"),
		prTRDuration:   histogram("pipelinerun_taskrun_duration_seconds", "The pipelinerun's taskrun execution time in seconds", "status", "namespace", "pipeline", "task"),
		trDuration:     histogram("taskrun_duration_seconds", "The taskrun's execution time in seconds", "status", "namespace", "task"),
		prTotal:        counter("pipelinerun_total", "Number of pipelineruns"),
		trTotal:        counter("taskrun_total", "Number of taskruns"),
		runningPRs:     prometheus.NewDesc(namespace+"_running_pipelineruns", "Number of pipelineruns executing currently", with(), nil),
		runningTRs:     prometheus.NewDesc(namespace+"_running_taskruns", "Number of taskruns executing currently", with(), nil),
	}
}

func (r *Runs) register(reg *prometheus.Registry) {
	reg.MustRegister(r.prDuration, r.prTRDuration, r.trDuration, r.prTotal, r.trTotal, r)
}

// Watch feeds the metrics from the TaskRun and PipelineRun informers of
// every workspace.
func (r *Runs) Watch(taskRuns, pipelineRuns cache.SharedIndexInformer, taskRunLister, pipelineRunLister Lister) error {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	r.taskRuns, r.pipeRuns = taskRunLister, pipelineRunLister
	r.mu.Unlock()
	if _, err := taskRuns.AddEventHandler(cache.ResourceEventHandlerFuncs{UpdateFunc: r.onUpdate(r.taskRunDone)}); err != nil {
		return err
	}
	_, err := pipelineRuns.AddEventHandler(cache.ResourceEventHandlerFuncs{UpdateFunc: r.onUpdate(r.pipelineRunDone)})
	return err
}

// onUpdate calls done for a run that was not done before this update and
// is now.
func (r *Runs) onUpdate(done func(*unstructured.Unstructured, run)) func(old, new any) {
	return func(old, new any) {
		o, ok1 := old.(*unstructured.Unstructured)
		n, ok2 := new.(*unstructured.Unstructured)
		if !ok1 || !ok2 || !r.leading.Load() {
			return
		}
		if before, now := runOf(o), runOf(n); !before.done() && now.done() {
			done(n, now)
		}
	}
}

// TaskRunDone records a TaskRun that just finished.
func (r *Runs) taskRunDone(tr *unstructured.Unstructured, s run) {
	ws := r.workspace(logicalcluster.From(tr).String())
	labels := tr.GetLabels()
	namespace, task := r.names["namespace"].value(tr.GetNamespace()), r.names["task"].value(taskName(tr))
	if pipelineName, prName := labels[pipeline.PipelineLabelKey], labels[pipeline.PipelineRunLabelKey]; pipelineName != "" && prName != "" {
		r.prTRDuration.WithLabelValues(r.values(ws, s.status(false), namespace, r.names["pipeline"].value(pipelineName), task)...).Observe(s.duration())
	} else {
		r.trDuration.WithLabelValues(r.values(ws, s.status(false), namespace, task)...).Observe(s.duration())
	}
	r.trTotal.WithLabelValues(r.values(ws, s.status(false))...).Inc()
}

// pipelineRunDone records a PipelineRun that just finished.
func (r *Runs) pipelineRunDone(pr *unstructured.Unstructured, s run) {
	ws := r.workspace(logicalcluster.From(pr).String())
	namespace, name := r.names["namespace"].value(pr.GetNamespace()), r.names["pipeline"].value(pipelineName(pr))
	r.prDuration.WithLabelValues(r.values(ws, s.status(true), namespace, name)...).Observe(s.duration())
	r.prTotal.WithLabelValues(r.values(ws, s.status(true))...).Inc()
}

// values are the label values, the workspace last where it is a label.
func (r *Runs) values(workspace string, values ...string) []string {
	if r.workspaceLabel {
		return append(values, workspace)
	}
	return values
}

// workspace is the label value of a workspace ("" without the label).
func (r *Runs) workspace(name string) string {
	if !r.workspaceLabel {
		return ""
	}
	return r.workspaces.value(name)
}

// bounded passes the first max distinct values it is given and turns
// every later one into "other".
type bounded struct {
	mu   sync.Mutex
	max  int
	seen map[string]bool
}

func newBounded(max int) *bounded { return &bounded{max: max, seen: map[string]bool{}} }

func (b *bounded) value(v string) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.seen[v] {
		return v
	}
	if len(b.seen) >= b.max {
		return otherValues
	}
	b.seen[v] = true
	return v
}

// Describe is prometheus.Collector's, for the running gauges.
func (r *Runs) Describe(ch chan<- *prometheus.Desc) {
	ch <- r.runningPRs
	ch <- r.runningTRs
}

// Collect counts the runs not done in the informers' caches.
func (r *Runs) Collect(ch chan<- prometheus.Metric) {
	if !r.leading.Load() {
		return
	}
	r.mu.Lock()
	taskRuns, pipelineRuns := r.taskRuns, r.pipeRuns
	r.mu.Unlock()
	r.collectRunning(ch, r.runningTRs, taskRuns)
	r.collectRunning(ch, r.runningPRs, pipelineRuns)
}

func (r *Runs) collectRunning(ch chan<- prometheus.Metric, desc *prometheus.Desc, lister Lister) {
	counts := map[string]float64{}
	if !r.workspaceLabel {
		counts[""] = 0 // upstream's gauge is there at 0 too
	}
	if lister != nil {
		objects, err := lister.List(labels.Everything())
		if err != nil {
			ch <- prometheus.NewInvalidMetric(desc, err)
			return
		}
		for _, o := range objects {
			if u, ok := o.(*unstructured.Unstructured); ok && !runOf(u).done() {
				counts[r.workspace(logicalcluster.From(u).String())]++
			}
		}
	}
	for ws, n := range counts {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, n, r.values(ws)...)
	}
}

// run is what the metrics read of a run's status.
type run struct {
	succeeded, reason string
	start, completion time.Time
}

func runOf(u *unstructured.Unstructured) run {
	var s run
	conditions, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conditions {
		if m, ok := c.(map[string]any); ok && m["type"] == "Succeeded" {
			s.succeeded, _ = m["status"].(string)
			s.reason, _ = m["reason"].(string)
		}
	}
	s.start = timeAt(u, "status", "startTime")
	s.completion = timeAt(u, "status", "completionTime")
	return s
}

func timeAt(u *unstructured.Unstructured, fields ...string) time.Time {
	v, _, _ := unstructured.NestedString(u.Object, fields...)
	t, _ := time.Parse(time.RFC3339, v)
	return t
}

func (s run) done() bool { return s.succeeded == "True" || s.succeeded == "False" }

// status is Tekton's status label: success, failed, and for PipelineRuns
// cancelled.
func (s run) status(pipelineRun bool) string {
	switch {
	case s.succeeded == "True":
		return "success"
	case pipelineRun && s.reason == "Cancelled":
		return "cancelled"
	}
	return "failed"
}

// duration is from start to completion (to now while running), 0 for a
// run that never started.
func (s run) duration() float64 {
	switch {
	case s.start.IsZero():
		return 0
	case s.completion.IsZero():
		return time.Since(s.start).Seconds()
	}
	return s.completion.Sub(s.start).Seconds()
}

// taskName is Tekton's task label: the referenced Task, the pipeline task
// of an embedded spec, the tekton.dev/task label, or "anonymous".
func taskName(tr *unstructured.Unstructured) string {
	if name, _, _ := unstructured.NestedString(tr.Object, "spec", "taskRef", "name"); name != "" {
		return name
	}
	if _, embedded, _ := unstructured.NestedMap(tr.Object, "spec", "taskSpec"); embedded {
		if name := tr.GetLabels()[pipeline.PipelineTaskLabelKey]; name != "" {
			return name
		}
		return anonymous
	}
	if name := tr.GetLabels()[pipeline.TaskLabelKey]; name != "" {
		return name
	}
	return anonymous
}

// pipelineName is Tekton's pipeline label: the referenced Pipeline, the
// tekton.dev/pipeline label of a run without a spec, or "anonymous".
func pipelineName(pr *unstructured.Unstructured) string {
	if name, _, _ := unstructured.NestedString(pr.Object, "spec", "pipelineRef", "name"); name != "" {
		return name
	}
	if _, embedded, _ := unstructured.NestedMap(pr.Object, "spec", "pipelineSpec"); embedded {
		return anonymous
	}
	if name := pr.GetLabels()[pipeline.PipelineLabelKey]; name != "" {
		return name
	}
	return anonymous
}
