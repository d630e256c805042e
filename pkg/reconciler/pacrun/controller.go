// Package pacrun does for the PipelineRuns Pipelines as Code created what
// upstream's watcher does: it starts the ones PaC queued under their
// Repository's concurrency_limit, and reports the end of each back to the
// forge (a commit status and, on a pull request, a comment: success, or
// failure with the failed step's last lines). PaC itself reports the start
// of the runs it did not queue.
//
// The queue is the fleet's Admission (the same first-come rules that cap a
// workspace's TaskRuns), one slot per running PipelineRun of a Repository,
// its concurrency_limit the limit; upstream's in-memory queue manager is
// not used.
package pacrun

import (
	"context"
	"errors"
	"fmt"
	"time"

	kcpcache "github.com/kcp-dev/apimachinery/v2/pkg/cache"
	kcpdynamicinformer "github.com/kcp-dev/client-go/dynamic/dynamicinformer"
	kcpinformers "github.com/kcp-dev/client-go/informers"
	"github.com/kcp-dev/logicalcluster/v3"
	"github.com/openshift-pipelines/pipelines-as-code/pkg/apis/pipelinesascode/keys"
	"github.com/openshift-pipelines/pipelines-as-code/pkg/apis/pipelinesascode/v1alpha1"
	"github.com/openshift-pipelines/pipelines-as-code/pkg/kubeinteraction"
	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/pipelines-service/pipelines-service/pkg/fleet"
	"github.com/pipelines-service/pipelines-service/pkg/metrics"
	"github.com/pipelines-service/pipelines-service/pkg/pac"
	"github.com/pipelines-service/pipelines-service/pkg/pac/runner"
	"github.com/pipelines-service/pipelines-service/pkg/partition"
	"github.com/pipelines-service/pipelines-service/pkg/reconciler"
	"github.com/pipelines-service/pipelines-service/pkg/reconciler/placement"
	"github.com/pipelines-service/pipelines-service/pkg/workload"
)

// ControllerName names the controller in logs and the work queue.
const ControllerName = "pipelines-service-pacrun"

// Runs starts queued runs and posts finished runs' statuses to the forge
// (runner.Runner).
type Runs interface {
	Start(ctx context.Context, cluster logicalcluster.Name, pr *v1.PipelineRun) error
	Report(ctx context.Context, cluster logicalcluster.Name, pr *v1.PipelineRun) error
}

// recheck is how soon a queued run asks the admission again (it forgets
// waiters that stop asking).
const recheck = 5 * time.Second

// Options configure a Controller.
type Options struct {
	TenantInformers kcpdynamicinformer.DynamicSharedInformerFactory
	Runs            Runs
	// Gate, when set, keeps the reconciles to the workspaces of the parts
	// this replica holds (partition.Partition). A Repository is in one
	// workspace, so its concurrency_limit is kept by one replica.
	Gate reconciler.Gate
	// Metrics exports the work queue and the reconciles (may be nil).
	Metrics *metrics.Metrics
	Log     *zap.SugaredLogger
}

// Controller starts and reports Pipelines as Code runs of every workspace.
type Controller struct {
	log          *zap.SugaredLogger
	metrics      *metrics.Metrics
	queue        workqueue.TypedRateLimitingInterface[string]
	pipelineRuns kcpinformers.GenericClusterInformer
	repositories kcpinformers.GenericClusterInformer
	runs         Runs
	admission    *fleet.Admission
	gate         reconciler.Gate
}

// New wires the informers (runs PaC created on Gitea only), the admission
// and the queue.
func New(opts Options) (*Controller, error) {
	c := &Controller{log: opts.Log, metrics: opts.Metrics, queue: reconciler.NewQueue(ControllerName, opts.Metrics), runs: opts.Runs, gate: opts.Gate}
	c.repositories = opts.TenantInformers.ForResource(pac.Repositories)
	c.admission = fleet.NewAdmission(c.concurrencyLimit, func(string) int { return 0 })
	c.admission.OnWake(func(keys []string) {
		for _, k := range keys {
			c.queue.Add(k)
		}
	})
	c.pipelineRuns = opts.TenantInformers.ForResource(v1.SchemeGroupVersion.WithResource("pipelineruns"))
	_, err := c.pipelineRuns.Informer().AddEventHandler(cache.FilteringResourceEventHandler{
		FilterFunc: ofPipelinesAsCode,
		Handler: cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { c.enqueue(obj) },
			UpdateFunc: func(_, obj any) { c.enqueue(obj) },
			DeleteFunc: func(obj any) { c.enqueue(obj) },
		},
	})
	return c, err
}

// ofPipelinesAsCode says obj is a PipelineRun PaC created on Gitea.
func ofPipelinesAsCode(obj any) bool {
	m, err := meta.Accessor(obj)
	return err == nil && m.GetAnnotations()[keys.GitProvider] == pac.GitProvider
}

func (c *Controller) enqueue(obj any) {
	if key, err := kcpcache.DeletionHandlingMetaClusterNamespaceKeyFunc(obj); err == nil {
		c.queue.Add(key)
	}
}

// Run runs workers until ctx ends; the informers must have synced.
func (c *Controller) Run(ctx context.Context, workers int) {
	reconciler.Workers{Name: "Pipelines as Code run", Queue: c.queue, Reconcile: c.reconcileKey, Metrics: c.metrics, Log: c.log, Gate: c.gate}.Run(ctx, workers)
}

