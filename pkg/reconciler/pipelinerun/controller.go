// Package pipelinerun reconciles tenants' PipelineRuns into child TaskRuns
// in the same tenant workspace, with Tekton's semantics (DAG, results,
// when expressions, finally, retries, timeouts, cancellation, matrix),
// reusing tektoncd/pipeline's pipelinerun resources as a library.
package pipelinerun

import (
	"context"

	kcpcache "github.com/kcp-dev/apimachinery/v2/pkg/cache"
	kcpdynamic "github.com/kcp-dev/client-go/dynamic"
	kcpdynamicinformer "github.com/kcp-dev/client-go/dynamic/dynamicinformer"
	kcpinformers "github.com/kcp-dev/client-go/informers"
	"github.com/kcp-dev/logicalcluster/v3"
	"github.com/tektoncd/pipeline/pkg/apis/pipeline"
	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	tektonclient "github.com/tektoncd/pipeline/pkg/client/clientset/versioned"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"

	"github.com/pipelines-service/pipelines-service/pkg/fleet"
	"github.com/pipelines-service/pipelines-service/pkg/kcp"
	"github.com/pipelines-service/pipelines-service/pkg/metrics"
	"github.com/pipelines-service/pipelines-service/pkg/partition"
	"github.com/pipelines-service/pipelines-service/pkg/reconciler"
	"github.com/pipelines-service/pipelines-service/pkg/reconciler/customrun"
	"github.com/pipelines-service/pipelines-service/pkg/reconciler/placement"
	"github.com/pipelines-service/pipelines-service/pkg/tenantconfig"
)

// ControllerName names the controller in logs and the work queue.
const ControllerName = "pipelines-service-pipelinerun"

// Resources the controller reads in tenant workspaces.
var (
	PipelineRunsResource = v1.SchemeGroupVersion.WithResource("pipelineruns")
	PipelinesResource    = v1.SchemeGroupVersion.WithResource("pipelines")
	TasksResource        = v1.SchemeGroupVersion.WithResource("tasks")
	TaskRunsResource     = v1.SchemeGroupVersion.WithResource("taskruns")
)

// Fleet is what the PipelineRun reconciler uses of the workload clusters
// (*fleet.Fleet): where a PipelineRun's TaskRuns go.
type Fleet interface {
	placement.Chooser
	Member(name string) *fleet.Member
	Listen(l fleet.Listener)
}

// Options configure a Controller.
type Options struct {
	Tenants         kcpdynamic.ClusterInterface
	TenantInformers kcpdynamicinformer.DynamicSharedInformerFactory
	// Config is each workspace's Tekton configuration.
	Config *tenantconfig.Store
	// Fleet is the set of workload clusters PipelineRuns are placed on.
	Fleet Fleet
	// Resolution answers remote references (pipelineRef and pipeline
	// tasks' taskRef resolvers).
	Resolution reconciler.Requesters
	// Workspaces are typed clients of the tenant workspaces (PVCs from
	// volumeClaimTemplates); nil: such requests fail with a clear error.
	Workspaces *kcp.WorkspaceClients
	// Events records the runs' Kubernetes events.
	Events *reconciler.Events
	// Gate, when set, keeps the reconciles to the workspaces of the parts
	// this replica holds (partition.Partition).
	Gate reconciler.Gate
	// Metrics exports the work queue and the reconciles (may be nil).
	Metrics *metrics.Metrics
	Log     *zap.SugaredLogger
}

// Controller reconciles PipelineRuns of every tenant workspace.
type Controller struct {
	log     *zap.SugaredLogger
	metrics *metrics.Metrics
	queue   workqueue.TypedRateLimitingInterface[string]
	gate    reconciler.Gate
	tenants kcpdynamic.ClusterInterface
	config  *tenantconfig.Store
	fleet   Fleet
	placer  placement.Placer
	objects reconciler.Objects
	// skeleton reconciles a PipelineRun: get, decode, reconcile (kind),
	// write, emit.
	skeleton reconciler.Skeleton[*v1.PipelineRun]
	// workspaceKube makes the client PVCs of volumeClaimTemplates are
	// created with, in one tenant workspace.
	workspaceKube func(logicalcluster.Name) (kubernetes.Interface, error)
	// events records the runs' Kubernetes events.
	events *reconciler.Events
	// workspaceTekton makes the Tekton client remote references are
	// validated with (Tekton's dry-run create), in one workspace.
	workspaceTekton func(logicalcluster.Name) (tektonclient.Interface, error)
	resolution      reconciler.Requesters
	clock           clock.PassiveClock

	pipelineRuns kcpinformers.GenericClusterInformer
	pipelines    kcpinformers.GenericClusterInformer
	tasks        kcpinformers.GenericClusterInformer
	taskRuns     kcpinformers.GenericClusterInformer
	customRuns   kcpinformers.GenericClusterInformer
}

