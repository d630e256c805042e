// Package fleet keeps the workload clusters registered in the provider
// workspace (WorkloadCluster objects with kubeconfig Secrets) as members:
// a client and informers each, a heartbeat that keeps their status
// current, placement of runs on ready members and admission of TaskRuns
// under per-workspace and per-cluster limits.
package fleet

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corev1listers "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	psaapi "k8s.io/pod-security-admission/api"

	fleetv1alpha1 "github.com/pipelines-service/pipelines-service/apis/fleet/v1alpha1"
	"github.com/pipelines-service/pipelines-service/pkg/podsecurity"
	"github.com/pipelines-service/pipelines-service/pkg/workload"
)

// Annotations on tenant objects.
const (
	// AnnotationCluster names the workload cluster a run or PVC is placed
	// on. The controller sets it; the TaskRuns of a PipelineRun carry
	// their PipelineRun's.
	AnnotationCluster = "pipelines-service.dev/workload-cluster"
	// AnnotationClusterSelector is a tenant's own label selector on
	// workload clusters for a run (e.g. "region=eu"), on top of the
	// platform's TenantPolicy.
	AnnotationClusterSelector = "pipelines-service.dev/cluster-selector"
)

// Options configure a Fleet.
type Options struct {
	// Provider is a rest config on the provider workspace.
	Provider *rest.Config
	// WorkloadQPS and WorkloadBurst limit requests to each member.
	WorkloadQPS   float32
	WorkloadBurst int
	// WrapTransport, when set, wraps every member's transport (request
	// metrics), under the server name "workload/<cluster>".
	WrapTransport func(server string) func(http.RoundTripper) http.RoundTripper
	// HeartbeatInterval is how often members are probed (default 2s).
	HeartbeatInterval time.Duration
	// FailoverAfter is how long a member may not answer before the runs
	// placed there move or fail (default 15s).
	FailoverAfter time.Duration
	// Isolation is the network policy of every workload namespace, with
	// the egress the platform offers tenants.
	Isolation workload.Isolation
	Log       *zap.SugaredLogger
}

// Listener hears of members. Added runs before a member's informers
// start (to add event handlers); Changed runs when a member becomes
// ready, unready, lost or found again.
type Listener struct {
	Added   func(*Member)
	Changed func(*Member)
}

// Fleet is the set of registered workload clusters.
type Fleet struct {
	opts      Options
	log       *zap.SugaredLogger
	provider  dynamic.Interface
	clusters  cache.SharedIndexInformer
	policies  cache.SharedIndexInformer
	secrets   cache.SharedIndexInformer
	factories []interface{ Start(<-chan struct{}) }
	admission *Admission
	recent    *recentPlacements
	// standby: another replica leads; heartbeats probe but write no
	// status.
	standby atomic.Bool

	mu      sync.Mutex
	ctx     context.Context
	members map[string]*Member

	// listenersMu is apart from mu: members are started (and listeners
	// told) while mu is held.
	listenersMu sync.Mutex
	listeners   []Listener
}

// SetStandby says whether another replica of the controller leads: a
// standby probes its members (so that it knows them the moment it takes
// over) but writes no WorkloadCluster status.
func (f *Fleet) SetStandby(standby bool) { f.standby.Store(standby) }

