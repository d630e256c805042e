// Package resolution answers Tekton's remote references (the git,
// bundles, http and cluster resolvers) for tenant runs, in the
// controller's process and in the run's own workspace and namespace.
package resolution

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"sync"
	"time"

	"github.com/kcp-dev/logicalcluster/v3"
	resolverconfig "github.com/tektoncd/pipeline/pkg/apis/config/resolver"
	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	tektonclient "github.com/tektoncd/pipeline/pkg/client/clientset/versioned"
	remoteresource "github.com/tektoncd/pipeline/pkg/remoteresolution/resource"
	resolutioncommon "github.com/tektoncd/pipeline/pkg/resolution/common"
	"go.uber.org/zap"
	"k8s.io/client-go/kubernetes"
)

// Workspaces makes clients of one tenant workspace.
type Workspaces interface {
	Kube(logicalcluster.Name) (kubernetes.Interface, error)
	Tekton(logicalcluster.Name) (tektonclient.Interface, error)
}

// TenantConfig is a workspace's resolver configuration: the data of
// upstream's ConfigMaps in tekton-pipelines-resolvers, by name, over the
// platform's.
type TenantConfig interface {
	Resolvers(cluster logicalcluster.Name) (Config, error)
}

// Config is the resolver configuration of one workspace.
type Config struct {
	Flags *resolverconfig.FeatureFlags
	// Data is each resolver ConfigMap's data by ConfigMap name.
	Data map[string]map[string]string
}

// Options configure a Service.
type Options struct {
	Workspaces Workspaces
	Config     TenantConfig
	Egress     Egress
	// MaxFetchTimeout caps a tenant's fetch-timeout (default 1m).
	MaxFetchTimeout time.Duration
	// MaxBytes bounds a fetched resource (default 1 MiB).
	MaxBytes int64
	// Concurrency bounds the fetches running at once (default 8), and
	// half of it those of one workspace, so that one tenant cannot starve
	// the others.
	Concurrency int
	Log         *zap.SugaredLogger
}

// Service resolves remote references for the reconcilers, in the
// controller's process. It replaces the ResolutionRequest round trip of
// upstream (a CRD object per request, a resolver deployment watching
// them): a Requester per run answers "in progress" while a fetch runs in
// the background, then the result, from the run's own workspace and
// namespace. Results are kept while runs ask for them, and forgotten
// after idle.
type Service struct {
	opts      Options
	log       *zap.SugaredLogger
	git       *gitProxy
	global    chan struct{}
	mu        sync.Mutex
	requests  map[string]*request
	perTenant map[logicalcluster.Name]chan struct{}
	lastSweep time.Time
}

// request is one resolution: running until done is closed.
type request struct {
	done     chan struct{}
	result   *resolved
	err      error
	notify   map[string]func()
	lastUsed time.Time
	finished time.Time
}

// resolved is what a resolver returned.
type resolved struct {
	data        []byte
	annotations map[string]string
	refSource   *v1.RefSource
}

func (r *resolved) Data() ([]byte, error)          { return r.data, nil }
func (r *resolved) Annotations() map[string]string { return r.annotations }
func (r *resolved) RefSource() *v1.RefSource       { return r.refSource }
func (r *resolved) String() string                 { return fmt.Sprintf("%d bytes", len(r.data)) }

var _ resolutioncommon.ResolvedResource = &resolved{}

const (
	// keepIdle is how long a result no run asks for is kept.
	keepIdle = 15 * time.Minute
	// keepFailure is how long a failure is kept: the run that asked has
	// failed with it by then; a new run tries again.
	keepFailure = 30 * time.Second
	// waitInline is how long Submit waits for a fetch before answering
	// "in progress": the cluster resolver and a warm forge answer in
	// less, and the run goes on in the same reconcile.
	waitInline = 300 * time.Millisecond
)

// New makes a Service; Start it before use.
func New(opts Options) *Service {
	if opts.MaxFetchTimeout == 0 {
		opts.MaxFetchTimeout = time.Minute
	}
	if opts.MaxBytes == 0 {
		opts.MaxBytes = 1 << 20
	}
	if opts.Concurrency == 0 {
		opts.Concurrency = 8
	}
	return &Service{
		opts:      opts,
		log:       opts.Log,
		global:    make(chan struct{}, opts.Concurrency),
		requests:  map[string]*request{},
		perTenant: map[logicalcluster.Name]chan struct{}{},
	}
}

// Start starts the proxy git connects through and sets the environment
// every git process of the controller inherits (upstream's clone mode
// runs git with the process's environment).
func (s *Service) Start(ctx context.Context) error {
	proxy, err := startGitProxy(ctx, s.log, s.opts.Egress)
	if err != nil {
		return fmt.Errorf("git proxy: %w", err)
	}
	s.git = proxy
	for k, v := range gitEnvironment(proxy.URL()) {
		if err := os.Setenv(k, v); err != nil {
			return err
		}
	}
	return nil
}

