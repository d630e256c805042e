package main

import (
	"sync/atomic"
	"testing"
	"time"
)

// fakeSyncs is a controller whose syncs take a while: each request starts
// one after another (a request during a sync is kept for after it, as
// kube-router's single-item channel does) and counts as ended after took.
type fakeSyncs struct {
	took     time.Duration
	requests chan struct{}
	ended    atomic.Uint64
	started  chan time.Time
}

func newFakeSyncs(took time.Duration, stop <-chan struct{}) *fakeSyncs {
	f := &fakeSyncs{took: took, requests: make(chan struct{}, 1), started: make(chan time.Time, 100)}
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-f.requests:
			}
			f.started <- time.Now()
			time.Sleep(f.took)
			f.ended.Add(1)
		}
	}()
	return f
}

func (f *fakeSyncs) request() {
	select {
	case f.requests <- struct{}{}:
	default:
	}
}

// TestSyncLimiter: the first request is passed on at once; a burst during
// the sync and the interval after it becomes one sync, an interval after
// the first sync ended; a request after a quiet interval is again passed
// on at once.
func TestSyncLimiter(t *testing.T) {
	const interval, took = 200 * time.Millisecond, 300 * time.Millisecond
	stop := make(chan struct{})
	defer close(stop)
	f := newFakeSyncs(took, stop)
	l := newSyncLimiter(interval, f.request, f.ended.Load)
	go l.Run(stop)

	start := time.Now()
	l.Request()
	first := <-f.started
	if d := first.Sub(start); d > interval/2 {
		t.Errorf("first sync after %v, want at once", d)
	}
	for i := 0; i < 50; i++ { // a burst during the sync
		l.Request()
		time.Sleep(time.Millisecond)
	}
	second := <-f.started
	if d := second.Sub(first); d < took+interval {
		t.Errorf("the burst's sync began %v after the first, want at least its %v and the interval %v", d, took, interval)
	}
	time.Sleep(took + 3*interval)
	if n := f.ended.Load(); n != 2 {
		t.Fatalf("%d syncs for a request and a burst of 50, want 2", n)
	}

	quiet := time.Now()
	l.Request()
	third := <-f.started
	if d := third.Sub(quiet); d > interval/2 {
		t.Errorf("a request after a quiet interval synced after %v, want at once", d)
	}
}
