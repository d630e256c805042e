package reconciler

import (
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

func tenantRun(uid string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("tekton.dev/v1")
	u.SetKind("TaskRun")
	u.SetNamespace("default")
	u.SetName("run")
	u.SetUID(types.UID(uid))
	u.SetAnnotations(map[string]string{"kcp.io/cluster": "ws1"})
	return u
}

func TestTombstonesKeepTheLastStateOfDeletedObjects(t *testing.T) {
	queue := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]())
	defer queue.ShutDown()
	tombstones := NewTombstones()
	h := tombstones.Handler(queue)
	const key = "ws1|default/run"

	h.OnAdd(tenantRun("a"), false)
	if got := tombstones.Get(key); got != nil {
		t.Fatalf("an added object has a tombstone: %v", got)
	}
	first := tenantRun("a")
	h.OnDelete(first)
	if got := tombstones.Get(key); got != first {
		t.Fatalf("Get(%q) = %v, want the deleted object", key, got)
	}
	// A later deletion under the same key (deleted, recreated, deleted
	// again, seen as a tombstone of the informer) replaces the first;
	// forgetting the first keeps it.
	second := tenantRun("b")
	h.OnDelete(cache.DeletedFinalStateUnknown{Key: key, Obj: second})
	tombstones.Forget(key, first)
	if got := tombstones.Get(key); got != second {
		t.Fatalf("after forgetting the first deletion Get = %v, want the second", got)
	}
	tombstones.Forget(key, second)
	if got := tombstones.Get(key); got != nil {
		t.Fatalf("after Forget Get = %v, want nil", got)
	}
	if n := queue.Len(); n != 1 {
		t.Errorf("queue holds %d keys, want %s once", n, key)
	}
}
