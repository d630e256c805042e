// Package workloadgc removes what the service made on workload clusters
// and no tenant object accounts for any more: objects of runs and claims
// that are gone, that moved to another cluster, or whose cluster was lost
// while they ran. It sweeps each cluster when it becomes ready (after a
// controller restart, or when a lost cluster is back) and periodically.
package workloadgc

import (
	"context"
	"strings"
	"time"

	kcpcache "github.com/kcp-dev/apimachinery/v2/pkg/cache"
	kcpdynamicinformer "github.com/kcp-dev/client-go/dynamic/dynamicinformer"
	"github.com/kcp-dev/logicalcluster/v3"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/pipelines-service/pipelines-service/pkg/fleet"
	"github.com/pipelines-service/pipelines-service/pkg/reconciler/placement"
	"github.com/pipelines-service/pipelines-service/pkg/workload"
)

// Options configure a Collector.
type Options struct {
	Fleet           *fleet.Fleet
	TenantInformers kcpdynamicinformer.DynamicSharedInformerFactory
	// Grace spares objects younger than this (their tenant object may not
	// be in the informer cache yet). Default 30s.
	Grace time.Duration
	// Interval between periodic sweeps. Default 1m.
	Interval time.Duration
	// EmptyGrace keeps a workload namespace that holds nothing of the
	// service any more for this long (default 2m), unless its tenant's
	// runs moved to other clusters: a tenant pausing between runs keeps
	// it. A namespace takes Kubernetes 10-20 s to delete, and refuses new
	// pods meanwhile.
	EmptyGrace time.Duration
	Log        *zap.SugaredLogger
}

// Collector sweeps workload clusters.
type Collector struct {
	opts     Options
	log      *zap.SugaredLogger
	taskRuns kcpcache.GenericClusterLister
	claims   kcpcache.GenericClusterLister
	sweeps   chan *fleet.Member
	// emptySince is when each workload namespace (member/namespace) was
	// first seen holding nothing; sweeps run one at a time.
	emptySince map[string]time.Time
}

var (
	taskRunsResource = schema.GroupVersionResource{Group: "tekton.dev", Version: "v1", Resource: "taskruns"}
	claimsResource   = corev1.SchemeGroupVersion.WithResource("persistentvolumeclaims")
)

// New wires the collector to the fleet and the tenant informers.
func New(opts Options) *Collector {
	if opts.Grace == 0 {
		opts.Grace = 30 * time.Second
	}
	if opts.Interval == 0 {
		opts.Interval = time.Minute
	}
	if opts.EmptyGrace == 0 {
		opts.EmptyGrace = 2 * time.Minute
	}
	c := &Collector{
		opts: opts, log: opts.Log,
		taskRuns: opts.TenantInformers.ForResource(taskRunsResource).Lister(),
		claims:   opts.TenantInformers.ForResource(claimsResource).Lister(),
		sweeps:   make(chan *fleet.Member, 16),

		emptySince: map[string]time.Time{},
	}
	opts.Fleet.Listen(fleet.Listener{Changed: func(m *fleet.Member) {
		select {
		case c.sweeps <- m:
		default: // a sweep is pending; the periodic one follows
		}
	}})
	return c
}

// Run sweeps until ctx ends; the tenant informers must have synced.
func (c *Collector) Run(ctx context.Context) {
	ticker := time.NewTicker(c.opts.Interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-c.sweeps:
			c.sweep(ctx, m)
		case <-ticker.C:
			for _, m := range c.opts.Fleet.Members() {
				c.sweep(ctx, m)
			}
		}
	}
}

