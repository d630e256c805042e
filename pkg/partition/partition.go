package partition

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// Config is how the replicas split the work.
type Config struct {
	// Parts is how many parts the workspaces are split into; every
	// replica must have the same. More parts spread the work more evenly
	// over more replicas, and cost one Lease renewal per part and second.
	Parts int
	// Identity names this replica in the Leases (the leader election's).
	Identity string
	// LeaseNamespace is the namespace of the Leases in the provider
	// workspace; LeasePrefix starts their names: <prefix>-part-<n> for
	// the parts, <prefix>-member-<hash of identity> for the replicas.
	LeaseNamespace, LeasePrefix string
	// LeaseDuration, RenewDeadline and RetryPeriod are the leader
	// election's, for every part, and for the members' Leases (renewed
	// every RetryPeriod, gone after LeaseDuration).
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
}

// Handler is told of the parts this replica takes and gives up. in says
// whether a workspace is in the part.
type Handler struct {
	// Taking is called once the part's Lease is held, before any of its
	// workspaces is reconciled here (to count their running TaskRuns).
	Taking func(in func(workspace string) bool)
	// Taken is called once the part's workspaces are reconciled here (to
	// queue them all).
	Taken func(in func(workspace string) bool)
	// Given is called once no reconcile of the part is in flight here any
	// more, before its Lease is released.
	Given func(in func(workspace string) bool)
}

// Partition is this replica's share of the workspaces.
type Partition struct {
	cfg      Config
	client   kubernetes.Interface
	demand   func() map[string]Demand
	log      *zap.SugaredLogger
	handlers []Handler
	parts    []*part
	// whole: one replica, no Leases: every workspace is reconciled here,
	// once Run has told the handlers (wholeHeld).
	whole     bool
	wholeHeld atomic.Bool
	// members is the last view of the live replicas.
	members atomic.Pointer[view]
}

// Whole is the Partition of a controller that runs alone (no leader
// election): every workspace is its own.
func Whole() *Partition { return &Partition{whole: true} }

// New is a replica's Partition: client reaches the provider workspace,
// demand says what this replica's TaskRuns ask of each workload cluster
// (published for the others, see Caps).
func New(cfg Config, client kubernetes.Interface, demand func() map[string]Demand, log *zap.SugaredLogger) (*Partition, error) {
	if cfg.Parts < 1 {
		return nil, fmt.Errorf("parts must be at least 1, not %d", cfg.Parts)
	}
	if cfg.Identity == "" || cfg.LeaseNamespace == "" || cfg.LeasePrefix == "" {
		return nil, errors.New("identity, lease namespace and lease prefix are required")
	}
	p := &Partition{cfg: cfg, client: client, demand: demand, log: log}
	for i := range cfg.Parts {
		p.parts = append(p.parts, newPart(i, p))
	}
	return p, nil
}

// Handle adds a handler; all are added before Run.
func (p *Partition) Handle(h Handler) { p.handlers = append(p.handlers, h) }

// Enter says whether this replica reconciles workspace now. If so, the
// part is not given up until done is called, and the returned context,
// ctx's child, ends if the part's Lease is lost meanwhile (so that the
// reconcile's requests stop before another replica can take the part).
func (p *Partition) Enter(ctx context.Context, workspace string) (context.Context, func(), bool) {
	if p.whole {
		return ctx, func() {}, p.wholeHeld.Load()
	}
	return p.parts[PartOf(workspace, p.cfg.Parts)].enter(ctx)
}

// Held are the parts this replica reconciles now.
func (p *Partition) Held() []int {
	var held []int
	for _, pt := range p.parts {
		if pt.isHeld() {
			held = append(held, pt.index)
		}
	}
	if p.whole && p.wholeHeld.Load() {
		held = []int{0}
	}
	return held
}

// Run takes and gives up parts as the members come and go, until ctx ends
// (then it gives up every part, releasing its Lease).
func (p *Partition) Run(ctx context.Context) error {
	if p.whole {
		all := func(string) bool { return true }
		p.notify(func(h Handler) func(func(string) bool) { return h.Taking }, all)
		p.wholeHeld.Store(true)
		p.notify(func(h Handler) func(func(string) bool) { return h.Taken }, all)
		<-ctx.Done()
		return nil
	}
	leases, err := p.watchLeases(ctx)
	if err != nil {
		return err
	}
	members := &memberWatch{lister: leases, seen: map[string]observed{}, self: p.cfg.Identity, ttl: p.cfg.LeaseDuration}
	// The first assignment before the electors start: their first try
	// takes the parts assigned here.
	assigned := p.tick(ctx, members, nil)
	var electors sync.WaitGroup
	for _, pt := range p.parts {
		electors.Add(1)
		go func() {
			defer electors.Done()
			pt.run(leases)
		}()
	}
	p.log.Infow("standing for parts", "parts", p.cfg.Parts)
	err = p.balance(ctx, members, assigned)
	p.giveUpAll(&electors)
	p.leave()
	return err
}

