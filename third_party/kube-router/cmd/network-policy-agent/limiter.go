package main

import "time"

// syncLimiter passes full-sync requests on to sync with at least an
// interval of quiet between the end of one sync and the start of the next:
// the first request after a quiet interval at once, and all those that
// arrive during a sync or the interval after it as one at the interval's
// end.
//
// Why: kube-router answers each relevant pod event with a full sync of the
// node's filter table (iptables-save, ipsets, iptables-restore, and checks
// of its top-level chains, from one save since snapshot.go), coalesced only while a
// sync runs. A burst of Tekton pods then costs every node a sync per pod
// event. A sync reads every pod from the informer's cache, so one sync
// after a burst does the work of all of them. The quiet is counted from a
// sync's end, not its start: on a loaded machine a sync takes seconds,
// and an interval counted from its start let the next one begin as soon as
// it ended, so the agents synced without pause for as long as pods came.
//
// Safe only because the node fails closed: traffic from a pod that has no
// chain of its own yet is dropped by the stack's rule behind kube-router's
// chains (pkg/devstack/netpol.go), so a pod that waits for its sync has no
// network, rather than an unfiltered one.
type syncLimiter struct {
	interval time.Duration
	// sync requests a sync without blocking.
	sync func()
	// ended is how many syncs have ended.
	ended   func() uint64
	pending chan struct{}
}

// syncWait bounds how long the limiter waits for a requested sync to end
// before it counts the interval anyway.
const syncWait = time.Minute

func newSyncLimiter(interval time.Duration, sync func(), ended func() uint64) *syncLimiter {
	return &syncLimiter{interval: interval, sync: sync, ended: ended, pending: make(chan struct{}, 1)}
}

// Request asks for a sync without blocking; requests made before the
// next sync is passed on are one.
func (l *syncLimiter) Request() {
	select {
	case l.pending <- struct{}{}:
	default:
	}
}

// Run passes requests on until stop is closed.
func (l *syncLimiter) Run(stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case <-l.pending:
		}
		before := l.ended()
		l.sync()
		if !l.waitEnded(stop, before) || !sleep(stop, l.interval) {
			return
		}
	}
}

// waitEnded waits until a sync has ended since ended() was before, or
// syncWait has passed; false if stop was closed.
func (l *syncLimiter) waitEnded(stop <-chan struct{}, before uint64) bool {
	// A tenth of the interval, at least 10 ms: NewTicker refuses a zero
	// period, which a flag of a few nanoseconds would give.
	tick := time.NewTicker(max(l.interval/10, 10*time.Millisecond))
	defer tick.Stop()
	deadline := time.Now().Add(syncWait)
	for l.ended() == before && time.Now().Before(deadline) {
		select {
		case <-stop:
			return false
		case <-tick.C:
		}
	}
	return true
}

// sleep waits for d; false if stop was closed first.
func sleep(stop <-chan struct{}, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-stop:
		return false
	case <-timer.C:
		return true
	}
}
