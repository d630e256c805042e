// Package repository reconciles tenants' Pipelines as Code Repositories.
// It keeps the index the webhook intake finds Repositories in (pac.Index:
// URL → the oldest Repository claiming it, across all workspaces, and
// that Repository's webhook secret), and says on each Repository whether
// the service accepts it: upstream refuses a second Repository for a URL
// in its admission webhook; kcp runs none, and the claims span
// workspaces, so the controller refuses it here.
package repository

import (
	"context"
	"time"

	kcpcache "github.com/kcp-dev/apimachinery/v2/pkg/cache"
	kcpdynamic "github.com/kcp-dev/client-go/dynamic"
	kcpdynamicinformer "github.com/kcp-dev/client-go/dynamic/dynamicinformer"
	kcpinformers "github.com/kcp-dev/client-go/informers"
	"github.com/kcp-dev/logicalcluster/v3"
	"go.uber.org/zap"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/pipelines-service/pipelines-service/pkg/metrics"
	"github.com/pipelines-service/pipelines-service/pkg/pac"
	"github.com/pipelines-service/pipelines-service/pkg/partition"
	"github.com/pipelines-service/pipelines-service/pkg/reconciler"
)

// ControllerName names the controller in logs and the work queue.
const ControllerName = "pipelines-service-repository"

// refresh is how often an accepted Repository's secrets are read again
// (a rotated webhook secret takes effect within it).
const refresh = 2 * time.Minute

// Workspaces gives clients of a tenant workspace.
type Workspaces interface {
	Kube(cluster logicalcluster.Name) (kubernetes.Interface, error)
}

// Options configure a Controller.
type Options struct {
	Tenants         kcpdynamic.ClusterInterface
	TenantInformers kcpdynamicinformer.DynamicSharedInformerFactory
	Workspaces      Workspaces
	Index           *pac.Index
	// Gate, when set, keeps the reconciles to the workspaces of the parts
	// this replica holds (partition.Partition). Every replica keeps the
	// index of every Repository (the intake reads it).
	Gate reconciler.Gate
	// Egress checks git_provider.url against the platform's allow-list.
	Egress interface {
		CheckURL(component, raw string) error
	}
	// Metrics exports the work queue and the reconciles (may be nil).
	Metrics *metrics.Metrics
	Log     *zap.SugaredLogger
}

// Controller reconciles the Repositories of every tenant workspace.
type Controller struct {
	log          *zap.SugaredLogger
	metrics      *metrics.Metrics
	queue        workqueue.TypedRateLimitingInterface[string]
	objects      reconciler.Objects
	repositories kcpinformers.GenericClusterInformer
	index        *pac.Index
	secrets      secretReader
	egress       interface{ CheckURL(string, string) error }
	gate         reconciler.Gate
}

// New wires the informer, the index and the work queue.
func New(opts Options) (*Controller, error) {
	c := &Controller{
		log:     opts.Log,
		metrics: opts.Metrics,
		queue:   reconciler.NewQueue(ControllerName, opts.Metrics),
		objects: reconciler.Objects{Client: opts.Tenants, Resource: pac.Repositories},
		index:   opts.Index,
		secrets: workspaceSecrets{opts.Workspaces},
		egress:  opts.Egress,
		gate:    opts.Gate,
	}
	c.repositories = opts.TenantInformers.ForResource(pac.Repositories)
	if _, err := c.repositories.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.claim,
		UpdateFunc: func(_, obj any) { c.claim(obj) },
		DeleteFunc: c.unclaim,
	}); err != nil {
		return nil, err
	}
	return c, nil
}

// claim records a Repository's claim on its URL at once (the intake reads
// the index) and queues every Repository whose standing may have changed.
func (c *Controller) claim(obj any) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return
	}
	key, err := kcpcache.MetaClusterNamespaceKeyFunc(u)
	if err != nil {
		return
	}
	url, _, _ := unstructured.NestedString(u.Object, "spec", "url")
	changed := c.index.Set(pac.Claim{Key: key, Workspace: logicalcluster.From(u).String(), Created: u.GetCreationTimestamp().Time}, url)
	c.queue.Add(key)
	c.requeueClaims(changed)
}

func (c *Controller) unclaim(obj any) {
	key, err := kcpcache.DeletionHandlingMetaClusterNamespaceKeyFunc(obj)
	if err != nil {
		return
	}
	if url := c.index.Delete(key); url != "" {
		c.requeueClaims([]string{url})
	}
}

func (c *Controller) requeueClaims(urls []string) {
	for _, url := range urls {
		for _, claim := range c.index.Claims(url) {
			c.queue.Add(claim.Key)
		}
	}
}

// Run runs workers until ctx ends; the informers must have synced.
func (c *Controller) Run(ctx context.Context, workers int) {
	reconciler.Workers{Name: "Repository", Queue: c.queue, Reconcile: c.reconcileKey, Metrics: c.metrics, Log: c.log, Gate: c.gate}.Run(ctx, workers)
}

// Parts queues every Repository of a part this replica takes.
func (c *Controller) Parts() partition.Handler {
	return partition.Handler{Taken: func(in func(string) bool) {
		reconciler.EnqueueWorkspaces(c.queue, c.repositories.Informer().GetStore(), in)
	}}
}
