package reconciler

import (
	kcpcache "github.com/kcp-dev/apimachinery/v2/pkg/cache"
	"github.com/kcp-dev/logicalcluster/v3"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// TenantHandler enqueues the cluster-aware key of every tenant object
// added, updated or deleted.
func TenantHandler(queue workqueue.TypedRateLimitingInterface[string]) cache.ResourceEventHandlerFuncs {
	enqueue := func(obj interface{}) {
		key, err := kcpcache.DeletionHandlingMetaClusterNamespaceKeyFunc(obj)
		if err != nil {
			utilruntime.HandleError(err)
			return
		}
		queue.Add(key)
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj interface{}) { enqueue(obj) },
		DeleteFunc: enqueue,
	}
}

// RelatedHandler enqueues, for every object added, updated or deleted, the
// key of the object it leads back to (keyOf): a workload pod's TaskRun, a
// TaskRun's PipelineRun.
func RelatedHandler(queue workqueue.TypedRateLimitingInterface[string], keyOf func(metav1.Object) (string, bool)) cache.ResourceEventHandlerFuncs {
	return onEvery(func(m metav1.Object) {
		if key, ok := keyOf(m); ok {
			queue.Add(key)
		}
	})
}

// RelatedKeysHandler enqueues, for every object added, updated or deleted,
// the keys keysOf gives for its workspace: for a Trigger, every
// EventListener of its workspace, which may select it.
func RelatedKeysHandler(queue workqueue.TypedRateLimitingInterface[string], keysOf func(logicalcluster.Name) []string) cache.ResourceEventHandlerFuncs {
	return onEvery(func(m metav1.Object) {
		for _, key := range keysOf(logicalcluster.From(m)) {
			queue.Add(key)
		}
	})
}

// onEvery calls fn with every object added, updated or deleted.
func onEvery(fn func(metav1.Object)) cache.ResourceEventHandlerFuncs {
	handle := func(obj interface{}) {
		if tombstone, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = tombstone.Obj
		}
		if m, err := meta.Accessor(obj); err == nil {
			fn(m)
		}
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    handle,
		UpdateFunc: func(_, obj interface{}) { handle(obj) },
		DeleteFunc: handle,
	}
}

// EnqueueWorkspaces queues the key of every object in store whose
// workspace in says: the workspaces of a part this replica took.
func EnqueueWorkspaces(queue workqueue.TypedRateLimitingInterface[string], store cache.Store, in func(workspace string) bool) {
	for _, key := range store.ListKeys() {
		if cluster, _, _, err := kcpcache.SplitMetaClusterNamespaceKey(key); err == nil && in(cluster.String()) {
			queue.Add(key)
		}
	}
}
