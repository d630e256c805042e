package pacrun

import (
	"context"
	"testing"

	kcpcache "github.com/kcp-dev/apimachinery/v2/pkg/cache"
	kcpdynamicinformer "github.com/kcp-dev/client-go/dynamic/dynamicinformer"
	kcpfakedynamic "github.com/kcp-dev/client-go/third_party/k8s.io/client-go/dynamic/fake"
	"github.com/kcp-dev/logicalcluster/v3"
	"github.com/openshift-pipelines/pipelines-as-code/pkg/apis/pipelinesascode/keys"
	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"knative.dev/pkg/apis"
	duckv1 "knative.dev/pkg/apis/duck/v1"

	"github.com/pipelines-service/pipelines-service/pkg/pac"
)

type startedRuns []string

func (s *startedRuns) Start(_ context.Context, _ logicalcluster.Name, pr *v1.PipelineRun) error {
	*s = append(*s, pr.Name)
	return nil
}

func (s *startedRuns) Report(context.Context, logicalcluster.Name, *v1.PipelineRun) error { return nil }

// TestPartsCountStartedRunsFirst: a replica that takes a part counts the
// part's started PaC runs before it admits a queued one, so that a
// Repository's concurrency_limit holds across the hand-over; it queues
// only the part's PaC runs; a part given away leaves the books.
func TestPartsCountStartedRunsFirst(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	run := func(ws, name, state string) *unstructured.Unstructured {
		pr := &v1.PipelineRun{
			TypeMeta: metav1.TypeMeta{APIVersion: "tekton.dev/v1", Kind: "PipelineRun"},
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default",
				Labels:      map[string]string{keys.State: state, keys.Repository: "app"},
				Annotations: map[string]string{keys.GitProvider: pac.GitProvider, keys.State: state, logicalcluster.AnnotationKey: ws}},
		}
		if state == "queued" {
			pr.Spec.Status = v1.PipelineRunSpecStatusPending
		} else {
			pr.Status.Status = duckv1.Status{Conditions: duckv1.Conditions{{Type: apis.ConditionSucceeded, Status: corev1.ConditionUnknown}}}
		}
		obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(pr)
		if err != nil {
			t.Fatal(err)
		}
		return &unstructured.Unstructured{Object: obj}
	}
	repo := func(ws string) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "pipelinesascode.tekton.dev/v1alpha1", "kind": "Repository",
			"metadata": map[string]any{"name": "app", "namespace": "default", "annotations": map[string]any{logicalcluster.AnnotationKey: ws}},
			"spec":     map[string]any{"url": "https://forge.example/" + ws + "/app", "concurrency_limit": int64(1)},
		}}
	}
	plain := run("ws-a", "not-pac", "started")
	plain.SetAnnotations(map[string]string{logicalcluster.AnnotationKey: "ws-a"})
	tenants := kcpfakedynamic.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{
		v1.SchemeGroupVersion.WithResource("pipelineruns"): "PipelineRunList", pac.Repositories: "RepositoryList",
	}, repo("ws-a"), repo("ws-b"), run("ws-a", "running", "started"), run("ws-a", "waiting", "queued"), run("ws-b", "other", "started"), plain)
	informers := kcpdynamicinformer.NewDynamicSharedInformerFactory(tenants, 0)
	started := &startedRuns{}
	c, err := New(Options{TenantInformers: informers, Runs: started, Log: zap.NewNop().Sugar()})
	if err != nil {
		t.Fatal(err)
	}
	informers.Start(ctx.Done())
	informers.WaitForCacheSync(ctx.Done())
	for c.queue.Len() > 0 { // what the informer's handler queued
		key, _ := c.queue.Get()
		c.queue.Done(key)
	}
	inA := func(ws string) bool { return ws == "ws-a" }

	parts := c.Parts()
	parts.Taking(inA)
	parts.Taken(inA)
	if n := c.queue.Len(); n != 2 {
		t.Errorf("taking ws-a queued %d keys, want its 2 PaC runs", n)
	}
	waiting := kcpcache.ToClusterAwareKey("ws-a", "default", "waiting")
	if _, err := c.reconcileKey(ctx, waiting); err != nil {
		t.Fatal(err)
	}
	if len(*started) != 0 {
		t.Fatalf("started %v while the Repository's one slot is held by a started run", *started)
	}
	if state := c.admission.State(); len(state.Running) != 1 {
		t.Errorf("running after taking ws-a: %+v, want the one started run of ws-a", state.Running)
	}

	parts.Given(inA)
	if state := c.admission.State(); len(state.Running) != 0 {
		t.Errorf("running after giving ws-a away: %+v, want none", state.Running)
	}
}
