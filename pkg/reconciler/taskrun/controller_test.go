package taskrun

import (
	"testing"

	kcpcache "github.com/kcp-dev/apimachinery/v2/pkg/cache"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/tools/cache"
)

func taskRunObject(cluster, name, succeeded string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "tekton.dev/v1", "kind": "TaskRun",
		"metadata": map[string]any{"name": name, "namespace": "default", "annotations": map[string]any{"kcp.io/cluster": cluster}},
	}}
	if succeeded != "" {
		u.Object["status"] = map[string]any{"conditions": []any{map[string]any{"type": "Succeeded", "status": succeeded}}}
	}
	return u
}

// TestUnfinishedInFindsAdmissionKeysInTheInformerStore: the admission's
// keys (kcpcache.ToClusterAwareKey) are the keys of the kcp informer's
// store, so the audit frees only what is gone or done.
func TestUnfinishedInFindsAdmissionKeysInTheInformerStore(t *testing.T) {
	store := cache.NewIndexer(kcpcache.MetaClusterNamespaceKeyFunc, cache.Indexers{kcpcache.ClusterIndexName: kcpcache.ClusterIndexFunc})
	for _, u := range []*unstructured.Unstructured{
		taskRunObject("ws1", "running", "Unknown"),
		taskRunObject("ws1", "new", ""),
		taskRunObject("ws1", "failed", "False"),
		taskRunObject("ws1", "succeeded", "True"),
	} {
		if err := store.Add(u); err != nil {
			t.Fatal(err)
		}
	}
	unfinished := unfinishedIn(store)
	for name, want := range map[string]bool{
		kcpcache.ToClusterAwareKey("ws1", "default", "running"):   true,
		kcpcache.ToClusterAwareKey("ws1", "default", "new"):       true,
		kcpcache.ToClusterAwareKey("ws1", "default", "failed"):    false,
		kcpcache.ToClusterAwareKey("ws1", "default", "succeeded"): false,
		kcpcache.ToClusterAwareKey("ws1", "default", "deleted"):   false,
		kcpcache.ToClusterAwareKey("ws2", "default", "running"):   false, // same name, other workspace
	} {
		if got := unfinished(name); got != want {
			t.Errorf("unfinished(%s) = %v, want %v", name, got, want)
		}
	}
}
