// Package recorder archives every finished TaskRun and PipelineRun of every
// tenant workspace into Tekton Results, as upstream's watcher does on one
// cluster: a Result per PipelineRun (or standalone TaskRun), a Record per
// run with the whole object, and a Log record with what its steps printed,
// read from the workload cluster before the pod may go. The run is then
// annotated as upstream's watcher annotates it (results.tekton.dev/result,
// /record, /log) and marked stored (results.tekton.dev/stored), which is
// what pruning waits for.
//
// The records are written with upstream's own client code
// (github.com/tektoncd/results/pkg/watcher/results), so names, summaries
// and record types are the watcher's. Only the parent differs: it names
// the workspace as well as the namespace (results.Parent).
package recorder

import (
	"context"
	"strings"
	"time"

	kcpcache "github.com/kcp-dev/apimachinery/v2/pkg/cache"
	kcpdynamic "github.com/kcp-dev/client-go/dynamic"
	kcpdynamicinformer "github.com/kcp-dev/client-go/dynamic/dynamicinformer"
	kcpinformers "github.com/kcp-dev/client-go/informers"
	"github.com/kcp-dev/logicalcluster/v3"
	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	watcherconfig "github.com/tektoncd/results/pkg/watcher/reconciler"
	watcherresults "github.com/tektoncd/results/pkg/watcher/results"
	pb "github.com/tektoncd/results/proto/v1alpha2/results_go_proto"
	"go.uber.org/zap"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/pipelines-service/pipelines-service/pkg/fleet"
	"github.com/pipelines-service/pipelines-service/pkg/metrics"
	"github.com/pipelines-service/pipelines-service/pkg/partition"
	"github.com/pipelines-service/pipelines-service/pkg/reconciler"
	"github.com/pipelines-service/pipelines-service/pkg/results"
)

// ControllerName names the controller in logs and the work queue.
const ControllerName = "pipelines-service-results-recorder"

// Annotations upstream's watcher writes on the runs it archived.
const (
	AnnotationResult = "results.tekton.dev/result"
	AnnotationRecord = "results.tekton.dev/record"
	AnnotationLog    = "results.tekton.dev/log"
	// AnnotationStored is "true" once the run's Record and Log are in
	// Results: only then may pruning delete the run.
	AnnotationStored = "results.tekton.dev/stored"
)

var (
	taskRunsResource     = v1.SchemeGroupVersion.WithResource("taskruns")
	pipelineRunsResource = v1.SchemeGroupVersion.WithResource("pipelineruns")
)

// Options configure a Controller.
type Options struct {
	// Tenants is a cluster-aware dynamic client on the APIExport virtual
	// workspace.
	Tenants kcpdynamic.ClusterInterface
	// TenantInformers are shared with the run reconcilers.
	TenantInformers kcpdynamicinformer.DynamicSharedInformerFactory
	// Fleet gives the workload clusters the runs' pods ran on.
	Fleet *fleet.Fleet
	// Results is the Results API.
	Results *results.Clients
	// Retention is the platform's retention policy, as the data of
	// upstream's retention ConfigMap (runAt, defaultRetention, policies);
	// what it leaves out is upstream's default (weekly, 30 days).
	Retention map[string]string
	// RetentionSource gives each workspace's own retention ConfigMap.
	RetentionSource RetentionSource
	// Events records Events into workspaces (nil: none).
	Events *reconciler.Events
	// Gate, when set, keeps the reconciles to the workspaces of the parts
	// this replica holds (partition.Partition).
	Gate reconciler.Gate
	// Metrics exports the work queue and the reconciles (may be nil).
	Metrics *metrics.Metrics
	Log     *zap.SugaredLogger
}

// Controller records finished runs.
type Controller struct {
	log     *zap.SugaredLogger
	metrics *metrics.Metrics
	queue   workqueue.TypedRateLimitingInterface[string]
	gate    reconciler.Gate
	client  *watcherresults.Client
	records recordReader
	// logReader reads stored Logs back.
	logReader pb.LogsClient
	// events records Events into workspaces; nil records none.
	events  *reconciler.Events
	logs    logSource
	kinds   map[string]kind
	objects map[string]reconciler.Objects
	// retention is the platform's policy data; retentionSource the
	// tenants' overrides.
	retention       map[string]string
	retentionSource RetentionSource
}

// kind is one of the two recorded kinds.
type kind struct {
	name     string // TaskRun, PipelineRun
	resource schema.GroupVersionResource
	informer kcpinformers.GenericClusterInformer
}

