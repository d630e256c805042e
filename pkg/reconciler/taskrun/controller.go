// Package taskrun reconciles tenants' TaskRuns, seen through the APIExport
// virtual workspace with cluster-aware informers, into Pods on a workload
// cluster, with Tekton's semantics (tektoncd/pipeline as a library), and
// reflects the pods' state back into the TaskRuns' status.
package taskrun

import (
	"context"
	"time"

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
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	psaapi "k8s.io/pod-security-admission/api"
	"k8s.io/utils/clock"

	"github.com/pipelines-service/pipelines-service/pkg/fleet"
	"github.com/pipelines-service/pipelines-service/pkg/images"
	"github.com/pipelines-service/pipelines-service/pkg/kcp"
	"github.com/pipelines-service/pipelines-service/pkg/metrics"
	"github.com/pipelines-service/pipelines-service/pkg/partition"
	"github.com/pipelines-service/pipelines-service/pkg/podsecurity"
	"github.com/pipelines-service/pipelines-service/pkg/reconciler"
	"github.com/pipelines-service/pipelines-service/pkg/reconciler/placement"
	"github.com/pipelines-service/pipelines-service/pkg/tenantconfig"
	"github.com/pipelines-service/pipelines-service/pkg/workload"
)

// ControllerName names the controller in logs and the work queue.
const ControllerName = "pipelines-service-taskrun"

// Resources the controller reads in tenant workspaces.
var (
	TaskRunsResource     = v1.SchemeGroupVersion.WithResource("taskruns")
	TasksResource        = v1.SchemeGroupVersion.WithResource("tasks")
	PipelineRunsResource = v1.SchemeGroupVersion.WithResource("pipelineruns")
	ClaimsResource       = corev1.SchemeGroupVersion.WithResource("persistentvolumeclaims")
)

// Fleet is what the TaskRun reconciler uses of the workload clusters: a
// *fleet.Fleet, or in table tests a fake whose members run on fake
// clients (fleet.NewStaticMember).
type Fleet interface {
	placement.Chooser
	Admission() *fleet.Admission
	Member(name string) *fleet.Member
	Members() []*fleet.Member
	PodSecurityLevel(workspace string) (psaapi.Level, error)
	Isolation() workload.Isolation
	Listen(l fleet.Listener)
}

// Options configure a Controller.
type Options struct {
	// Tenants is a cluster-aware dynamic client on the APIExport virtual
	// workspace.
	Tenants kcpdynamic.ClusterInterface
	// TenantInformers are shared by the reconcilers; the caller starts
	// them.
	TenantInformers kcpdynamicinformer.DynamicSharedInformerFactory
	// Fleet is the set of workload clusters pods run on.
	Fleet Fleet
	// Images are Tekton's helper images (entrypoint, nop, shell, ...).
	Images pipeline.Images
	// Resolver rewrites step images and reads their configs.
	Resolver *images.Resolver
	// Config is each workspace's Tekton configuration.
	Config *tenantconfig.Store
	// Resolution answers remote references (taskRef and step ref
	// resolvers).
	Resolution reconciler.Requesters
	// Workspaces are typed clients of the tenant workspaces (StepAction
	// resolution); nil: such requests fail with a clear error.
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

// Controller reconciles TaskRuns of every tenant workspace.
type Controller struct {
	log      *zap.SugaredLogger
	metrics  *metrics.Metrics
	queue    workqueue.TypedRateLimitingInterface[string]
	gate     reconciler.Gate
	tenants  kcpdynamic.ClusterInterface
	fleet    Fleet
	placer   placement.Placer
	images   pipeline.Images
	resolver *images.Resolver
	config   *tenantconfig.Store
	// resolution makes requesters for remote references.
	resolution reconciler.Requesters
	// podSecurity evaluates pods against their workspace's level.
	podSecurity *podsecurity.Checker
	// deleted keeps deleted TaskRuns until their workload objects are gone.
	deleted *reconciler.Tombstones
	// finalizers removes the finalizer of earlier versions.
	finalizers reconciler.Finalizers
	objects    reconciler.Objects
	// skeleton reconciles a TaskRun: get, decode, finalize, reconcile
	// (kind), write, emit.
	skeleton reconciler.Skeleton[*v1.TaskRun]
	// stepActions makes the Tekton client StepActions are read with, for
	// one tenant workspace.
	stepActions func(logicalcluster.Name) (tektonclient.Interface, error)
	// workspaceKube makes the client PVCs of volumeClaimTemplates are
	// created with, in one tenant workspace.
	workspaceKube func(logicalcluster.Name) (kubernetes.Interface, error)
	// events records the runs' Kubernetes events.
	events *reconciler.Events
	clock  clock.PassiveClock

	taskRuns     kcpinformers.GenericClusterInformer
	pipelineRuns kcpinformers.GenericClusterInformer
	tasks        kcpinformers.GenericClusterInformer
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
		fleet:      opts.Fleet,
		images:     opts.Images,
		resolver:   opts.Resolver,
		config:     opts.Config,
		resolution: opts.Resolution,
		deleted:    reconciler.NewTombstones(),
		finalizers: reconciler.Finalizers{Client: opts.Tenants, Resource: TaskRunsResource, Name: Finalizer},
		objects:    reconciler.Objects{Client: opts.Tenants, Resource: TaskRunsResource},
		clock:      clock.RealClock{},
	}
	checker, err := podsecurity.NewChecker()
	if err != nil {
		return nil, err
	}
	c.podSecurity = checker
	workspaces := opts.Workspaces
	c.stepActions, c.workspaceKube = workspaces.Tekton, workspaces.Kube
	c.taskRuns = opts.TenantInformers.ForResource(TaskRunsResource)
	c.pipelineRuns = opts.TenantInformers.ForResource(PipelineRunsResource)
	c.tasks = opts.TenantInformers.ForResource(TasksResource)
	c.placer = placement.Placer{Fleet: opts.Fleet, Claims: opts.TenantInformers.ForResource(ClaimsResource).Lister()}
	c.skeleton = reconciler.Skeleton[*v1.TaskRun]{Component: ControllerName, Lister: c.taskRuns.Lister(), Objects: c.objects,
		Events: c.events, Kind: kind{c}, Log: c.log}
	if _, err := c.taskRuns.Informer().AddEventHandler(c.deleted.Handler(c.queue)); err != nil {
		return nil, err
	}
	opts.Fleet.Listen(fleet.Listener{
		Added: func(m *fleet.Member) {
			fleet.AddHandler(m.Informers.Core().V1().Pods().Informer(), reconciler.RelatedHandler(c.queue, workload.TenantKey))
		},
		Changed: c.enqueueUnfinished,
	})
	opts.Fleet.Admission().OnWake(func(keys []string) {
		for _, k := range keys {
			c.queue.Add(k)
		}
	})
	return c, nil
}