// sweep deletes the member's orphans. It needs the member's informers
// synced and its apiserver answering.
func (c *Collector) sweep(ctx context.Context, m *fleet.Member) {
	if !m.Synced() || !m.Reachable() {
		return
	}
	log := c.log.With("cluster", m.Name)
	core := m.Client.CoreV1()
	byTaskRun := func(obj metav1.Object) bool { return c.orphanOfTaskRun(m, obj) }
	pods, _ := m.Pods.List(labels.Everything())
	deleted := collect(ctx, c, log, "pod", pods, byTaskRun, func(ns string) deleteFunc { return core.Pods(ns).Delete })
	secrets, _ := m.Secrets.List(labels.Everything())
	deleted += collect(ctx, c, log, "secret", secrets, byTaskRun, func(ns string) deleteFunc { return core.Secrets(ns).Delete })
	maps, _ := m.Maps.List(labels.Everything())
	deleted += collect(ctx, c, log, "configmap", maps, byTaskRun, func(ns string) deleteFunc { return core.ConfigMaps(ns).Delete })
	claims, _ := m.Claims.List(labels.Everything())
	deleted += collect(ctx, c, log, "persistentvolumeclaim", claims,
		func(obj metav1.Object) bool { return c.orphanClaim(m, obj.(*corev1.PersistentVolumeClaim)) },
		func(ns string) deleteFunc { return core.PersistentVolumeClaims(ns).Delete })
	deleted += c.removeEmptyNamespaces(ctx, log, m)
	if deleted > 0 {
		log.Infow("collected workload objects no tenant object accounts for", "deleted", deleted)
	}
}

// deleteFunc deletes an object of a namespace by name.
type deleteFunc func(context.Context, string, metav1.DeleteOptions) error

// collect deletes the orphans among objs; it returns how many.
func collect[T metav1.Object](ctx context.Context, c *Collector, log *zap.SugaredLogger, kind string, objs []T, orphan func(metav1.Object) bool, deleter func(namespace string) deleteFunc) int {
	deleted := 0
	for _, obj := range objs {
		if orphan(obj) {
			deleted += c.remove(ctx, log, kind, obj, deleter(obj.GetNamespace()))
		}
	}
	return deleted
}

func (c *Collector) young(obj metav1.Object) bool {
	return time.Since(obj.GetCreationTimestamp().Time) < c.opts.Grace
}

// orphanOfTaskRun: a pod, secret or configmap made for a TaskRun that is
// gone, placed on another cluster, or was lost with this one.
func (c *Collector) orphanOfTaskRun(m *fleet.Member, obj metav1.Object) bool {
	if c.young(obj) || obj.GetDeletionTimestamp() != nil {
		return false
	}
	key, ok := workload.TenantKey(obj)
	if !ok {
		return false
	}
	return unaccountedByTaskRun(obj, c.tenant(c.taskRuns, key), m.Name)
}

// unaccountedByTaskRun says no TaskRun accounts for obj on cluster: the
// TaskRun (tr, nil if gone) is another one of the same name, is placed
// elsewhere, or failed because this cluster was lost.
func unaccountedByTaskRun(obj metav1.Object, tr *unstructured.Unstructured, cluster string) bool {
	if tr == nil || string(tr.GetUID()) != obj.GetLabels()[workload.LabelTaskRunUID] {
		return true
	}
	if placed := placement.Of(tr); placed != "" && placed != cluster {
		return true
	}
	return lostHere(tr)
}

// lostHere says the TaskRun ended because its cluster was lost.
func lostHere(tr *unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(tr.Object, "status", "conditions")
	for _, cond := range conds {
		if m, _ := cond.(map[string]any); m["type"] == "Succeeded" && m["reason"] == placement.ReasonWorkloadClusterLost {
			return true
		}
	}
	return false
}

// orphanClaim: a PVC whose tenant PVC is gone or placed elsewhere.
func (c *Collector) orphanClaim(m *fleet.Member, pvc *corev1.PersistentVolumeClaim) bool {
	if c.young(pvc) || pvc.DeletionTimestamp != nil {
		return false
	}
	key, ok := workload.TenantObjectKey(pvc)
	if !ok {
		return false
	}
	tenant := c.tenant(c.claims, key)
	return tenant == nil || placement.Of(tenant) != m.Name
}

