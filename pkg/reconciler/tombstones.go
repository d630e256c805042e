package reconciler

import (
	"sync"

	kcpcache "github.com/kcp-dev/apimachinery/v2/pkg/cache"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// Tombstones keeps the last state of tenant objects deleted from an
// informer until what they made on a workload cluster is removed. This is
// what owner references and the garbage collector do on one cluster: the
// tenant object goes at once, without a finalizer, and its workload
// objects follow. A finalizer is no choice here: kcp removes a deleted
// workspace's namespaces while bound objects still carry finalizers, and
// no update of an object whose namespace is gone passes admission, so the
// workspace never finished deleting. What an event missed (the controller
// was down) is left to the workload garbage collector's sweep.
type Tombstones struct {
	mu   sync.Mutex
	last map[string]*unstructured.Unstructured
}

// NewTombstones returns an empty set.
func NewTombstones() *Tombstones {
	return &Tombstones{last: map[string]*unstructured.Unstructured{}}
}

// Handler enqueues the key of every object added, updated or deleted, as
// TenantHandler does, and keeps the last state of deleted ones.
func (t *Tombstones) Handler(queue workqueue.TypedRateLimitingInterface[string]) cache.ResourceEventHandlerFuncs {
	h := TenantHandler(queue)
	enqueue := h.DeleteFunc
	h.DeleteFunc = func(obj interface{}) {
		last := obj
		if tombstone, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			last = tombstone.Obj
		}
		u, ok := last.(*unstructured.Unstructured)
		key, err := kcpcache.DeletionHandlingMetaClusterNamespaceKeyFunc(obj)
		if !ok || err != nil {
			utilruntime.HandleError(err)
			enqueue(obj)
			return
		}
		t.mu.Lock()
		t.last[key] = u
		t.mu.Unlock()
		enqueue(obj)
	}
	return h
}

// Get returns the last state of the object deleted under key, or nil.
func (t *Tombstones) Get(key string) *unstructured.Unstructured {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.last[key]
}

// Forget drops the tombstone of key once its workload objects are gone,
// unless a later deletion under the same key replaced it.
func (t *Tombstones) Forget(key string, gone *unstructured.Unstructured) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.last[key] == gone {
		delete(t.last, key)
	}
}
