// Package reconciler holds what the reconcilers share: the work queue and
// its workers.
package reconciler

import (
	"context"
	"fmt"
	"runtime/debug"
	"time"

	"go.uber.org/zap"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/workqueue"

	"github.com/pipelines-service/pipelines-service/pkg/metrics"
)

// ReconcileFunc reconciles the object of a cluster-aware key and says when
// to look at it again (0: only on the next event).
type ReconcileFunc func(ctx context.Context, key string) (requeueAfter time.Duration, err error)

// NewQueue is a rate-limited queue of cluster-aware keys, its depth and
// latency exported through m (may be nil).
func NewQueue(name string, m *metrics.Metrics) workqueue.TypedRateLimitingInterface[string] {
	return workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: name, MetricsProvider: m.QueueProvider()})
}

// RunWorkers processes queue with reconcile in workers goroutines until
// ctx ends, then shuts the queue down. Errors are retried with backoff.
// Each reconcile's duration is observed in m (may be nil) under name, and
// traced with the requests it makes.
func RunWorkers(ctx context.Context, log *zap.SugaredLogger, queue workqueue.TypedRateLimitingInterface[string], workers int, reconcile ReconcileFunc, m *metrics.Metrics, name string) {
	timed := func(ctx context.Context, key string) (requeueAfter time.Duration, err error) {
		start := time.Now()
		defer func() {
			m.ObserveReconcile(name, time.Since(start), err)
			m.TraceReconcile(name, key, start, time.Since(start))
		}()
		return reconcileSafely(metrics.WithReconcile(ctx, name, key), key, reconcile)
	}
	defer utilruntime.HandleCrash()
	defer queue.ShutDown()
	log.Infow("starting workers", "workers", workers)
	for i := 0; i < workers; i++ {
		go wait.UntilWithContext(ctx, func(ctx context.Context) {
			for processNext(ctx, log, queue, timed) {
			}
		}, time.Second)
	}
	<-ctx.Done()
}

// reconcileSafely turns a panic in one reconcile into an error for that
// key: one object must never take the controller down for every tenant.
func reconcileSafely(ctx context.Context, key string, reconcile ReconcileFunc) (requeueAfter time.Duration, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic reconciling %s: %v\n%s", key, r, debug.Stack())
		}
	}()
	return reconcile(ctx, key)
}

// processNext serves one key with reconcile (which must not panic: see
// reconcileSafely).
func processNext(ctx context.Context, log *zap.SugaredLogger, queue workqueue.TypedRateLimitingInterface[string], reconcile ReconcileFunc) bool {
	key, quit := queue.Get()
	if quit {
		return false
	}
	defer queue.Done(key)
	requeueAfter, err := reconcile(ctx, key)
	switch {
	case err != nil:
		log.Errorw("reconcile failed, retrying", "key", key, "error", err)
		queue.AddRateLimited(key)
	case requeueAfter > 0:
		queue.Forget(key)
		queue.AddAfter(key, requeueAfter)
	default:
		queue.Forget(key)
	}
	return true
}
