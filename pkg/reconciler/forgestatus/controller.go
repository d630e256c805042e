// Package forgestatus reports the end of the PipelineRuns Pipelines as
// Code started back to the forge: a commit status (and, on a pull
// request, a comment) per run, success or failure with the failed step's
// last lines, as upstream's watcher does. The start (pending) is reported
// by Pipelines as Code itself when it creates the run.
package forgestatus

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
	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/pipelines-service/pipelines-service/pkg/fleet"
	"github.com/pipelines-service/pipelines-service/pkg/pac"
	"github.com/pipelines-service/pipelines-service/pkg/pac/runner"
	"github.com/pipelines-service/pipelines-service/pkg/reconciler"
	"github.com/pipelines-service/pipelines-service/pkg/reconciler/placement"
	"github.com/pipelines-service/pipelines-service/pkg/workload"
)

// ControllerName names the controller in logs and the work queue.
const ControllerName = "pipelines-service-forgestatus"

// Reporter posts a finished run's status to the forge (pac.Runner).
type Reporter interface {
	Report(ctx context.Context, cluster logicalcluster.Name, pr *v1.PipelineRun) error
}

// Options configure a Controller.
type Options struct {
	TenantInformers kcpdynamicinformer.DynamicSharedInformerFactory
	Reporter        Reporter
	Log             *zap.SugaredLogger
}

// Controller reports finished Pipelines as Code runs of every workspace.
type Controller struct {
	log          *zap.SugaredLogger
	queue        workqueue.TypedRateLimitingInterface[string]
	pipelineRuns kcpinformers.GenericClusterInformer
	reporter     Reporter
}

// New wires the informer (runs PaC created on Gitea only) and the queue.
func New(opts Options) (*Controller, error) {
	c := &Controller{log: opts.Log, queue: reconciler.NewQueue(ControllerName), reporter: opts.Reporter}
	c.pipelineRuns = opts.TenantInformers.ForResource(v1.SchemeGroupVersion.WithResource("pipelineruns"))
	_, err := c.pipelineRuns.Informer().AddEventHandler(cache.FilteringResourceEventHandler{
		FilterFunc: func(obj any) bool {
			m, err := meta.Accessor(obj)
			return err == nil && m.GetAnnotations()[keys.GitProvider] == pac.GitProvider
		},
		Handler: cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { c.enqueue(obj) },
			UpdateFunc: func(_, obj any) { c.enqueue(obj) },
		},
	})
	return c, err
}

func (c *Controller) enqueue(obj any) {
	if key, err := kcpcache.MetaClusterNamespaceKeyFunc(obj); err == nil {
		c.queue.Add(key)
	}
}

// Run runs workers until ctx ends; the informers must have synced.
func (c *Controller) Run(ctx context.Context, workers int, timings *reconciler.Timings) {
	reconciler.RunWorkers(ctx, c.log, c.queue, workers, c.reconcileKey, timings, "forge status")
}

// reconcileKey reports the run of key if it has ended unreported.
func (c *Controller) reconcileKey(ctx context.Context, key string) (time.Duration, error) {
	pr := &v1.PipelineRun{}
	obj, err := reconciler.Get(c.pipelineRuns.Lister(), key, pr)
	if obj == nil || errors.Is(err, reconciler.ErrUndecodable) {
		return 0, nil
	}
	if err != nil || !runner.NeedsReport(pr) {
		return 0, err
	}
	return 0, c.reporter.Report(ctx, obj.Cluster, pr)
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