// balance renews this replica's member Lease and stands for the parts
// Assign gives it, every RetryPeriod, until ctx ends.
func (p *Partition) balance(ctx context.Context, members *memberWatch, last []string) error {
	ticker := time.NewTicker(p.cfg.RetryPeriod)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
		last = p.tick(ctx, members, last)
	}
}

// tick renews the member Lease, reads the live members, and stands for
// the parts assigned here and no other. It returns the parts assigned
// here, which it logs when they changed from last.
func (p *Partition) tick(ctx context.Context, members *memberWatch, last []string) []string {
	if err := p.heartbeat(ctx); err != nil && ctx.Err() == nil {
		p.log.Warnw("renewing this replica's member Lease failed", "error", err)
	}
	v := members.view(time.Now())
	p.members.Store(v)
	want := v.owners(p.cfg.Identity, p.cfg.Parts)
	mine := v.mine(want, p.cfg.Identity)
	if !slices.Equal(mine, last) {
		p.log.Infow("parts assigned to this replica", "parts", mine, "members", v.identities(), "disagree", v.disagree)
	}
	for i, pt := range p.parts {
		pt.want(want[i] == p.cfg.Identity)
	}
	return mine
}

// giveUpAll gives up every part (its reconciles drained, its Lease
// released) and waits for the electors to end, at most a LeaseDuration: a
// part that cannot drain by then keeps its Lease until it expires.
func (p *Partition) giveUpAll(electors *sync.WaitGroup) {
	for _, pt := range p.parts {
		pt.close()
	}
	ended := make(chan struct{})
	go func() {
		electors.Wait()
		close(ended)
	}()
	select {
	case <-ended:
	case <-time.After(p.cfg.LeaseDuration):
		p.log.Warnw("parts' reconciles did not end in time; their Leases are left to expire")
	}
}

// notify calls one hook of every handler with in.
func (p *Partition) notify(hook func(Handler) func(func(string) bool), in func(string) bool) {
	for _, h := range p.handlers {
		if f := hook(h); f != nil {
			f(in)
		}
	}
}

// part is one part's Lease, as this replica stands for it. Its elector
// runs as long as the replica does (one after another: each one that held
// the part ends when it is given up), observing the Lease while the part is
// assigned elsewhere, so that it can take the part the moment it is
// assigned here and free (partLock).
type part struct {
	index int
	p     *Partition

	mu       sync.Mutex
	drained  *sync.Cond
	state    partState
	closing  bool
	inflight int
	stop     context.CancelFunc // ends the current elector
	// held ends when the part's Lease is lost: the reconciles in flight
	// end with it.
	held     context.Context
	loseHeld context.CancelFunc
}

type partState int

const (
	observing partState = iota // assigned elsewhere: never taken
	standing                   // assigned here: taken when free
	holding                    // held, its workspaces reconciled here
	giving                     // being given up; never reconciled again
)

func newPart(index int, p *Partition) *part {
	pt := &part{index: index, p: p}
	pt.drained = sync.NewCond(&pt.mu)
	return pt
}

func (pt *part) in(workspace string) bool { return PartOf(workspace, pt.p.cfg.Parts) == pt.index }

func (pt *part) enter(ctx context.Context) (context.Context, func(), bool) {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	if pt.state != holding {
		return nil, nil, false
	}
	pt.inflight++
	ctx, cancel := context.WithCancel(ctx)
	unhook := context.AfterFunc(pt.held, cancel)
	return ctx, func() {
		unhook()
		cancel()
		pt.mu.Lock()
		defer pt.mu.Unlock()
		pt.inflight--
		if pt.inflight == 0 {
			pt.drained.Broadcast()
		}
	}, true
}

func (pt *part) isHeld() bool {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	return pt.state == holding
}

// may says the part may be taken: it is assigned here.
func (pt *part) may() bool {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	return pt.state == standing && !pt.closing
}

// want stands for the part, or gives it up.
func (pt *part) want(want bool) {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	switch {
	case want && pt.state == observing && !pt.closing:
		pt.state = standing
	case !want && pt.state == standing:
		pt.state = observing
	case !want && pt.state == holding:
		pt.state = giving
		go pt.giveUp()
	}
}

