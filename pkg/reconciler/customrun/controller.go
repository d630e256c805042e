// Package customrun answers tenants' CustomRuns: the service runs no
// custom-task controller, so a CustomRun nobody has picked up is told so
// in its condition instead of waiting silently. It stays Unknown, as
// upstream's semantics want (a controller of the tenant's own, watching
// its workspace, may still run it); a cancelled one ends.
package customrun

import (
	"context"

	kcpdynamic "github.com/kcp-dev/client-go/dynamic"
	kcpdynamicinformer "github.com/kcp-dev/client-go/dynamic/dynamicinformer"
	kcpinformers "github.com/kcp-dev/client-go/informers"
	"github.com/tektoncd/pipeline/pkg/apis/pipeline/v1beta1"
	"go.uber.org/zap"
	"k8s.io/client-go/util/workqueue"

	"github.com/pipelines-service/pipelines-service/pkg/metrics"
	"github.com/pipelines-service/pipelines-service/pkg/partition"
	"github.com/pipelines-service/pipelines-service/pkg/reconciler"
)

// ControllerName names the controller in logs and the work queue.
const ControllerName = "pipelines-service-customrun"

// CustomRunsResource is the resource the controller watches.
var CustomRunsResource = v1beta1.SchemeGroupVersion.WithResource("customruns")

// Options configure a Controller.
type Options struct {
	Tenants         kcpdynamic.ClusterInterface
	TenantInformers kcpdynamicinformer.DynamicSharedInformerFactory
	// Gate, when set, keeps the reconciles to the workspaces of the parts
	// this replica holds (partition.Partition).
	Gate reconciler.Gate
	// Metrics exports the work queue and the reconciles (may be nil).
	Metrics *metrics.Metrics
	Log     *zap.SugaredLogger
}

// Controller marks the CustomRuns of every tenant workspace.
type Controller struct {
	log        *zap.SugaredLogger
	metrics    *metrics.Metrics
	queue      workqueue.TypedRateLimitingInterface[string]
	gate       reconciler.Gate
	objects    reconciler.Objects
	customRuns kcpinformers.GenericClusterInformer
	// skeleton reconciles a CustomRun: get, decode, mark (kind), write.
	skeleton reconciler.Skeleton[*v1beta1.CustomRun]
}

// New wires the informer and the work queue.
func New(opts Options) (*Controller, error) {
	c := &Controller{
		log:     opts.Log,
		metrics: opts.Metrics,
		queue:   reconciler.NewQueue(ControllerName, opts.Metrics),
		gate:    opts.Gate,
		objects: reconciler.Objects{Client: opts.Tenants, Resource: CustomRunsResource},
	}
	c.customRuns = opts.TenantInformers.ForResource(CustomRunsResource)
	c.skeleton = reconciler.Skeleton[*v1beta1.CustomRun]{Lister: c.customRuns.Lister(), Objects: c.objects, Kind: kind{}, Log: c.log}
	if _, err := c.customRuns.Informer().AddEventHandler(reconciler.TenantHandler(c.queue)); err != nil {
		return nil, err
	}
	return c, nil
}

// Run runs workers until ctx ends; the informers must have synced.
func (c *Controller) Run(ctx context.Context, workers int) {
	reconciler.Workers{Name: "CustomRun", Queue: c.queue, Reconcile: c.skeleton.Reconcile, Metrics: c.metrics, Log: c.log, Gate: c.gate}.Run(ctx, workers)
}

// Parts queues every object of a part this replica takes.
func (c *Controller) Parts() partition.Handler {
	return partition.Handler{Taken: func(in func(string) bool) {
		reconciler.EnqueueWorkspaces(c.queue, c.customRuns.Informer().GetStore(), in)
	}}
}
