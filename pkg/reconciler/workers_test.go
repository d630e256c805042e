package reconciler

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/pipelines-service/pipelines-service/pkg/metrics"
)

func TestAPanickingReconcileDoesNotStopTheWorkers(t *testing.T) {
	m := metrics.New(metrics.Options{})
	queue := NewQueue("test", m)
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
	go func() {
		Workers{Name: "test", Queue: queue, Reconcile: reconcile, Metrics: m, Log: zap.NewNop().Sugar()}.Run(ctx, 1)
		close(done)
	}()
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
	families, err := metrics.Gather(m.Gatherer())
	if err != nil {
		t.Fatal(err)
	}
	for _, result := range []string{"error", "success"} {
		// The panicking reconcile is an error.
		if got := families.Total("pipelines_service_reconcile_duration_seconds", map[string]string{"controller": "test", "result": result}); got < 1 {
			t.Errorf("reconciles of test with result %s: %v, want at least 1", result, got)
		}
	}
	// bad, good, and bad again after its error.
	if got := families.Total("workqueue_adds_total", map[string]string{"name": "test"}); got < 2 {
		t.Errorf("workqueue_adds_total{name=test} = %v, want at least 2", got)
	}
}
