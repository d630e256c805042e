// Package persistentvolumeclaim syncs tenants' PersistentVolumeClaims
// (exported to their workspaces, which have no storage of their own) to
// the workload cluster, and the claims' status back. A claim made from a
// volumeClaimTemplate is a tenant PVC owned by its run, so it goes with the
// run, as in Tekton.
package persistentvolumeclaim

import (
	"context"

	kcpdynamic "github.com/kcp-dev/client-go/dynamic"
	kcpdynamicinformer "github.com/kcp-dev/client-go/dynamic/dynamicinformer"
	kcpinformers "github.com/kcp-dev/client-go/informers"
	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/util/workqueue"

	"github.com/pipelines-service/pipelines-service/pkg/fleet"
	"github.com/pipelines-service/pipelines-service/pkg/metrics"
	"github.com/pipelines-service/pipelines-service/pkg/partition"
	"github.com/pipelines-service/pipelines-service/pkg/reconciler"
	"github.com/pipelines-service/pipelines-service/pkg/reconciler/placement"
	"github.com/pipelines-service/pipelines-service/pkg/workload"
)

// ControllerName names the controller in logs and the work queue.
const ControllerName = "pipelines-service-persistentvolumeclaim"

// Finalizer is what earlier versions kept a tenant PVC with until its
// workload PVC was gone; it is removed where found and added no more.
const Finalizer = "pipelines-service.dev/workload-pvc"

// Resource is the exported PVC resource in tenant workspaces.
var Resource = corev1.SchemeGroupVersion.WithResource("persistentvolumeclaims")

// Fleet is what the claim reconciler uses of the workload clusters
// (*fleet.Fleet): where a claim goes, and its namespace there.
type Fleet interface {
	placement.Chooser
	Member(name string) *fleet.Member
	Listen(l fleet.Listener)
	Isolation() workload.Isolation
	NamespaceLabels(workspace string) (map[string]string, error)
}

// Options configure a Controller.
type Options struct {
	Tenants         kcpdynamic.ClusterInterface
	TenantInformers kcpdynamicinformer.DynamicSharedInformerFactory
	// Fleet is the set of workload clusters claims are synced to.
	Fleet Fleet
	// Gate, when set, keeps the reconciles to the workspaces of the parts
	// this replica holds (partition.Partition).
	Gate reconciler.Gate
	// Metrics exports the work queue and the reconciles (may be nil).
	Metrics *metrics.Metrics
	Log     *zap.SugaredLogger
}

// Controller syncs PVCs of every tenant workspace.
type Controller struct {
	log     *zap.SugaredLogger
	metrics *metrics.Metrics
	queue   workqueue.TypedRateLimitingInterface[string]
	gate    reconciler.Gate
	tenants kcpdynamic.ClusterInterface
	fleet   Fleet
	placer  placement.Placer
	// deleted keeps deleted tenant PVCs until their workload PVCs go.
	deleted    *reconciler.Tombstones
	finalizers reconciler.Finalizers
	objects    reconciler.Objects
	// skeleton reconciles a tenant PVC: get, decode, finalize, place and
	// sync (kind), write.
	skeleton reconciler.Skeleton[*corev1.PersistentVolumeClaim]

	claims kcpinformers.GenericClusterInformer
	// owners are the informers of the runs that own claims made from
	// volumeClaimTemplates, by kind.
	owners map[string]kcpinformers.GenericClusterInformer
}

// New wires the informers and the work queue.
func New(opts Options) (*Controller, error) {
	c := &Controller{
		log:        opts.Log,
		metrics:    opts.Metrics,
		queue:      reconciler.NewQueue(ControllerName, opts.Metrics),
		gate:       opts.Gate,
		tenants:    opts.Tenants,
		fleet:      opts.Fleet,
		deleted:    reconciler.NewTombstones(),
		finalizers: reconciler.Finalizers{Client: opts.Tenants, Resource: Resource, Name: Finalizer},
		objects:    reconciler.Objects{Client: opts.Tenants, Resource: Resource},
	}
	c.claims = opts.TenantInformers.ForResource(Resource)
	c.skeleton = reconciler.Skeleton[*corev1.PersistentVolumeClaim]{Lister: c.claims.Lister(), Objects: c.objects, Kind: kind{c}, Log: c.log}
	if _, err := c.claims.Informer().AddEventHandler(c.deleted.Handler(c.queue)); err != nil {
		return nil, err
	}
	c.placer = placement.Placer{Fleet: opts.Fleet, Claims: c.claims.Lister()}
	c.owners = map[string]kcpinformers.GenericClusterInformer{
		"TaskRun":     opts.TenantInformers.ForResource(v1.SchemeGroupVersion.WithResource("taskruns")),
		"PipelineRun": opts.TenantInformers.ForResource(v1.SchemeGroupVersion.WithResource("pipelineruns")),
	}
	opts.Fleet.Listen(fleet.Listener{
		Added: func(m *fleet.Member) {
			fleet.AddHandler(m.Informers.Core().V1().PersistentVolumeClaims().Informer(), reconciler.RelatedHandler(c.queue, workload.TenantObjectKey))
		},
		Changed: func(*fleet.Member) {
			for _, key := range c.claims.Informer().GetStore().ListKeys() {
				c.queue.Add(key)
			}
		},
	})
	return c, nil
}

// Run runs workers until ctx ends; the informers must have synced.
func (c *Controller) Run(ctx context.Context, workers int) {
	reconciler.Workers{Name: "PersistentVolumeClaim", Queue: c.queue, Reconcile: c.skeleton.Reconcile, Metrics: c.metrics, Log: c.log, Gate: c.gate}.Run(ctx, workers)
}

// Parts queues every object of a part this replica takes.
func (c *Controller) Parts() partition.Handler {
	return partition.Handler{Taken: func(in func(string) bool) {
		reconciler.EnqueueWorkspaces(c.queue, c.claims.Informer().GetStore(), in)
	}}
}
