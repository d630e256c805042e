package controller

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/kcp-dev/logicalcluster/v3"
	"go.uber.org/zap"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

	"github.com/pipelines-service/pipelines-service/pkg/kcp"
	"github.com/pipelines-service/pipelines-service/pkg/metrics"
	"github.com/pipelines-service/pipelines-service/pkg/partition"
)

// LeaderElectionConfig is how replicas of the controller choose the one
// that reconciles: client-go's leader election on a Lease in the provider
// workspace. Every replica syncs its informers and probes the workload
// clusters, so that a new leader starts reconciling at once.
type LeaderElectionConfig struct {
	// Disabled: this process reconciles without a Lease (one replica
	// only, tests).
	Disabled bool `json:"disabled,omitempty"`
	// Identity names this replica in the Lease (default
	// <hostname>_<random>: a restarted process is a new candidate). Two
	// running processes must never share one.
	Identity string `json:"identity,omitempty"`
	// LeaseNamespace and LeaseName name the Lease in the provider
	// workspace (default default/pipelines-service-controller).
	LeaseNamespace string `json:"leaseNamespace,omitempty"`
	LeaseName      string `json:"leaseName,omitempty"`
	// LeaseDuration is how long a Lease not renewed keeps others waiting
	// (default 6s); RetryPeriod how often the leader renews and
	// candidates try (default 500ms, jittered up to 1.1 s); RenewDeadline
	// how long the leader retries renewing before it gives up (default
	// 4s). A killed leader is replaced within LeaseDuration plus two
	// retries (a candidate sees the last renewal up to a retry late, and
	// tries again up to a retry after it expired), about 8.2 s, plus
	// kcp's answers to about five requests on the way: the promise is
	// 15 s. The one Lease costs a renewal and a read per standby every
	// half second.
	LeaseDuration metav1.Duration `json:"leaseDuration,omitempty"`
	RenewDeadline metav1.Duration `json:"renewDeadline,omitempty"`
	RetryPeriod   metav1.Duration `json:"retryPeriod,omitempty"`
	// Parts is how many parts the tenant workspaces are split into among
	// the replicas (default 8; see pkg/partition). Each part has a Lease
	// of its own, <leaseName>-part-<n>, with the durations above, and the
	// replica holding it reconciles the part's workspaces; the leader
	// alone does the platform's own work (WorkloadCluster status, workload
	// namespaces and garbage, the Pipelines as Code intake). Every replica
	// must have the same Parts: a replica that meets another number takes
	// no part until that replica is gone.
	Parts int `json:"parts,omitempty"`
	// PartLeaseDuration, PartRenewDeadline and PartRetryPeriod are the
	// parts' (and the members') Leases' (default 8s, 6s, 1s; a renewal per
	// part and second): a dead replica's parts are taken within about
	// 12.4 s. A part whose renewal is late is dropped and taken again, the
	// replica goes on (pkg/partition).
	PartLeaseDuration metav1.Duration `json:"partLeaseDuration,omitempty"`
	PartRenewDeadline metav1.Duration `json:"partRenewDeadline,omitempty"`
	PartRetryPeriod   metav1.Duration `json:"partRetryPeriod,omitempty"`
}