// New wires the provider workspace's informers; Start starts them.
func New(opts Options) (*Fleet, error) {
	if opts.HeartbeatInterval == 0 {
		opts.HeartbeatInterval = 2 * time.Second
	}
	if opts.FailoverAfter == 0 {
		opts.FailoverAfter = 15 * time.Second
	}
	provider, err := dynamic.NewForConfig(opts.Provider)
	if err != nil {
		return nil, err
	}
	kube, err := kubernetes.NewForConfig(opts.Provider)
	if err != nil {
		return nil, err
	}
	dynFactory := dynamicinformer.NewDynamicSharedInformerFactory(provider, 0)
	kubeFactory := informers.NewSharedInformerFactory(kube, 0)
	f := &Fleet{
		opts:      opts,
		log:       opts.Log,
		provider:  provider,
		clusters:  dynFactory.ForResource(fleetv1alpha1.WorkloadClustersResource).Informer(),
		policies:  dynFactory.ForResource(fleetv1alpha1.TenantPoliciesResource).Informer(),
		secrets:   kubeFactory.Core().V1().Secrets().Informer(),
		factories: []interface{ Start(<-chan struct{}) }{dynFactory, kubeFactory},
		members:   map[string]*Member{},
		recent:    newRecentPlacements(30 * time.Second),
	}
	f.admission = NewAdmission(f.workspaceLimit, f.clusterLimit)
	resync := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { f.syncMembers() },
		UpdateFunc: func(any, any) { f.syncMembers() },
		DeleteFunc: func(any) { f.syncMembers() },
	}
	for _, inf := range []cache.SharedIndexInformer{f.clusters, f.secrets} {
		if _, err := inf.AddEventHandler(resync); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// Listen registers a listener; call it before Start.
func (f *Fleet) Listen(l Listener) {
	f.listenersMu.Lock()
	defer f.listenersMu.Unlock()
	f.listeners = append(f.listeners, l)
}

// Admission is the fleet's TaskRun admission.
func (f *Fleet) Admission() *Admission { return f.admission }

// Start starts the provider workspace's informers, waits for them and
// starts a member per registered cluster. Members come up in the
// background: an unreachable cluster does not hold the controller.
func (f *Fleet) Start(ctx context.Context) error {
	f.mu.Lock()
	f.ctx = ctx
	f.mu.Unlock()
	for _, factory := range f.factories {
		factory.Start(ctx.Done())
	}
	if !cache.WaitForCacheSync(ctx.Done(), f.clusters.HasSynced, f.policies.HasSynced, f.secrets.HasSynced) {
		return fmt.Errorf("fleet informers of the provider workspace did not sync")
	}
	f.syncMembers()
	return nil
}

// Member returns the member of a name, nil if none is registered.
func (f *Fleet) Member(name string) *Member {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.members[name]
}

// Members returns the members sorted by name.
func (f *Fleet) Members() []*Member {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]*Member, 0, len(f.members))
	for _, m := range f.members {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// syncMembers starts, restarts (changed kubeconfig) and stops members to
// match the registered WorkloadClusters.
func (f *Fleet) syncMembers() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ctx == nil {
		return // not started: Start syncs
	}
	seen := map[string]bool{}
	for _, obj := range f.clusters.GetStore().List() {
		wc, err := DecodeCluster(obj)
		if err != nil {
			f.log.Errorw("WorkloadCluster does not decode", "error", err)
			continue
		}
		seen[wc.Name] = true
		kubeconfig, err := f.kubeconfig(wc)
		existing := f.members[wc.Name]
		if err != nil {
			if existing == nil {
				f.reportUnusable(wc, err)
			}
			continue
		}
		digest := fmt.Sprintf("%x", sha256.Sum256(kubeconfig))
		if existing != nil && existing.kubeconfigDigest == digest {
			existing.setSpec(wc)
			continue
		}
		if existing != nil {
			existing.stop()
			delete(f.members, wc.Name) // a new kubeconfig that fails must not leave the stopped member placeable
		}
		m, err := f.startMember(wc, kubeconfig, digest)
		if err != nil {
			f.reportUnusable(wc, err)
			continue
		}
		f.members[wc.Name] = m
	}
	for name, m := range f.members {
		if !seen[name] {
			f.log.Infow("workload cluster deregistered", "cluster", name)
			m.stop()
			delete(f.members, name)
		}
	}
}

func (f *Fleet) kubeconfig(wc *fleetv1alpha1.WorkloadCluster) ([]byte, error) {
	return Kubeconfig(wc, corev1listers.NewSecretLister(f.secrets.GetIndexer()))
}

// Kubeconfig reads a WorkloadCluster's kubeconfig from its Secret in the
// provider workspace.
func Kubeconfig(wc *fleetv1alpha1.WorkloadCluster, secrets corev1listers.SecretLister) ([]byte, error) {
	ref := wc.Spec.KubeconfigSecretRef
	secret, err := secrets.Secrets(ref.Namespace).Get(ref.Name)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig Secret %s/%s not found", ref.Namespace, ref.Name)
	}
	key := ref.Key
	if key == "" {
		key = "kubeconfig"
	}
	data := secret.Data[key]
	if len(data) == 0 {
		return nil, fmt.Errorf("kubeconfig Secret %s/%s has no key %q", ref.Namespace, ref.Name, key)
	}
	return data, nil
}