// enqueueUnfinished queues every TaskRun not done yet: when a workload
// cluster is lost, comes back or becomes ready, they may move, fail or
// start.
func (c *Controller) enqueueUnfinished(*fleet.Member) {
	for _, obj := range c.taskRuns.Informer().GetStore().List() {
		u, ok := obj.(*unstructured.Unstructured)
		if !ok || runDone(u) {
			continue
		}
		if key, err := kcpcache.MetaClusterNamespaceKeyFunc(u); err == nil {
			c.queue.Add(key)
		}
	}
}

// seedAdmission counts the TaskRuns of the workspaces in that run (a pod,
// not done) as admitted, so that a restarted controller, or one taking a
// part from another replica, does not admit past a limit.
func (c *Controller) seedAdmission(in func(workspace string) bool) {
	for _, obj := range c.taskRuns.Informer().GetStore().List() {
		u, ok := obj.(*unstructured.Unstructured)
		if !ok || runDone(u) || placement.Of(u) == "" || !in(logicalcluster.From(u).String()) {
			continue
		}
		if pod, _, _ := unstructured.NestedString(u.Object, "status", "podName"); pod == "" {
			continue
		}
		if key, err := kcpcache.MetaClusterNamespaceKeyFunc(u); err == nil {
			c.fleet.Admission().MarkRunning(key, logicalcluster.From(u).String(), placement.Of(u))
		}
	}
}

// runDone says a run's Succeeded condition is True or False.
func runDone(u *unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, cond := range conds {
		m, _ := cond.(map[string]any)
		if m["type"] == "Succeeded" && (m["status"] == "True" || m["status"] == "False") {
			return true
		}
	}
	return false
}

// admissionAudit is how often the admission's books are squared with the
// TaskRun cache.
const admissionAudit = 30 * time.Second

// auditAdmission frees, until ctx ends, the admission of TaskRuns the
// cache no longer has or has as done: a slot must not stay taken because
// a deletion or a finish went unseen.
func (c *Controller) auditAdmission(ctx context.Context) {
	ticker := time.NewTicker(admissionAudit)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		gone := c.fleet.Admission().Retain(unfinishedIn(c.taskRuns.Informer().GetStore()))
		if len(gone) > 0 {
			c.log.Warnw("admission held TaskRuns that are gone or done; freed", "keys", gone)
		}
	}
}

// unfinishedIn says whether the TaskRun of a cluster-aware key is in the
// store and not done.
func unfinishedIn(store cache.Store) func(key string) bool {
	return func(key string) bool {
		obj, exists, err := store.GetByKey(key)
		if err != nil || !exists {
			return false
		}
		u, ok := obj.(*unstructured.Unstructured)
		return ok && !runDone(u)
	}
}

// Run runs workers until ctx ends; the informers must have synced.
func (c *Controller) Run(ctx context.Context, workers int) {
	go c.auditAdmission(ctx)
	reconciler.Workers{Name: "TaskRun", Queue: c.queue, Reconcile: c.skeleton.Reconcile, Metrics: c.metrics, Log: c.log, Gate: c.gate}.Run(ctx, workers)
}

// Parts counts the running TaskRuns of a part this replica takes as
// admitted (before any of them is reconciled here, so that no limit is
// admitted past), queues them all, and frees their admission when it
// gives the part up.
func (c *Controller) Parts() partition.Handler {
	return partition.Handler{
		Taking: c.seedAdmission,
		Taken: func(in func(string) bool) {
			reconciler.EnqueueWorkspaces(c.queue, c.taskRuns.Informer().GetStore(), in)
		},
		Given: func(in func(string) bool) {
			c.fleet.Admission().Retain(func(key string) bool { return !in(workspaceOf(key)) })
		},
	}
}

// workspaceOf is the workspace of a cluster-aware key.
func workspaceOf(key string) string {
	cluster, _, _, _ := kcpcache.SplitMetaClusterNamespaceKey(key)
	return cluster.String()
}