func (c *LeaderElectionConfig) defaults() error {
	if c.Identity == "" {
		host, err := os.Hostname()
		if err != nil {
			return err
		}
		c.Identity = host + "_" + uuid.NewString()
	}
	if c.LeaseNamespace == "" {
		c.LeaseNamespace = "default"
	}
	if c.LeaseName == "" {
		c.LeaseName = "pipelines-service-controller"
	}
	for _, d := range []struct {
		v   *metav1.Duration
		def time.Duration
	}{{&c.LeaseDuration, 6 * time.Second}, {&c.RenewDeadline, 4 * time.Second}, {&c.RetryPeriod, 500 * time.Millisecond},
		{&c.PartLeaseDuration, 8 * time.Second}, {&c.PartRenewDeadline, 6 * time.Second}, {&c.PartRetryPeriod, time.Second}} {
		if d.v.Duration == 0 {
			d.v.Duration = d.def
		}
	}
	if c.Parts == 0 {
		c.Parts = 8
	}
	if c.Parts < 1 {
		return fmt.Errorf("leaderElection: parts must be at least 1, not %d", c.Parts)
	}
	if c.PartRenewDeadline.Duration >= c.PartLeaseDuration.Duration ||
		float64(c.PartRenewDeadline.Duration) <= leaderelection.JitterFactor*float64(c.PartRetryPeriod.Duration) {
		return fmt.Errorf("leaderElection: partRenewDeadline %s must be shorter than partLeaseDuration %s and longer than %.1f x partRetryPeriod %s",
			c.PartRenewDeadline.Duration, c.PartLeaseDuration.Duration, leaderelection.JitterFactor, c.PartRetryPeriod.Duration)
	}
	if c.RenewDeadline.Duration >= c.LeaseDuration.Duration {
		return fmt.Errorf("leaderElection: renewDeadline %s must be shorter than leaseDuration %s", c.RenewDeadline.Duration, c.LeaseDuration.Duration)
	}
	// client-go's rule: a renewal must have room for a jittered retry.
	if float64(c.RenewDeadline.Duration) <= leaderelection.JitterFactor*float64(c.RetryPeriod.Duration) {
		return fmt.Errorf("leaderElection: renewDeadline %s must be longer than %.1f x retryPeriod %s", c.RenewDeadline.Duration, leaderelection.JitterFactor, c.RetryPeriod.Duration)
	}
	return nil
}

// newPartition is this replica's share of the tenant workspaces: the parts
// whose Leases it holds, or every workspace when it runs alone.
func newPartition(cfg LeaderElectionConfig, kcpRest *rest.Config, provider logicalcluster.Name, m *metrics.Metrics, demand func() map[string]partition.Demand, log *zap.SugaredLogger) (*partition.Partition, error) {
	if cfg.Disabled {
		return partition.Whole(), nil
	}
	// Each part's holder renews every PartRetryPeriod, and tries again if
	// that failed; the member Lease is applied as often.
	client, err := leaseClient(kcpRest, provider, m, float32(2*cfg.Parts+2))
	if err != nil {
		return nil, err
	}
	return partition.New(partition.Config{
		Parts: cfg.Parts, Identity: cfg.Identity, LeaseNamespace: cfg.LeaseNamespace, LeasePrefix: cfg.LeaseName,
		LeaseDuration: cfg.PartLeaseDuration.Duration, RenewDeadline: cfg.PartRenewDeadline.Duration, RetryPeriod: cfg.PartRetryPeriod.Duration,
	}, client, demand, log.Named("partition").With("identity", cfg.Identity))
}

// leaseClient is a client of the provider workspace for Leases: its own,
// so that renewals never wait behind the reconcilers' requests in a
// shared rate limiter.
func leaseClient(kcpRest *rest.Config, provider logicalcluster.Name, m *metrics.Metrics, qps float32) (kubernetes.Interface, error) {
	rc := rest.CopyConfig(kcp.ForCluster(kcpRest, provider))
	rc.QPS, rc.Burst, rc.WrapTransport = qps, int(2*qps), m.WrapTransport("kcp")
	return kubernetes.NewForConfig(rc)
}

// lead runs work for every term this replica holds the Lease: work gets
// the term's context and must return once it ends, having stopped what it
// started. A term ends when ctx ends (the Lease is released, so that a
// successor need not wait it out) or when a renewal is late: another
// replica may lead already, so the term's work stops, and this replica
// stands again, as a part's holder does (pkg/partition). lead returns nil
// when ctx ends, and work's error, which ends the replica.
func lead(ctx context.Context, log *zap.SugaredLogger, kcpRest *rest.Config, provider logicalcluster.Name, cfg LeaderElectionConfig, m *metrics.Metrics, work func(context.Context) error) error {
	if cfg.Disabled {
		m.SetLeading(true)
		return work(ctx)
	}
	client, err := leaseClient(kcpRest, provider, m, 5)
	if err != nil {
		return err
	}
	return leadOn(ctx, log, client, cfg, m, work)
}

