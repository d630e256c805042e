package fleet

import (
	"context"
	"sync"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corev1listers "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"

	fleetv1alpha1 "github.com/pipelines-service/pipelines-service/apis/fleet/v1alpha1"
	"github.com/pipelines-service/pipelines-service/pkg/workload"
)

// Member is one registered workload cluster: its client, informers on
// what the service made there, and its state as the heartbeat sees it.
type Member struct {
	Name      string
	Client    kubernetes.Interface
	Informers informers.SharedInformerFactory
	Pods      corev1listers.PodLister
	Claims    corev1listers.PersistentVolumeClaimLister
	Secrets   corev1listers.SecretLister
	Maps      corev1listers.ConfigMapLister
	Spaces    corev1listers.NamespaceLister

	kubeconfigDigest string
	failoverAfter    time.Duration
	cancel           context.CancelFunc
	log              *zap.SugaredLogger

	mu    sync.Mutex
	wc    *fleetv1alpha1.WorkloadCluster
	state memberState
}

type memberState struct {
	synced           bool
	reachable        bool
	readyNodes       int
	userNamespaces   bool
	lastSeen         time.Time
	unreachableSince time.Time
	lastError        string
}

func (f *Fleet) startMember(wc *fleetv1alpha1.WorkloadCluster, kubeconfig []byte, digest string) (*Member, error) {
	rc, err := clientcmd.RESTConfigFromKubeConfig(kubeconfig)
	if err != nil {
		return nil, err
	}
	rc.QPS, rc.Burst = f.opts.WorkloadQPS, f.opts.WorkloadBurst
	rc.Timeout = 30 * time.Second
	if f.opts.WrapTransport != nil {
		rc.WrapTransport = f.opts.WrapTransport("workload/" + wc.Name)
	}
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, err
	}
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithTweakListOptions(workload.ManagedSelector))
	ctx, cancel := context.WithCancel(f.ctx)
	m := &Member{
		Name: wc.Name, Client: client, Informers: factory,
		Pods: factory.Core().V1().Pods().Lister(), Claims: factory.Core().V1().PersistentVolumeClaims().Lister(),
		Secrets: factory.Core().V1().Secrets().Lister(), Maps: factory.Core().V1().ConfigMaps().Lister(),
		Spaces:           factory.Core().V1().Namespaces().Lister(),
		kubeconfigDigest: digest, failoverAfter: f.opts.FailoverAfter, cancel: cancel,
		log: f.log.With("cluster", wc.Name), wc: wc,
		// A member starts as unreachable since now: it is lost only if it
		// does not answer within FailoverAfter.
		state: memberState{unreachableSince: time.Now()},
	}
	f.notify(m, true)
	factory.Start(ctx.Done())
	go f.waitSynced(ctx, m)
	go f.heartbeat(ctx, m)
	m.log.Infow("workload cluster registered", "server", rc.Host)
	return m, nil
}

func (f *Fleet) waitSynced(ctx context.Context, m *Member) {
	for _, ok := range m.Informers.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return
		}
	}
	m.mu.Lock()
	m.state.synced = true
	m.mu.Unlock()
	f.notify(m, false)
}

func (m *Member) stop() { m.cancel() }

func (m *Member) setSpec(wc *fleetv1alpha1.WorkloadCluster) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.wc = wc
}

func (m *Member) spec() fleetv1alpha1.WorkloadClusterSpec {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.wc.Spec
}

// Labels are the WorkloadCluster's labels.
func (m *Member) Labels() labels.Set {
	m.mu.Lock()
	defer m.mu.Unlock()
	return labels.Set(m.wc.Labels)
}

// Ready says runs can be placed on the member: its informers synced, its
// apiserver answers and it has a Ready node.
func (m *Member) Ready() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.state.synced && m.state.reachable && m.state.readyNodes > 0
}

// UserNamespaces says every Ready node of the member runs pods in user
// namespaces (hostUsers: false) with its default runtime handler, so that
// a pod can ask for one wherever the scheduler puts it.
func (m *Member) UserNamespaces() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.state.userNamespaces
}

// Reachable says the member's apiserver answered the last heartbeat.
func (m *Member) Reachable() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.state.reachable
}

// Lost says the member has not answered for FailoverAfter: runs placed
// there that have not started move, running ones end.
func (m *Member) Lost() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lostLocked(time.Now())
}

func (m *Member) lostLocked(now time.Time) bool {
	return !m.state.reachable && now.Sub(m.state.unreachableSince) >= m.failoverAfter
}

// LostSince is when the member stopped answering (zero if it answers).
func (m *Member) LostSince() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.state.reachable {
		return time.Time{}
	}
	return m.state.unreachableSince
}

// Synced says the member's informers have synced.
func (m *Member) Synced() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.state.synced
}

// runningPods counts the service's pods on the member that have not
// finished, from its informer.
func (m *Member) runningPods() int {
	pods, err := m.Pods.List(labels.Everything())
	if err != nil {
		return 0
	}
	n := 0
	for _, p := range pods {
		if p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed && p.DeletionTimestamp == nil {
			n++
		}
	}
	return n
}

// AddHandler adds an event handler to one of the member's informers.
func AddHandler(inf cache.SharedIndexInformer, h cache.ResourceEventHandler) {
	_, _ = inf.AddEventHandler(h)
}

// NewStaticMember is a member on client that is registered, synced,
// reachable and Ready (one node), whatever its apiserver says: what the
// reconcilers' table tests run their workload side on, with a fake
// client. Its informers are the caller's to start.
func NewStaticMember(name string, client kubernetes.Interface, clusterLabels map[string]string) *Member {
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithTweakListOptions(workload.ManagedSelector))
	return &Member{
		Name: name, Client: client, Informers: factory,
		Pods: factory.Core().V1().Pods().Lister(), Claims: factory.Core().V1().PersistentVolumeClaims().Lister(),
		Secrets: factory.Core().V1().Secrets().Lister(), Maps: factory.Core().V1().ConfigMaps().Lister(),
		Spaces: factory.Core().V1().Namespaces().Lister(),
		cancel: func() {}, log: zap.NewNop().Sugar(),
		wc:    &fleetv1alpha1.WorkloadCluster{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: clusterLabels}},
		state: memberState{synced: true, reachable: true, readyNodes: 1},
	}
}
