// Package eventlistener reconciles tenants' Tekton Triggers
// EventListeners. Nothing of a listener runs on a workload cluster: the
// shared sink (pkg/triggers/sink) serves every listener at its path. The
// reconciler checks a listener as Triggers' webhook would, refuses forge
// interceptors that verify no signature, mints the listener's identity (a
// token of its ServiceAccounts, issued by kcp in the listener's own
// workspace) and publishes its URL.
package eventlistener

import (
	"context"

	kcpcache "github.com/kcp-dev/apimachinery/v2/pkg/cache"
	kcpdynamic "github.com/kcp-dev/client-go/dynamic"
	kcpdynamicinformer "github.com/kcp-dev/client-go/dynamic/dynamicinformer"
	kcpinformers "github.com/kcp-dev/client-go/informers"
	"github.com/kcp-dev/logicalcluster/v3"
	"github.com/tektoncd/triggers/pkg/apis/triggers/v1beta1"
	"go.uber.org/zap"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/pipelines-service/pipelines-service/pkg/metrics"
	"github.com/pipelines-service/pipelines-service/pkg/partition"
	"github.com/pipelines-service/pipelines-service/pkg/reconciler"
	"github.com/pipelines-service/pipelines-service/pkg/triggers"
)

// ControllerName names the controller in logs and the work queue.
const ControllerName = "pipelines-service-eventlistener"

// Workspaces gives clients of a tenant workspace.
type Workspaces interface {
	Kube(cluster logicalcluster.Name) (kubernetes.Interface, error)
}

// Options configure a Controller.
type Options struct {
	Tenants         kcpdynamic.ClusterInterface
	TenantInformers kcpdynamicinformer.DynamicSharedInformerFactory
	Workspaces      Workspaces
	// URL is the base of listeners' addresses, the sink's path prefix as
	// reached from outside (e.g. https://gateway/hooks); empty: no sink
	// serves this platform, and listeners say so.
	URL string
	// Gate, when set, keeps the reconciles to the workspaces of the parts
	// this replica holds (partition.Partition).
	Gate reconciler.Gate
	// Metrics exports the work queue and the reconciles (may be nil).
	Metrics *metrics.Metrics
	Log     *zap.SugaredLogger
}

// Controller reconciles EventListeners of every tenant workspace.
type Controller struct {
	log        *zap.SugaredLogger
	metrics    *metrics.Metrics
	queue      workqueue.TypedRateLimitingInterface[string]
	gate       reconciler.Gate
	workspaces Workspaces
	objects    reconciler.Objects
	// skeleton reconciles a listener: get, decode, check (kind), write.
	skeleton  reconciler.Skeleton[*v1beta1.EventListener]
	url       string
	listeners kcpinformers.GenericClusterInformer
	listers   triggers.ClusterListers
}

// New wires the informers and the work queue.
func New(opts Options) (*Controller, error) {
	c := &Controller{
		log:        opts.Log,
		metrics:    opts.Metrics,
		queue:      reconciler.NewQueue(ControllerName, opts.Metrics),
		gate:       opts.Gate,
		workspaces: opts.Workspaces,
		objects:    reconciler.Objects{Client: opts.Tenants, Resource: triggers.EventListeners},
		url:        opts.URL,
		listers:    triggers.ListersOf(opts.TenantInformers),
	}
	c.listeners = opts.TenantInformers.ForResource(triggers.EventListeners)
	c.skeleton = reconciler.Skeleton[*v1beta1.EventListener]{Lister: c.listeners.Lister(), Objects: c.objects, Kind: kind{c}, Log: c.log}
	if _, err := c.listeners.Informer().AddEventHandler(reconciler.TenantHandler(c.queue)); err != nil {
		return nil, err
	}
	// A listener's triggers may live in Trigger objects it selects or
	// names: any change to one looks at the workspace's listeners again.
	workspaceListeners := c.workspaceHandler()
	if _, err := opts.TenantInformers.ForResource(triggers.Triggers).Informer().AddEventHandler(workspaceListeners); err != nil {
		return nil, err
	}
	return c, nil
}

// workspaceHandler enqueues every listener of the workspace of an object.
func (c *Controller) workspaceHandler() cache.ResourceEventHandler {
	return reconciler.RelatedKeysHandler(c.queue, func(cluster logicalcluster.Name) []string {
		objs, err := c.listeners.Informer().GetIndexer().ByIndex(kcpcache.ClusterIndexName, kcpcache.ClusterIndexKey(cluster))
		if err != nil {
			return nil
		}
		var keys []string
		for _, o := range objs {
			if key, err := kcpcache.MetaClusterNamespaceKeyFunc(o); err == nil {
				keys = append(keys, key)
			}
		}
		return keys
	})
}

// Run runs workers until ctx ends; the informers must have synced.
func (c *Controller) Run(ctx context.Context, workers int) {
	reconciler.Workers{Name: "EventListener", Queue: c.queue, Reconcile: c.skeleton.Reconcile, Metrics: c.metrics, Log: c.log, Gate: c.gate}.Run(ctx, workers)
}

// Parts queues every object of a part this replica takes.
func (c *Controller) Parts() partition.Handler {
	return partition.Handler{Taken: func(in func(string) bool) {
		reconciler.EnqueueWorkspaces(c.queue, c.listeners.Informer().GetStore(), in)
	}}
}
