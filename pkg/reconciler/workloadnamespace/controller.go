// Package workloadnamespace keeps the service's workload namespaces at
// their tenant's Pod Security level and isolated from each other: someone
// with access to a workload cluster who relabels such a namespace (to let
// privileged pods in, say), or changes or deletes its isolation
// NetworkPolicy, finds them put back at once. Namespaces are created with
// both by the TaskRun and PVC reconcilers (workload.EnsureNamespace),
// which also bring them to a changed level before the next pod.
package workloadnamespace

import (
	"context"
	"strings"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/pipelines-service/pipelines-service/pkg/fleet"
	"github.com/pipelines-service/pipelines-service/pkg/metrics"
	"github.com/pipelines-service/pipelines-service/pkg/reconciler"
	"github.com/pipelines-service/pipelines-service/pkg/workload"
)

// ControllerName names the controller in logs and the work queue.
const ControllerName = "pipelines-service-workloadnamespace"

// Controller restores the Pod Security labels and the isolation policy of
// workload namespaces.
type Controller struct {
	log     *zap.SugaredLogger
	metrics *metrics.Metrics
	queue   workqueue.TypedRateLimitingInterface[string]
	fleet   *fleet.Fleet
	gate    reconciler.Gate
}

// New watches the workload namespaces of every member of the fleet. Only
// the replica that gate admits (the leader) reconciles; the others drop
// the keys, and Resync queues them all again when gate opens here.
func New(f *fleet.Fleet, gate reconciler.Gate, m *metrics.Metrics, log *zap.SugaredLogger) *Controller {
	c := &Controller{log: log, metrics: m, queue: reconciler.NewQueue(ControllerName, m), fleet: f, gate: gate}
	f.Listen(fleet.Listener{Added: func(member *fleet.Member) {
		enqueue := func(obj any) {
			if ns, ok := obj.(*corev1.Namespace); ok {
				c.queue.Add(member.Name + "|" + ns.Name)
			}
		}
		fleet.AddHandler(member.Informers.Core().V1().Namespaces().Informer(), cache.ResourceEventHandlerFuncs{
			AddFunc:    enqueue,
			UpdateFunc: func(_, obj any) { enqueue(obj) },
		})
		// A policy that loses its managed-by label leaves the (filtered)
		// informer as if deleted: both put the namespace in the queue.
		enqueuePolicy := func(obj any) {
			if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = tomb.Obj
			}
			if p, ok := obj.(*networkingv1.NetworkPolicy); ok && p.Name == workload.IsolationPolicyName {
				c.queue.Add(member.Name + "|" + p.Namespace)
			}
		}
		fleet.AddHandler(member.Informers.Networking().V1().NetworkPolicies().Informer(), cache.ResourceEventHandlerFuncs{
			UpdateFunc: func(_, obj any) { enqueuePolicy(obj) },
			DeleteFunc: enqueuePolicy,
		})
	}})
	return c
}

// Run reconciles until ctx ends.
func (c *Controller) Run(ctx context.Context, workers int) {
	reconciler.Workers{Name: ControllerName, Queue: c.queue, Reconcile: c.reconcileKey, Metrics: c.metrics, Log: c.log,
		Gate: c.gate, WorkspaceOf: func(string) string { return "" }}.Run(ctx, workers)
}

// Resync queues every workload namespace of every member.
func (c *Controller) Resync() {
	for _, member := range c.fleet.Members() {
		for _, key := range member.Informers.Core().V1().Namespaces().Informer().GetStore().ListKeys() {
			c.queue.Add(member.Name + "|" + key)
		}
	}
}

// reconcileKey puts back the labels and the isolation policy of the
// namespace of a "<member>|<namespace>" key.
func (c *Controller) reconcileKey(ctx context.Context, key string) (time.Duration, error) {
	member, name, _ := strings.Cut(key, "|")
	m := c.fleet.Member(member)
	if m == nil {
		return 0, nil // unregistered since
	}
	ns, err := m.Spaces.Get(name)
	if apierrors.IsNotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	workspace := ns.Labels[workload.LabelClusterName]
	if workspace == "" || ns.DeletionTimestamp != nil {
		return 0, nil
	}
	want, err := c.fleet.NamespaceLabels(workspace)
	if err != nil {
		return 0, err
	}
	if workload.NamespaceLabelsDiffer(ns, want) {
		c.log.Infow("putting back the Pod Security labels of a workload namespace", "cluster", member, "workspace", workspace, "namespace", name)
	}
	if err := workload.EnsureNamespaceLabels(ctx, m.Client, ns, want); err != nil {
		return 0, err
	}
	policy, err := m.Informers.Networking().V1().NetworkPolicies().Lister().NetworkPolicies(name).Get(workload.IsolationPolicyName)
	if err != nil && !apierrors.IsNotFound(err) {
		return 0, err
	}
	if err == nil && !c.fleet.Isolation().Differs(policy) {
		return 0, nil
	}
	c.log.Infow("putting back the isolation policy of a workload namespace", "cluster", member, "workspace", workspace, "namespace", name)
	return 0, c.fleet.Isolation().Ensure(ctx, m.Client, name)
}