// close gives the part up for good: the replica stops.
func (pt *part) close() {
	pt.mu.Lock()
	pt.closing = true
	stop := pt.stop
	holding := pt.state == holding
	pt.mu.Unlock()
	if holding {
		pt.want(false)
	} else if stop != nil && pt.stateIs(observing, standing) {
		stop()
	}
}

func (pt *part) stateIs(states ...partState) bool {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	return slices.Contains(states, pt.state)
}

// giveUp waits for the reconciles in flight, tells the handlers and
// releases the Lease (the elector, cancelled, releases it).
func (pt *part) giveUp() {
	pt.drain()
	pt.p.notify(func(h Handler) func(func(string) bool) { return h.Given }, pt.in)
	pt.p.log.Infow("giving up part", "part", pt.index)
	pt.mu.Lock()
	pt.stop()
	pt.mu.Unlock()
}

// drain waits until no reconcile of the part is in flight here.
func (pt *part) drain() {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	for pt.inflight > 0 {
		pt.drained.Wait()
	}
}

// take makes the part this replica's, or releases it again if it is no
// longer assigned here. leading is the elector's term: client-go calls
// OnStartedLeading in a goroutine of its own, which may run only after the
// term ended (a renewal failed at once) and run saw the part not held; so
// a term that ended takes nothing, and stops no elector (pt.stop may be a
// newer one's by then).
func (pt *part) take(leading context.Context) {
	pt.mu.Lock()
	if leading.Err() != nil {
		pt.mu.Unlock()
		return
	}
	if pt.state != standing || pt.closing {
		pt.stop()
		pt.mu.Unlock()
		return
	}
	pt.p.notify(func(h Handler) func(func(string) bool) { return h.Taking }, pt.in)
	pt.state = holding
	pt.held, pt.loseHeld = context.WithCancel(context.Background())
	pt.mu.Unlock()
	pt.p.log.Infow("took part", "part", pt.index)
	pt.p.notify(func(h Handler) func(func(string) bool) { return h.Taken }, pt.in)
}

// run runs the part's electors until the replica stops.
//
// A Lease not renewed in time is lost: the part is no longer reconciled
// here (new reconciles are refused, the ones in flight see their context
// end), and it is taken again when the Lease is, by whichever replica it
// is assigned to. Another replica can take the Lease only when it expires,
// LeaseDuration after its last renewal; the loss is seen RenewDeadline
// after it, so the reconciles in flight have the difference to end. The
// replica goes on: under a burst that keeps kcp from answering for seconds,
// every replica's renewals are late at once, and restarting them all would
// only add to the load.
func (pt *part) run(leases cache.Indexer) {
	for {
		ctx, stop := context.WithCancel(context.Background())
		pt.mu.Lock()
		if pt.closing {
			pt.mu.Unlock()
			stop()
			return
		}
		pt.stop = stop
		pt.mu.Unlock()
		elector, err := pt.elector(leases)
		if err != nil { // only for a config New has checked
			stop()
			pt.p.log.Errorw("part elector", "part", pt.index, "error", err)
			return
		}
		elector.Run(ctx)
		stop()
		pt.mu.Lock()
		lost := pt.state == holding
		if pt.loseHeld != nil {
			// Lost, or given up with nothing in flight any more.
			pt.loseHeld()
		}
		if pt.state == giving || lost {
			pt.state = observing
		}
		pt.mu.Unlock()
		if lost {
			pt.p.log.Errorw("lost the Lease of a part this replica reconciled; it stands for it again", "part", pt.index)
			// The reconciles in flight saw their context end; the
			// handlers are told once they did (a TaskRun admitted by
			// one of them after its workspaces' admission was freed
			// would keep a slot).
			pt.drain()
			pt.p.notify(func(h Handler) func(func(string) bool) { return h.Given }, pt.in)
		}
	}
}

// State is what /debug/parts shows of a replica's Partition.
type State struct {
	Identity string   `json:"identity,omitempty"`
	Parts    int      `json:"parts"`
	Held     []int    `json:"held"`
	Members  []string `json:"members,omitempty"`
}

// State returns this replica's view.
func (p *Partition) State() State {
	s := State{Identity: p.cfg.Identity, Parts: max(p.cfg.Parts, 1), Held: p.Held()}
	if v := p.members.Load(); v != nil {
		s.Members = v.identities()
	}
	return s
}
