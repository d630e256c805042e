// Package reconciler holds what the reconcilers share: the work queue and
// its workers.
package reconciler

import (
	"context"
	"fmt"
	"runtime/debug"
	"time"

	kcpcache "github.com/kcp-dev/apimachinery/v2/pkg/cache"
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

// Gate says which workspaces this replica of the controller reconciles
// now (partition.Partition).
type Gate interface {
	// Enter says whether this replica reconciles workspace now; if so,
	// the workspace stays its own until done is called, or until the
	// returned context (ctx's child) ends.
	Enter(ctx context.Context, workspace string) (context.Context, func(), bool)
}

// Workers process a queue's keys with a reconcile.
type Workers struct {
	// Name names the reconciles in metrics and traces.
	Name      string
	Queue     workqueue.TypedRateLimitingInterface[string]
	Reconcile ReconcileFunc
	// Metrics observes each reconcile (may be nil).
	Metrics *metrics.Metrics
	Log     *zap.SugaredLogger
	// Gate, when set, drops the keys of workspaces another replica
	// reconciles: that replica queued them all when it took them.
	Gate Gate
	// WorkspaceOf is the workspace of a key (default: the cluster of a
	// cluster-aware key).
	WorkspaceOf func(key string) string
}

// Run processes the queue in count goroutines until ctx ends, then shuts
// the queue down. Errors are retried with backoff. Each reconcile's
// duration is observed, and traced with the requests it makes.
func (w Workers) Run(ctx context.Context, count int) {
	m, name := w.Metrics, w.Name
	timed := func(ctx context.Context, key string) (requeueAfter time.Duration, err error) {
		start := time.Now()
		defer func() {
			m.ObserveReconcile(name, time.Since(start), err)
			m.TraceReconcile(name, key, start, time.Since(start))
		}()
		return reconcileSafely(metrics.WithReconcile(ctx, name, key), key, w.Reconcile)
	}
	defer utilruntime.HandleCrash()
	defer w.Queue.ShutDown()
	w.Log.Infow("starting workers", "workers", count)
	for i := 0; i < count; i++ {
		go wait.UntilWithContext(ctx, func(ctx context.Context) {
			for w.processNext(ctx, timed) {
			}
		}, time.Second)
	}
	<-ctx.Done()
}

// workspaceOf is the workspace of key.
func (w Workers) workspaceOf(key string) string {
	if w.WorkspaceOf != nil {
		return w.WorkspaceOf(key)
	}
	cluster, _, _, err := kcpcache.SplitMetaClusterNamespaceKey(key)
	if err != nil {
		return ""
	}
	return cluster.String()
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
func (w Workers) processNext(ctx context.Context, reconcile ReconcileFunc) bool {
	queue, log := w.Queue, w.Log
	key, quit := queue.Get()
	if quit {
		return false
	}
	defer queue.Done(key)
	if w.Gate != nil {
		entered, done, ok := w.Gate.Enter(ctx, w.workspaceOf(key))
		if !ok {
			queue.Forget(key)
			return true
		}
		defer done()
		ctx = entered
	}
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