// removeEmptyNamespaces deletes workload namespaces that hold none of the
// service's pods, claims, secrets or configmaps any more, once
// namespaceIdle allows.
func (c *Collector) removeEmptyNamespaces(ctx context.Context, log *zap.SugaredLogger, m *fleet.Member) int {
	used := map[string]bool{}
	pods, _ := m.Pods.List(labels.Everything())
	markNamespaces(used, pods)
	claims, _ := m.Claims.List(labels.Everything())
	markNamespaces(used, claims)
	secrets, _ := m.Secrets.List(labels.Everything())
	markNamespaces(used, secrets)
	maps, _ := m.Maps.List(labels.Everything())
	markNamespaces(used, maps)
	deleted := 0
	now := time.Now()
	spaces, _ := m.Spaces.List(labels.Everything())
	for _, ns := range spaces {
		key := m.Name + "/" + ns.Name
		owner := ns.Annotations[workload.AnnotationClusterNS]
		if used[ns.Name] || c.young(ns) || ns.DeletionTimestamp != nil || owner == "" {
			delete(c.emptySince, key)
			continue
		}
		since, seen := c.emptySince[key]
		if !seen {
			since = now
			c.emptySince[key] = now
		}
		if !namespaceIdle(c.tenantRunsOf(owner), m.Name, now.Sub(since), c.opts.EmptyGrace) {
			continue
		}
		delete(c.emptySince, key)
		deleted += c.remove(ctx, log, "namespace", ns, func(ctx context.Context, name string, opts metav1.DeleteOptions) error {
			return m.Client.CoreV1().Namespaces().Delete(ctx, name, opts)
		})
	}
	return deleted
}

// namespaceIdle says an empty workload namespace of a tenant namespace
// may go from cluster, given the tenant namespace's TaskRuns: not while
// one of them that has not finished is placed there or not placed yet
// (its pod may still come); at once when its runs left the cluster (they
// run elsewhere, or were lost with it, as in a failover); and otherwise
// (a tenant between runs) once it has been empty for grace.
func namespaceIdle(taskRuns []*unstructured.Unstructured, cluster string, empty, grace time.Duration) bool {
	left := false
	for _, tr := range taskRuns {
		placed := placement.Of(tr)
		switch {
		case placed != "" && placed != cluster, lostHere(tr):
			left = true
		case finished(tr):
		default: // unfinished, here or not placed yet
			return false
		}
	}
	return left || empty >= grace
}

// finished says the TaskRun's Succeeded condition is True or False.
func finished(tr *unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(tr.Object, "status", "conditions")
	for _, cond := range conds {
		if m, _ := cond.(map[string]any); m["type"] == "Succeeded" {
			return m["status"] == "True" || m["status"] == "False"
		}
	}
	return false
}

// tenantRunsOf lists the TaskRuns of a tenant namespace named by a
// workload namespace's owner annotation ("<workspace>/<namespace>").
func (c *Collector) tenantRunsOf(owner string) []*unstructured.Unstructured {
	cluster, namespace, ok := strings.Cut(owner, "/")
	if !ok {
		return nil
	}
	objs, _ := c.taskRuns.ByCluster(logicalcluster.Name(cluster)).ByNamespace(namespace).List(labels.Everything())
	runs := make([]*unstructured.Unstructured, 0, len(objs))
	for _, obj := range objs {
		if u, ok := obj.(*unstructured.Unstructured); ok {
			runs = append(runs, u)
		}
	}
	return runs
}

// markNamespaces marks the namespaces of objs as used.
func markNamespaces[T metav1.Object](used map[string]bool, objs []T) {
	for _, obj := range objs {
		used[obj.GetNamespace()] = true
	}
}

// tenant reads a tenant object by cluster-aware key, nil if it is gone.
func (c *Collector) tenant(lister kcpcache.GenericClusterLister, key string) *unstructured.Unstructured {
	cluster, ns, name, err := kcpcache.SplitMetaClusterNamespaceKey(key)
	if err != nil {
		return nil
	}
	obj, err := lister.ByCluster(cluster).ByNamespace(ns).Get(name)
	if err != nil {
		return nil
	}
	u, _ := obj.(*unstructured.Unstructured)
	return u
}

func (c *Collector) remove(ctx context.Context, log *zap.SugaredLogger, kind string, obj metav1.Object, del deleteFunc) int {
	err := del(ctx, obj.GetName(), metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		log.Warnw("could not collect workload object", "kind", kind, "namespace", obj.GetNamespace(), "name", obj.GetName(), "error", err)
		return 0
	}
	log.Infow("collected workload object", "kind", kind, "namespace", obj.GetNamespace(), "name", obj.GetName())
	return 1
}
