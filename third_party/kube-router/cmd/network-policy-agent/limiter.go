package main

import "time"

// syncLimiter passes full-sync requests on to sync at most once per
// interval: the first request after a quiet interval at once, and all
// those that arrive during an interval as one at its end.
//
// Why: kube-router answers each relevant pod event with a full sync of the
// node's filter table (iptables-save, ipsets, iptables-restore, and a dozen
// iptables calls to check its top-level chains), coalesced only while a
// sync runs. A burst of Tekton pods then costs every node a sync per pod
// event. A sync reads every pod from the informer's cache, so one sync
// after a burst does the work of all of them.
//
// Safe only because the node fails closed: traffic from a pod that has no
// chain of its own yet is dropped by the stack's rule behind kube-router's
// chains (pkg/devstack/netpol.go), so a pod that waits for its sync has no
// network, rather than an unfiltered one.
type syncLimiter struct {
	interval time.Duration
	sync     func()
	pending  chan struct{}
}

func newSyncLimiter(interval time.Duration, sync func()) *syncLimiter {
	return &syncLimiter{interval: interval, sync: sync, pending: make(chan struct{}, 1)}
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
		l.sync()
		timer := time.NewTimer(l.interval)
		select {
		case <-stop:
			timer.Stop()
			return
		case <-timer.C:
		}
	}
}
