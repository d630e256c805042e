package main

import (
	"sync/atomic"
	"testing"
	"time"
)

// TestSyncLimiter: the first request is passed on at once; a burst during
// the interval becomes one sync at its end; a request after a quiet
// interval is again passed on at once.
func TestSyncLimiter(t *testing.T) {
	const interval = 200 * time.Millisecond
	var syncs atomic.Int32
	synced := make(chan time.Time, 100)
	l := newSyncLimiter(interval, func() { syncs.Add(1); synced <- time.Now() })
	stop := make(chan struct{})
	defer close(stop)
	go l.Run(stop)

	start := time.Now()
	l.Request()
	first := <-synced
	if d := first.Sub(start); d > interval/2 {
		t.Errorf("first sync after %v, want at once", d)
	}
	for i := 0; i < 50; i++ { // a burst within the interval
		l.Request()
		time.Sleep(time.Millisecond)
	}
	second := <-synced
	if d := second.Sub(first); d < interval {
		t.Errorf("the burst's sync %v after the first, want at least %v", d, interval)
	}
	time.Sleep(3 * interval)
	if n := syncs.Load(); n != 2 {
		t.Fatalf("%d syncs for a request and a burst of 50, want 2", n)
	}

	quiet := time.Now()
	l.Request()
	third := <-synced
	if d := third.Sub(quiet); d > interval/2 {
		t.Errorf("a request after a quiet interval synced after %v, want at once", d)
	}
}