func (f *Fleet) notify(m *Member, added bool) {
	f.listenersMu.Lock()
	listeners := append([]Listener(nil), f.listeners...)
	f.listenersMu.Unlock()
	for _, l := range listeners {
		if added && l.Added != nil {
			l.Added(m)
		}
		if !added && l.Changed != nil {
			l.Changed(m)
		}
	}
}

// policy is the TenantPolicy of a workspace, else the default one.
func (f *Fleet) policy(workspace string) fleetv1alpha1.TenantPolicySpec {
	for _, name := range []string{workspace, fleetv1alpha1.DefaultTenantPolicy} {
		obj, ok, err := f.policies.GetStore().GetByKey(name)
		if err != nil || !ok {
			continue
		}
		policy := &fleetv1alpha1.TenantPolicy{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.(*unstructured.Unstructured).Object, policy); err != nil {
			f.log.Errorw("TenantPolicy does not decode; ignored", "name", name, "error", err)
			continue
		}
		return policy.Spec
	}
	return fleetv1alpha1.TenantPolicySpec{}
}

func (f *Fleet) workspaceLimit(workspace string) int { return f.policy(workspace).MaxRunningTaskRuns }

// PodSecurityLevel is the Pod Security level of a workspace's pods, from
// its TenantPolicy (else the default one); baseline when neither sets it.
// The CRD admits only valid levels, so an error means a policy written
// around it, and the caller refuses the run rather than guessing.
func (f *Fleet) PodSecurityLevel(workspace string) (psaapi.Level, error) {
	return podsecurity.ParseLevel(f.policy(workspace).PodSecurity)
}

// Isolation is the network isolation of every workload namespace.
func (f *Fleet) Isolation() workload.Isolation { return f.opts.Isolation }

// NamespaceLabels are the labels a workload namespace of the workspace
// carries besides the service's own: its Pod Security level.
func (f *Fleet) NamespaceLabels(workspace string) (map[string]string, error) {
	level, err := f.PodSecurityLevel(workspace)
	if err != nil {
		return nil, err
	}
	return podsecurity.NamespaceLabels(level), nil
}

func (f *Fleet) clusterLimit(cluster string) int {
	if m := f.Member(cluster); m != nil {
		return m.spec().Limits.MaxRunningTaskRuns
	}
	return 0
}

// DecodeCluster decodes a WorkloadCluster from its informer's object.
func DecodeCluster(obj any) (*fleetv1alpha1.WorkloadCluster, error) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return nil, fmt.Errorf("unexpected %T", obj)
	}
	wc := &fleetv1alpha1.WorkloadCluster{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, wc); err != nil {
		return nil, fmt.Errorf("%s: %w", u.GetName(), err)
	}
	return wc, nil
}

// View is what the fleet currently acts on: the TenantPolicies and the
// registered clusters' limits its informers hold. Served at /debug/fleet,
// so that a test, or an operator, can tell when a policy it wrote is in
// force.
type View struct {
	Policies map[string]fleetv1alpha1.TenantPolicySpec `json:"policies"`
	Clusters map[string]fleetv1alpha1.ClusterLimits    `json:"clusters"`
}

// View returns what the fleet acts on now.
func (f *Fleet) View() View {
	v := View{Policies: map[string]fleetv1alpha1.TenantPolicySpec{}, Clusters: map[string]fleetv1alpha1.ClusterLimits{}}
	for _, obj := range f.policies.GetStore().List() {
		policy := &fleetv1alpha1.TenantPolicy{}
		if u, ok := obj.(*unstructured.Unstructured); ok && runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, policy) == nil {
			v.Policies[policy.Name] = policy.Spec
		}
	}
	for _, m := range f.Members() {
		v.Clusters[m.Name] = m.spec().Limits
	}
	return v
}