// Requester is upstream's Requester for the runs of one workspace and
// namespace. notify is called (e.g. to enqueue the run) when a request
// this requester submitted finishes; key tells notifications apart, so
// that a run re-submitting is notified once.
func (s *Service) Requester(cluster logicalcluster.Name, namespace, key string, notify func()) remoteresource.Requester {
	return &requester{s: s, cluster: cluster, namespace: namespace, key: key, notify: notify}
}

type requester struct {
	s         *Service
	cluster   logicalcluster.Name
	namespace string
	key       string
	notify    func()
}

// Submit answers a request: its result, its failure, or
// ErrRequestInProgress while it is fetched.
func (r *requester) Submit(ctx context.Context, resolver remoteresource.ResolverName, req remoteresource.Request) (remoteresource.ResolvedResource, error) {
	p := req.ResolverPayload()
	if p.Namespace != r.namespace {
		return nil, fmt.Errorf("resolution in namespace %q asked for from namespace %q", p.Namespace, r.namespace)
	}
	var params v1.Params
	var url string
	if p.ResolutionSpec != nil {
		params, url = p.ResolutionSpec.Params, p.ResolutionSpec.URL
	}
	// The name is upstream's hash of resolver, owner and parameters: the
	// same reference of the same run is the same request.
	key := r.cluster.String() + "/" + p.Namespace + "/" + p.Name
	return r.s.submit(ctx, key, r.key, r.notify, func(ctx context.Context) (*resolved, error) {
		return r.s.resolve(ctx, r.cluster, p.Namespace, string(resolver), params, url)
	}, r.cluster)
}

func (s *Service) submit(ctx context.Context, key, waiter string, notify func(), fetch func(context.Context) (*resolved, error), cluster logicalcluster.Name) (remoteresource.ResolvedResource, error) {
	now := time.Now()
	s.mu.Lock()
	s.sweep(now)
	req, ok := s.requests[key]
	if ok && req.failedBefore(now.Add(-keepFailure)) {
		ok = false // a new attempt
	}
	if !ok {
		req = &request{done: make(chan struct{}), notify: map[string]func(){}}
		s.requests[key] = req
		go s.run(cluster, req, fetch)
	}
	req.lastUsed = now
	select {
	case <-req.done:
		s.mu.Unlock()
		return req.answer()
	default:
	}
	if notify != nil {
		req.notify[waiter] = notify
	}
	s.mu.Unlock()

	select {
	case <-req.done:
		return req.answer()
	case <-time.After(waitInline):
		return nil, resolutioncommon.ErrRequestInProgress
	case <-ctx.Done():
		return nil, resolutioncommon.ErrRequestInProgress
	}
}

// failedBefore says r failed before t; s.mu is held.
func (r *request) failedBefore(t time.Time) bool {
	select {
	case <-r.done:
		return r.err != nil && r.finished.Before(t)
	default:
		return false
	}
}

func (r *request) answer() (remoteresource.ResolvedResource, error) {
	if r.err != nil {
		return nil, r.err
	}
	return r.result, nil
}

// run fetches under the concurrency bounds and notifies the waiters.
func (s *Service) run(cluster logicalcluster.Name, req *request, fetch func(context.Context) (*resolved, error)) {
	tenant := s.tenantSlots(cluster)
	tenant <- struct{}{}
	s.global <- struct{}{}
	result, err := s.safely(fetch)
	<-s.global
	<-tenant

	s.mu.Lock()
	req.result, req.err, req.finished = result, err, time.Now()
	close(req.done)
	waiters := req.notify
	req.notify = nil
	s.mu.Unlock()
	for _, notify := range waiters {
		notify()
	}
}

// safely runs fetch with the platform's deadline, turning a panic in
// upstream code into the request's error instead of the controller's end.
func (s *Service) safely(fetch func(context.Context) (*resolved, error)) (result *resolved, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.MaxFetchTimeout)
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			s.log.Errorw("a resolver panicked", "panic", p)
			result, err = nil, fmt.Errorf("the resolver failed: %v", p)
		}
	}()
	return fetch(ctx)
}

func (s *Service) tenantSlots(cluster logicalcluster.Name) chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	slots, ok := s.perTenant[cluster]
	if !ok {
		slots = make(chan struct{}, max(1, s.opts.Concurrency/2))
		s.perTenant[cluster] = slots
	}
	return slots
}

// sweep forgets results idle for keepIdle and failures older than
// keepFailure, at most once a minute; s.mu is held.
func (s *Service) sweep(now time.Time) {
	if now.Sub(s.lastSweep) < time.Minute {
		return
	}
	s.lastSweep = now
	for key, req := range maps.Clone(s.requests) {
		select {
		case <-req.done:
		default:
			continue
		}
		if now.Sub(req.lastUsed) > keepIdle || req.failedBefore(now.Add(-keepFailure)) {
			delete(s.requests, key)
		}
	}
}

// IsHostNotAllowed says err is the platform refusing a host.
func IsHostNotAllowed(err error) bool {
	var e *HostNotAllowedError
	return errors.As(err, &e)
}