// leadOn is lead with the Lease's client.
func leadOn(ctx context.Context, log *zap.SugaredLogger, client kubernetes.Interface, cfg LeaderElectionConfig, m *metrics.Metrics, work func(context.Context) error) error {
	log = log.With("identity", cfg.Identity, "lease", cfg.LeaseNamespace+"/"+cfg.LeaseName)
	for {
		err := term(ctx, log, client, cfg, m, work)
		switch {
		case err != nil:
			return err
		case ctx.Err() != nil:
			return nil
		}
		log.Warnw("the leader Lease was not renewed in time; standing again")
	}
}

// term stands for the Lease with a new elector (client-go's keeps what it
// observed of the last term), and runs work while it holds the Lease.
func term(ctx context.Context, log *zap.SugaredLogger, client kubernetes.Interface, cfg LeaderElectionConfig, m *metrics.Metrics, work func(context.Context) error) error {
	// The elector calls OnStartedLeading in a goroutine of its own and
	// returns without waiting for it: work runs here instead, so that a
	// term has ended before the next one may start.
	leading := make(chan context.Context, 1)
	elector, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock: &resourcelock.LeaseLock{
			LeaseMeta:  metav1.ObjectMeta{Namespace: cfg.LeaseNamespace, Name: cfg.LeaseName},
			Client:     client.CoordinationV1(),
			LockConfig: resourcelock.ResourceLockConfig{Identity: cfg.Identity},
		},
		LeaseDuration:   cfg.LeaseDuration.Duration,
		RenewDeadline:   cfg.RenewDeadline.Duration,
		RetryPeriod:     cfg.RetryPeriod.Duration,
		ReleaseOnCancel: true,
		Name:            cfg.LeaseName,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(term context.Context) { leading <- term },
			OnStoppedLeading: func() { m.SetLeading(false) },
			OnNewLeader: func(identity string) {
				if identity != cfg.Identity {
					log.Infow("another replica leads; standing by", "leader", identity)
				}
			},
		},
	})
	if err != nil {
		return err
	}
	electing, stop := context.WithCancel(ctx)
	defer stop()
	ran := make(chan struct{})
	go func() {
		defer close(ran)
		elector.Run(electing)
	}()
	log.Infow("standing for leader")
	select {
	case <-ran:
		return nil
	case t := <-leading:
		log.Infow("leading: reconciling")
		m.SetLeading(true)
		err := work(t)
		stop() // work failed before the term ended: release the Lease
		<-ran
		return err
	}
}

// leaderGate admits the leader's reconciles (reconciler.Gate): the
// platform's own controllers run on every replica, and a standby drops
// their keys. Each term queues them all again (resync), and at its end
// waits for the reconciles in flight, whose contexts it cancels.
type leaderGate struct {
	mu       sync.Mutex
	term     context.Context // nil while standing by
	inflight sync.WaitGroup
	resync   []func()
}

// Enter admits a reconcile while a term lasts; the reconcile's context
// ends with the term.
func (g *leaderGate) Enter(ctx context.Context, _ string) (context.Context, func(), bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.term == nil || g.term.Err() != nil {
		return ctx, func() {}, false
	}
	g.inflight.Add(1)
	entered, cancel := context.WithCancel(ctx)
	unhook := context.AfterFunc(g.term, cancel)
	return entered, func() {
		unhook()
		cancel()
		g.inflight.Done()
	}, true
}

// OnTerm adds a resync, called at the start of each term.
func (g *leaderGate) OnTerm(resync func()) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.resync = append(g.resync, resync)
}

// open admits reconciles until term ends, and queues every key again;
// closed waits for the term's reconciles in flight.
func (g *leaderGate) open(term context.Context) (closed func()) {
	g.mu.Lock()
	g.term = term
	resync := g.resync
	g.mu.Unlock()
	for _, f := range resync {
		f()
	}
	return func() {
		g.mu.Lock()
		g.term = nil
		g.mu.Unlock()
		g.inflight.Wait()
	}
}