// New wires the informers and the work queue.
func New(opts Options) (*Controller, error) {
	c := &Controller{
		log:        opts.Log,
		metrics:    opts.Metrics,
		events:     opts.Events,
		queue:      reconciler.NewQueue(ControllerName, opts.Metrics),
		gate:       opts.Gate,
		tenants:    opts.Tenants,
		config:     opts.Config,
		fleet:      opts.Fleet,
		objects:    reconciler.Objects{Client: opts.Tenants, Resource: PipelineRunsResource},
		resolution: opts.Resolution,
		clock:      clock.RealClock{},
	}
	workspaces := opts.Workspaces
	c.workspaceKube, c.workspaceTekton = workspaces.Kube, workspaces.Tekton
	c.pipelineRuns = opts.TenantInformers.ForResource(PipelineRunsResource)
	c.pipelines = opts.TenantInformers.ForResource(PipelinesResource)
	c.tasks = opts.TenantInformers.ForResource(TasksResource)
	c.taskRuns = opts.TenantInformers.ForResource(TaskRunsResource)
	c.customRuns = opts.TenantInformers.ForResource(customrun.CustomRunsResource)
	if _, err := c.pipelineRuns.Informer().AddEventHandler(reconciler.TenantHandler(c.queue)); err != nil {
		return nil, err
	}
	// A child PipelineRun (pipelines in pipelines) tells its parent.
	if _, err := c.pipelineRuns.Informer().AddEventHandler(reconciler.RelatedHandler(c.queue, parentKey)); err != nil {
		return nil, err
	}
	if _, err := c.taskRuns.Informer().AddEventHandler(reconciler.RelatedHandler(c.queue, parentKey)); err != nil {
		return nil, err
	}
	if _, err := c.customRuns.Informer().AddEventHandler(reconciler.RelatedHandler(c.queue, parentKey)); err != nil {
		return nil, err
	}
	c.placer = placement.Placer{Fleet: opts.Fleet, Claims: opts.TenantInformers.ForResource(corev1.SchemeGroupVersion.WithResource("persistentvolumeclaims")).Lister()}
	c.skeleton = reconciler.Skeleton[*v1.PipelineRun]{Component: ControllerName, Lister: c.pipelineRuns.Lister(), Objects: c.objects,
		Events: c.events, Kind: kind{c}, Log: c.log}
	opts.Fleet.Listen(fleet.Listener{Changed: func(*fleet.Member) {
		// Runs waiting for a cluster may start, runs on a lost one move.
		for _, key := range c.pipelineRuns.Informer().GetStore().ListKeys() {
			c.queue.Add(key)
		}
	}})
	return c, nil
}

func (c *Controller) lister(resource schema.GroupVersionResource) kcpcache.GenericClusterLister {
	switch resource {
	case PipelinesResource:
		return c.pipelines.Lister()
	case TasksResource:
		return c.tasks.Lister()
	case TaskRunsResource:
		return c.taskRuns.Lister()
	case customrun.CustomRunsResource:
		return c.customRuns.Lister()
	default:
		return c.pipelineRuns.Lister()
	}
}

// parentKey is the key of the PipelineRun a TaskRun belongs to.
func parentKey(tr metav1.Object) (string, bool) {
	parent := tr.GetLabels()[pipeline.PipelineRunLabelKey]
	if parent == "" {
		return "", false
	}
	return kcpcache.ToClusterAwareKey(logicalcluster.From(tr).String(), tr.GetNamespace(), parent), true
}

// Run runs workers until ctx ends; the informers must have synced.
func (c *Controller) Run(ctx context.Context, workers int) {
	reconciler.Workers{Name: "PipelineRun", Queue: c.queue, Reconcile: c.skeleton.Reconcile, Metrics: c.metrics, Log: c.log, Gate: c.gate}.Run(ctx, workers)
}

// Parts queues every object of a part this replica takes.
func (c *Controller) Parts() partition.Handler {
	return partition.Handler{Taken: func(in func(string) bool) {
		reconciler.EnqueueWorkspaces(c.queue, c.pipelineRuns.Informer().GetStore(), in)
	}}
}