// New wires the informers and the work queue.
func New(opts Options) (*Controller, error) {
	cfg := &watcherconfig.Config{SummaryLabels: "tekton.dev/pipeline"} // upstream watcher's default
	c := &Controller{
		log:             opts.Log,
		metrics:         opts.Metrics,
		queue:           newQueue(opts.Metrics),
		gate:            opts.Gate,
		client:          watcherresults.NewClient(opts.Results.Results, opts.Results.Logs, cfg),
		records:         opts.Results.Results,
		logReader:       opts.Results.Logs,
		kinds:           map[string]kind{},
		retention:       opts.Retention,
		retentionSource: opts.RetentionSource,
		objects: map[string]reconciler.Objects{
			"TaskRun":     {Client: opts.Tenants, Resource: taskRunsResource},
			"PipelineRun": {Client: opts.Tenants, Resource: pipelineRunsResource},
		},
	}
	c.events = opts.Events
	taskRuns := opts.TenantInformers.ForResource(taskRunsResource)
	c.logs = fleetLogs{fleet: opts.Fleet, taskRuns: taskRuns.Lister()}
	for _, k := range []kind{
		{name: "TaskRun", resource: taskRunsResource, informer: taskRuns},
		{name: "PipelineRun", resource: pipelineRunsResource, informer: opts.TenantInformers.ForResource(pipelineRunsResource)},
	} {
		c.kinds[k.name] = k
		if _, err := k.informer.Informer().AddEventHandler(c.handler(k.name)); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// handler queues runs that are done and not yet stored: most events of a
// run come before it is done and concern the recorder not at all.
func (c *Controller) handler(kindName string) cache.ResourceEventHandler {
	enqueue := func(obj any) {
		u, ok := obj.(*unstructured.Unstructured)
		if !ok || !needsRecording(u) {
			return
		}
		if key, err := kcpcache.MetaClusterNamespaceKeyFunc(u); err == nil {
			c.queue.Add(kindName + "|" + key)
		}
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
	}
}

// needsRecording says a run is done (Succeeded True or False) and not
// marked stored.
func needsRecording(u *unstructured.Unstructured) bool {
	if u.GetAnnotations()[AnnotationStored] == "true" || u.GetDeletionTimestamp() != nil {
		return false
	}
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, cond := range conds {
		m, _ := cond.(map[string]any)
		if m["type"] == "Succeeded" && (m["status"] == "True" || m["status"] == "False") {
			return true
		}
	}
	return false
}

// Run records and prunes until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) {
	if c.retentionSource != nil {
		go c.runPruner(ctx)
	}
	reconciler.Workers{Name: "record", Queue: c.queue, Reconcile: c.reconcileKey, Metrics: c.metrics, Log: c.log, Gate: c.gate, WorkspaceOf: workspaceOf}.Run(ctx, workers)
}

// workspaceOf is the workspace of a queued key (kind|cluster|namespace/name).
func workspaceOf(key string) string {
	_, objectKey := splitKey(key)
	cluster, _, _, err := kcpcache.SplitMetaClusterNamespaceKey(objectKey)
	if err != nil {
		return ""
	}
	return cluster.String()
}

// Parts queues the runs to record of a part this replica takes.
func (c *Controller) Parts() partition.Handler {
	return partition.Handler{Taken: func(in func(string) bool) {
		for name, k := range c.kinds {
			for _, obj := range k.informer.Informer().GetStore().List() {
				u, ok := obj.(*unstructured.Unstructured)
				if !ok || !in(logicalcluster.From(u).String()) || !needsRecording(u) {
					continue
				}
				if key, err := kcpcache.MetaClusterNamespaceKeyFunc(u); err == nil {
					c.queue.Add(name + "|" + key)
				}
			}
		}
	}}
}

func splitKey(key string) (kindName, objectKey string) {
	kindName, objectKey, _ = strings.Cut(key, "|")
	return kindName, objectKey
}

// newQueue backs off at most maxBackoff: when the Results API is down,
// every finished run fails to record, and all of them are to be recorded
// soon after it is back, not after client-go's default 1000 s.
func newQueue(m *metrics.Metrics) workqueue.TypedRateLimitingInterface[string] {
	return workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.NewTypedItemExponentialFailureRateLimiter[string](100*time.Millisecond, maxBackoff),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: ControllerName, MetricsProvider: m.QueueProvider()})
}

const maxBackoff = 20 * time.Second

// retryUnreachable is how soon a run whose workload cluster does not
// answer is tried again: its logs are there.
const retryUnreachable = 15 * time.Second
