package partition

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	coordinationv1ac "k8s.io/client-go/applyconfigurations/coordination/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/leaderelection"
)

const (
	// leaseLabel marks the replicas' Leases: memberLabel for the
	// members', partLabel for the parts'.
	leaseLabel  = "pipelines-service.dev/controller-lease"
	memberLabel = "member"
	// partsAnnotation is the member's Parts: members that differ take
	// no part (PartOf would put a workspace in two parts at once).
	partsAnnotation = "pipelines-service.dev/parts"
	// demandAnnotation is the member's Demand per workload cluster.
	demandAnnotation = "pipelines-service.dev/demand"
	fieldManager     = "pipelines-service-controller"
)

// elector is client-go's leader election for the part, on partLock.
func (pt *part) elector(leases cache.Indexer) (*leaderelection.LeaderElector, error) {
	cfg := pt.p.cfg
	return leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock: &partLock{namespace: cfg.LeaseNamespace, name: fmt.Sprintf("%s-part-%d", cfg.LeasePrefix, pt.index),
			identity: cfg.Identity, client: pt.p.client.CoordinationV1(), cache: leases, may: pt.may},
		LeaseDuration: cfg.LeaseDuration,
		RenewDeadline: cfg.RenewDeadline,
		RetryPeriod:   cfg.RetryPeriod,
		// Cancelled only once the part's reconciles have drained
		// (giveUp), also when the replica stops.
		ReleaseOnCancel: true,
		Name:            fmt.Sprintf("part-%d", pt.index),
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: pt.take,
			OnStoppedLeading: func() {},
		},
	})
}

// memberLease is the name of identity's member Lease.
func (p *Partition) memberLease() string {
	h := fnv.New64a()
	_, _ = h.Write([]byte(p.cfg.Identity))
	return fmt.Sprintf("%s-member-%016x", p.cfg.LeasePrefix, h.Sum64())
}

// heartbeat renews this replica's member Lease with its demand.
func (p *Partition) heartbeat(ctx context.Context) error {
	demand, err := json.Marshal(p.demand())
	if err != nil {
		return err
	}
	lease := coordinationv1ac.Lease(p.memberLease(), p.cfg.LeaseNamespace).
		WithLabels(map[string]string{leaseLabel: memberLabel}).
		WithAnnotations(map[string]string{partsAnnotation: strconv.Itoa(p.cfg.Parts), demandAnnotation: string(demand)}).
		WithSpec(coordinationv1ac.LeaseSpec().
			WithHolderIdentity(p.cfg.Identity).
			WithLeaseDurationSeconds(int32(p.cfg.LeaseDuration.Seconds())).
			WithRenewTime(metav1.NowMicro()))
	ctx, cancel := context.WithTimeout(ctx, p.cfg.RenewDeadline)
	defer cancel()
	_, err = p.client.CoordinationV1().Leases(p.cfg.LeaseNamespace).Apply(ctx, lease, metav1.ApplyOptions{FieldManager: fieldManager, Force: true})
	return err
}

// leave deletes this replica's member Lease, so that the others take its
// parts at once instead of after LeaseDuration.
func (p *Partition) leave() {
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.RenewDeadline)
	defer cancel()
	err := p.client.CoordinationV1().Leases(p.cfg.LeaseNamespace).Delete(ctx, p.memberLease(), metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		p.log.Warnw("deleting this replica's member Lease failed; it expires", "error", err)
	}
}

// memberWatch follows the members' Leases. A member is live while its
// renew time keeps changing: what counts is when this replica saw it
// change, not the time written, so that clocks need not agree (as in
// client-go's leader election).
type memberWatch struct {
	lister cache.Indexer
	mu     sync.Mutex
	seen   map[string]observed
	self   string
	ttl    time.Duration
}

type observed struct {
	renew string
	at    time.Time
}

// watchLeases starts the informer on the replicas' Leases.
func (p *Partition) watchLeases(ctx context.Context) (cache.Indexer, error) {
	factory := informers.NewSharedInformerFactoryWithOptions(p.client, 0, informers.WithNamespace(p.cfg.LeaseNamespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = leaseLabel }))
	informer := factory.Coordination().V1().Leases().Informer()
	factory.Start(ctx.Done())
	// Bounded: a replica that cannot list the Leases (its RBAC, say) must
	// say so, not wait holding nothing.
	syncing, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if !cache.WaitForCacheSync(syncing.Done(), informer.HasSynced) {
		return nil, fmt.Errorf("the replicas' Leases did not sync within a minute (can this replica list and watch Leases?): %w", syncing.Err())
	}
	return informer.GetIndexer(), nil
}

// view is the live members, as of now.
func (w *memberWatch) view(now time.Time) *view {
	w.mu.Lock()
	defer w.mu.Unlock()
	v := &view{demands: map[string]map[string]Demand{}, parts: map[string]int{}}
	names := map[string]bool{}
	for _, obj := range w.lister.List() {
		lease, ok := obj.(*coordinationv1.Lease)
		// The label is checked again: a watch through a proxy, or a fake,
		// may not filter as asked, and a part's Lease is no member.
		if !ok || lease.Labels[leaseLabel] != memberLabel || lease.Spec.HolderIdentity == nil || lease.Spec.RenewTime == nil {
			continue
		}
		names[lease.Name] = true
		renew := lease.Spec.RenewTime.String()
		o, ok := w.seen[lease.Name]
		switch {
		case !ok:
			// First seen: from the time written, if that is earlier. A
			// Lease left by a replica killed long ago is not live for
			// another LeaseDuration; a member whose clock is behind seems
			// gone only until its next renewal is seen.
			o = observed{renew: renew, at: minTime(now, lease.Spec.RenewTime.Time)}
		case o.renew != renew:
			o = observed{renew: renew, at: now}
		}
		w.seen[lease.Name] = o
		identity := *lease.Spec.HolderIdentity
		if identity != w.self && now.Sub(o.at) > w.ttl {
			continue
		}
		parts, _ := strconv.Atoi(lease.Annotations[partsAnnotation])
		var demand map[string]Demand
		_ = json.Unmarshal([]byte(lease.Annotations[demandAnnotation]), &demand) // a member's bad demand counts as none
		v.parts[identity], v.demands[identity] = parts, demand
	}
	for name := range w.seen {
		if !names[name] {
			delete(w.seen, name)
		}
	}
	if _, ok := v.parts[w.self]; !ok {
		v.parts[w.self] = -1 // not published yet: it still runs
	}
	return v
}

// view is the live members: the parts count and demand each published.
type view struct {
	parts    map[string]int
	demands  map[string]map[string]Demand
	disagree []string
}

func (v *view) identities() []string {
	return slices.Sorted(maps.Keys(v.parts))
}

// owners assigns the parts over the live members, or none to anyone while
// a live member splits the workspaces into another number of parts.
func (v *view) owners(self string, parts int) []string {
	v.disagree = nil
	for id, n := range v.parts {
		if n != parts && n != -1 {
			v.disagree = append(v.disagree, fmt.Sprintf("%s has %d parts", id, n))
		}
	}
	if len(v.disagree) > 0 {
		return make([]string, parts)
	}
	return Assign(parts, v.identities())
}

// mine lists the parts owners gives self, for the log.
func (v *view) mine(owners []string, self string) []string {
	var mine []string
	for i, o := range owners {
		if o == self {
			mine = append(mine, strconv.Itoa(i))
		}
	}
	return mine
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
