package reconciler

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
)

func TestAPanickingReconcileDoesNotStopTheWorkers(t *testing.T) {
	queue := NewQueue("test")
	var served atomic.Int32
	reconcile := func(_ context.Context, key string) (time.Duration, error) {
		if key == "bad" {
			var missing map[string]*int
			return time.Duration(*missing["x"]), nil // nil pointer dereference
		}
		served.Add(1)
		return 0, nil
	}
	_, err := reconcileSafely(context.Background(), "bad", reconcile)
	if err == nil || !strings.Contains(err.Error(), "panic reconciling bad") {
		t.Fatalf("reconcileSafely() = %v, want the panic as an error", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	timings := NewTimings()
	go func() { RunWorkers(ctx, zap.NewNop().Sugar(), queue, 1, reconcile, timings, "test"); close(done) }()
	queue.Add("bad")
	queue.Add("good")
	deadline := time.Now().Add(5 * time.Second)
	for served.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	if served.Load() == 0 {
		t.Fatal("after a panicking key, the worker served no other key")
	}
	if got := timings.Snapshot(); len(got) != 1 || got[0].Name != "reconcile test" || got[0].Count < 2 {
		t.Errorf("timings %+v, want both reconciles (the panicking one too) under \"reconcile test\"", got)
	}
}