// Parts keeps the books of a part this replica takes or gives: the runs
// of its Repositories that hold a slot are counted before any queued one
// is admitted, then all its runs are queued; a part given away leaves
// the books.
func (c *Controller) Parts() partition.Handler {
	return partition.Handler{
		Taking: c.seedAdmission,
		Taken: func(in func(string) bool) {
			for _, key := range c.keys(in) {
				c.queue.Add(key)
			}
		},
		Given: func(in func(string) bool) {
			c.admission.Retain(func(key string) bool {
				cluster, _, _, _ := kcpcache.SplitMetaClusterNamespaceKey(key)
				return !in(cluster.String())
			})
		},
	}
}

// seedAdmission marks the started runs of the workspaces in as running.
func (c *Controller) seedAdmission(in func(workspace string) bool) {
	for _, key := range c.keys(in) {
		pr := &v1.PipelineRun{}
		obj, err := reconciler.Get(c.pipelineRuns.Lister(), key, pr)
		if obj == nil || err != nil || stepOf(pr) != stepRunning {
			continue
		}
		c.admission.MarkRunning(key, kcpcache.ToClusterAwareKey(obj.Cluster.String(), obj.Namespace, pr.Labels[keys.Repository]), "")
	}
}

// keys are the keys of the PaC runs of the workspaces in.
func (c *Controller) keys(in func(workspace string) bool) []string {
	var out []string
	for _, obj := range c.pipelineRuns.Informer().GetStore().List() {
		u, ok := obj.(*unstructured.Unstructured)
		if !ok || !ofPipelinesAsCode(u) || !in(logicalcluster.From(u).String()) {
			continue
		}
		if key, err := kcpcache.MetaClusterNamespaceKeyFunc(u); err == nil {
			out = append(out, key)
		}
	}
	return out
}

// reconcileKey starts the run of key when it is queued and admitted,
// reports it when it has ended, and keeps the admission's books.
func (c *Controller) reconcileKey(ctx context.Context, key string) (time.Duration, error) {
	pr := &v1.PipelineRun{}
	obj, err := reconciler.Get(c.pipelineRuns.Lister(), key, pr)
	if obj == nil || errors.Is(err, reconciler.ErrUndecodable) {
		c.admission.Release(key)
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	repo := kcpcache.ToClusterAwareKey(obj.Cluster.String(), obj.Namespace, pr.Labels[keys.Repository])
	switch stepOf(pr) {
	case stepReport:
		c.admission.Release(key)
		return 0, c.runs.Report(ctx, obj.Cluster, pr)
	case stepDone:
		c.admission.Release(key)
	case stepAdmit:
		if ok, why := c.admission.Admit(key, repo, ""); !ok {
			c.log.Debugw("queued run waits", "workspace", obj.Cluster.String(), "namespace", obj.Namespace, "name", obj.Name, "reason", why)
			return recheck, nil
		}
		return 0, c.runs.Start(ctx, obj.Cluster, pr)
	case stepRunning:
		c.admission.MarkRunning(key, repo, "")
	}
	return 0, nil
}

// step is what a PaC run needs next.
type step int

const (
	stepNone    step = iota
	stepReport       // ended, its final status not on the forge yet
	stepDone         // ended and reported
	stepAdmit        // queued: it waits for a slot
	stepRunning      // started: it holds a slot (after a restart too)
)

func stepOf(pr *v1.PipelineRun) step {
	switch {
	case pr.IsDone() && runner.NeedsReport(pr):
		return stepReport
	case pr.IsDone():
		return stepDone
	case runner.Queued(pr):
		return stepAdmit
	case pr.Labels[keys.State] == kubeinteraction.StateStarted && !pr.IsPending():
		// PaC creates a run it queues started and pending, then marks it
		// queued: that one holds no slot yet.
		return stepRunning
	}
	return stepNone
}

// concurrencyLimit is the concurrency_limit of the Repository of key (0:
// none).
func (c *Controller) concurrencyLimit(key string) int {
	repo := &v1alpha1.Repository{}
	obj, err := reconciler.Get(c.repositories.Lister(), key, repo)
	if obj == nil || err != nil || repo.Spec.ConcurrencyLimit == nil {
		return 0
	}
	return *repo.Spec.ConcurrencyLimit
}

// PodLogs reads step logs from the workload cluster a TaskRun ran on.
type PodLogs struct {
	Fleet           *fleet.Fleet
	TenantInformers kcpdynamicinformer.DynamicSharedInformerFactory
}

// TailLogs finds the TaskRun whose pod is pod in the workspace's
// namespace, and reads the container's last lines there.
func (p PodLogs) TailLogs(ctx context.Context, workspace logicalcluster.Name, namespace, pod, container string, lines int64) (string, error) {
	taskRuns := p.TenantInformers.ForResource(v1.SchemeGroupVersion.WithResource("taskruns")).Lister()
	objs, err := taskRuns.ByCluster(workspace).ByNamespace(namespace).List(labels.Everything())
	if err != nil {
		return "", err
	}
	for _, o := range objs {
		tr := &v1.TaskRun{}
		if u, ok := o.(*unstructured.Unstructured); !ok || reconciler.Decode(u, tr) != nil || tr.Status.PodName != pod {
			continue
		}
		m := p.Fleet.Member(placement.Of(tr))
		if m == nil || !m.Reachable() {
			return "", fmt.Errorf("workload cluster %q of pod %s does not answer", placement.Of(tr), pod)
		}
		data, err := m.Client.CoreV1().Pods(workload.Namespace(workspace, namespace)).GetLogs(pod,
			&corev1.PodLogOptions{Container: container, TailLines: &lines}).DoRaw(ctx)
		return string(data), err
	}
	return "", fmt.Errorf("no TaskRun of pod %s in namespace %s", pod, namespace)
}
