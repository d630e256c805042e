// Package taskrun reconciles tenants' TaskRuns, seen through the APIExport
// virtual workspace with cluster-aware informers, into Pods on a workload
// cluster, with Tekton's semantics (tektoncd/pipeline as a library), and
// reflects the pods' state back into the TaskRuns' status.
package taskrun

import (
	"context"

	kcpdynamic "github.com/kcp-dev/client-go/dynamic"
	kcpdynamicinformer "github.com/kcp-dev/client-go/dynamic/dynamicinformer"
	kcpinformers "github.com/kcp-dev/client-go/informers"
	"github.com/kcp-dev/logicalcluster/v3"
	"github.com/tektoncd/pipeline/pkg/apis/pipeline"
	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	tektonclient "github.com/tektoncd/pipeline/pkg/client/clientset/versioned"
	"go.uber.org/zap"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corev1listers "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"

	"github.com/pipelines-service/pipelines-service/pkg/images"
	"github.com/pipelines-service/pipelines-service/pkg/kcp"
	"github.com/pipelines-service/pipelines-service/pkg/reconciler"
	"github.com/pipelines-service/pipelines-service/pkg/tenantconfig"
	"github.com/pipelines-service/pipelines-service/pkg/workload"
)

// ControllerName names the controller in logs and the work queue.
const ControllerName = "pipelines-service-taskrun"

// Resources the controller reads in tenant workspaces.
var (
	TaskRunsResource = v1.SchemeGroupVersion.WithResource("taskruns")
	TasksResource    = v1.SchemeGroupVersion.WithResource("tasks")
)

// Options configure a Controller.
type Options struct {
	// Tenants is a cluster-aware dynamic client on the APIExport virtual
	// workspace.
	Tenants kcpdynamic.ClusterInterface
	// TenantInformers and WorkloadInformers are shared by the reconcilers;
	// the caller starts them.
	TenantInformers   kcpdynamicinformer.DynamicSharedInformerFactory
	WorkloadInformers informers.SharedInformerFactory
	// Workload is the client of the workload cluster.
	Workload kubernetes.Interface
	// Images are Tekton's helper images (entrypoint, nop, shell, ...).
	Images pipeline.Images
	// Resolver rewrites step images and reads their configs.
	Resolver *images.Resolver
	// Config is each workspace's Tekton configuration.
	Config *tenantconfig.Store
	// VirtualWorkspace is the rest config of the APIExport virtual
	// workspace, for typed Tekton clients (StepAction resolution).
	VirtualWorkspace *rest.Config
	Log              *zap.SugaredLogger
}

// Controller reconciles TaskRuns of every tenant workspace.
type Controller struct {
	log      *zap.SugaredLogger
	queue    workqueue.TypedRateLimitingInterface[string]
	tenants  kcpdynamic.ClusterInterface
	workload kubernetes.Interface
	images   pipeline.Images
	resolver *images.Resolver
	config   *tenantconfig.Store
	// finalizers keep TaskRuns until their workload objects are gone.
	finalizers reconciler.Finalizers
	objects    reconciler.Objects
	// stepActions makes the Tekton client StepActions are read with, for
	// one tenant workspace.
	stepActions func(logicalcluster.Name) (tektonclient.Interface, error)
	// workspaceKube makes the client PVCs of volumeClaimTemplates are
	// created with, in one tenant workspace.
	workspaceKube func(logicalcluster.Name) (kubernetes.Interface, error)
	clock         clock.PassiveClock

	taskRuns kcpinformers.GenericClusterInformer
	tasks    kcpinformers.GenericClusterInformer
	pods     corev1listers.PodLister
}

// New wires the informers and the work queue.
func New(opts Options) (*Controller, error) {
	c := &Controller{
		log:        opts.Log,
		queue:      reconciler.NewQueue(ControllerName),
		tenants:    opts.Tenants,
		workload:   opts.Workload,
		images:     opts.Images,
		resolver:   opts.Resolver,
		config:     opts.Config,
		finalizers: reconciler.Finalizers{Client: opts.Tenants, Resource: TaskRunsResource, Name: Finalizer},
		objects:    reconciler.Objects{Client: opts.Tenants, Resource: TaskRunsResource},
		clock:      clock.RealClock{},
	}
	workspaces, err := kcp.NewWorkspaceClients(opts.VirtualWorkspace)
	if err != nil {
		return nil, err
	}
	c.stepActions, c.workspaceKube = workspaces.Tekton, workspaces.Kube
	c.taskRuns = opts.TenantInformers.ForResource(TaskRunsResource)
	c.tasks = opts.TenantInformers.ForResource(TasksResource)
	if _, err := c.taskRuns.Informer().AddEventHandler(reconciler.TenantHandler(c.queue)); err != nil {
		return nil, err
	}

	podInformer := opts.WorkloadInformers.Core().V1().Pods()
	c.pods = podInformer.Lister()
	if _, err := podInformer.Informer().AddEventHandler(reconciler.RelatedHandler(c.queue, workload.TenantKey)); err != nil {
		return nil, err
	}
	return c, nil
}

// Run runs workers until ctx ends; the informers must have synced.
// Reconcile durations go to timings (may be nil).
func (c *Controller) Run(ctx context.Context, workers int, timings *reconciler.Timings) {
	reconciler.RunWorkers(ctx, c.log, c.queue, workers, c.reconcileKey, timings, "TaskRun")
}
