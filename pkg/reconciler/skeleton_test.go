package reconciler

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	kcpcache "github.com/kcp-dev/apimachinery/v2/pkg/cache"
	kcpfakedynamic "github.com/kcp-dev/client-go/third_party/k8s.io/client-go/dynamic/fake"
	"github.com/kcp-dev/logicalcluster/v3"
	"github.com/tektoncd/pipeline/pkg/apis/pipeline/v1beta1"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/cache"
	"knative.dev/pkg/apis"
	"knative.dev/pkg/controller"
)

var customRuns = schema.GroupVersionResource{Group: "tekton.dev", Version: "v1beta1", Resource: "customruns"}

// testKind records which hooks the skeleton called and applies change in
// ReconcileKind.
type testKind struct {
	called []string
	change func(*v1beta1.CustomRun)
	err    error
}

func (k *testKind) New() *v1beta1.CustomRun          { return &v1beta1.CustomRun{} }
func (k *testKind) Status(cr *v1beta1.CustomRun) any { return &cr.Status }
func (k *testKind) Succeeded(cr *v1beta1.CustomRun) *apis.Condition {
	return cr.Status.GetCondition(apis.ConditionSucceeded)
}
func (k *testKind) Gone(context.Context, string) error {
	k.called = append(k.called, "Gone")
	return nil
}
func (k *testKind) Undecodable(_ context.Context, _ *Object, err error) error {
	k.called = append(k.called, "Undecodable")
	return nil
}
func (k *testKind) FinalizeKind(context.Context, *Object, *v1beta1.CustomRun) error {
	k.called = append(k.called, "FinalizeKind")
	return nil
}
func (k *testKind) ReconcileKind(_ context.Context, o *Object, cr *v1beta1.CustomRun) (time.Duration, error) {
	k.called = append(k.called, "ReconcileKind")
	if o.Log == nil || o.Key == "" {
		return 0, errors.New("object without its log or key")
	}
	if k.change != nil {
		k.change(cr)
	}
	return time.Minute, k.err
}

// TestSkeleton drives the reconcile skeleton shared by every kind with a
// fake kcp client and informer: which hook runs, and which writes follow.
func TestSkeleton(t *testing.T) {
	const ws = "2wamr2g8gofajgid"
	customRun := func(mutate func(*unstructured.Unstructured)) *unstructured.Unstructured {
		u := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "tekton.dev/v1beta1", "kind": "CustomRun",
			"metadata": map[string]any{"name": "run", "namespace": "default", "resourceVersion": "1",
				"annotations": map[string]any{logicalcluster.AnnotationKey: ws}},
			"spec": map[string]any{"customRef": map[string]any{"apiVersion": "example.dev/v1", "kind": "Wait"}},
		}}
		if mutate != nil {
			mutate(u)
		}
		return u
	}
	succeeded := func(cr *v1beta1.CustomRun) {
		cr.Status.SetCondition(&apis.Condition{Type: apis.ConditionSucceeded, Status: corev1.ConditionTrue, Reason: "Done"})
	}
	tests := []struct {
		name        string
		object      *unstructured.Unstructured // nil: gone
		change      func(*v1beta1.CustomRun)
		err         error
		wantCalled  string
		wantWrites  string // verb/subresource of each write, in order
		wantRequeue time.Duration
		wantErr     string
	}{
		{name: "gone", wantCalled: "Gone"},
		{name: "undecodable", object: customRun(func(u *unstructured.Unstructured) { u.Object["spec"] = map[string]any{"timeout": int64(42)} }),
			wantCalled: "Undecodable"},
		{name: "being deleted", object: customRun(func(u *unstructured.Unstructured) {
			u.SetDeletionTimestamp(&metav1.Time{Time: time.Unix(1, 0)})
			u.SetFinalizers([]string{"someone.dev/else"})
		}), wantCalled: "FinalizeKind"},
		{name: "nothing changed: nothing written", object: customRun(nil), wantCalled: "ReconcileKind", wantRequeue: time.Minute},
		{name: "a label", object: customRun(nil), change: func(cr *v1beta1.CustomRun) { cr.Labels = map[string]string{"a": "b"} },
			wantCalled: "ReconcileKind", wantWrites: "update/", wantRequeue: time.Minute},
		{name: "status", object: customRun(nil), change: succeeded, wantCalled: "ReconcileKind", wantWrites: "update/status", wantRequeue: time.Minute},
		{name: "label and status: meta first", object: customRun(nil),
			change:     func(cr *v1beta1.CustomRun) { cr.Labels = map[string]string{"a": "b"}; succeeded(cr) },
			wantCalled: "ReconcileKind", wantWrites: "update/ update/status", wantRequeue: time.Minute},
		{name: "error: status still written, error returned", object: customRun(nil), change: succeeded, err: errors.New("workload cluster says no"),
			wantCalled: "ReconcileKind", wantWrites: "update/status", wantRequeue: time.Minute, wantErr: "workload cluster says no"},
		{name: "permanent error: written, not retried", object: customRun(nil), change: succeeded, err: controller.NewPermanentError(errors.New("invalid")),
			wantCalled: "ReconcileKind", wantWrites: "update/status"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			indexer := cache.NewIndexer(kcpcache.MetaClusterNamespaceKeyFunc, cache.Indexers{
				kcpcache.ClusterIndexName: kcpcache.ClusterIndexFunc, kcpcache.ClusterAndNamespaceIndexName: kcpcache.ClusterAndNamespaceIndexFunc})
			var objects []runtime.Object
			if tt.object != nil {
				if err := indexer.Add(tt.object); err != nil {
					t.Fatal(err)
				}
				objects = append(objects, tt.object.DeepCopy())
			}
			client := kcpfakedynamic.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
				map[schema.GroupVersionResource]string{customRuns: "CustomRunList"}, objects...)
			kind := &testKind{change: tt.change, err: tt.err}
			s := Skeleton[*v1beta1.CustomRun]{Lister: kcpcache.NewGenericClusterLister(indexer, customRuns.GroupResource()),
				Objects: Objects{Client: client, Resource: customRuns}, Kind: kind, Log: zap.NewNop().Sugar()}

			requeue, err := s.Reconcile(context.Background(), kcpcache.ToClusterAwareKey(ws, "default", "run"))

			if got := strings.Join(kind.called, " "); got != tt.wantCalled {
				t.Errorf("hooks called: %q, want %q", got, tt.wantCalled)
			}
			var writes []string
			for _, a := range client.Actions() {
				if a.GetVerb() != "get" && a.GetVerb() != "list" && a.GetVerb() != "watch" {
					writes = append(writes, a.GetVerb()+"/"+a.GetSubresource())
				}
			}
			if got := strings.Join(writes, " "); got != tt.wantWrites {
				t.Errorf("writes: %q, want %q", got, tt.wantWrites)
			}
			if requeue != tt.wantRequeue {
				t.Errorf("requeue after %s, want %s", requeue, tt.wantRequeue)
			}
			if (err == nil) != (tt.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("error %v, want %q", err, tt.wantErr)
			}
		})
	}
}
