//go:build e2e

package pipelinerun

import (
	"context"
	"strings"
	"testing"
	"time"

	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"knative.dev/pkg/apis"

	"github.com/pipelines-service/pipelines-service/test/e2e/framework"
)

// pinp is a PipelineRun whose pipeline task "inner" runs a pipelineSpec
// (pipelines in pipelines) with a step that sleeps for sleep seconds.
func pinp(sleep string) *v1.PipelineRun {
	inner := &v1.PipelineSpec{
		Params: v1.ParamSpecs{{Name: "who", Type: v1.ParamTypeString}},
		Tasks: []v1.PipelineTask{{Name: "greet", TaskSpec: &v1.EmbeddedTask{TaskSpec: v1.TaskSpec{
			Params: v1.ParamSpecs{{Name: "who", Type: v1.ParamTypeString}},
			Steps:  []v1.Step{{Name: "greet", Image: "busybox", Script: "sleep " + sleep + "; echo hello $(params.who)"}},
		}}, Params: v1.Params{{Name: "who", Value: *v1.NewStructuredValues("$(params.who)")}}}},
	}
	return &v1.PipelineRun{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "pinp-"},
		Spec: v1.PipelineRunSpec{PipelineSpec: &v1.PipelineSpec{Tasks: []v1.PipelineTask{
			{Name: "inner", PipelineSpec: inner, Params: v1.Params{{Name: "who", Value: *v1.NewStructuredValues("child")}}},
		}}},
	}
}

// TestPipelinesInPipelines: with alpha API fields a pipeline task runs a
// pipelineSpec as a child PipelineRun, as Tekton does, whose end ends the
// parent, and whose parent's cancellation cancels it; without them the
// run is refused by Tekton's validation, and a pipelineRef, which Tekton
// v1.9 does not implement, is refused naming that.
func TestPipelinesInPipelines(t *testing.T) {
	ctx := context.Background()
	stable := env.NewTenant(ctx, t, "pinp-off")
	alpha := env.NewTenant(ctx, t, "pinp")
	alpha.SetFeatureFlags(ctx, t, map[string]string{"enable-api-fields": "alpha"})
	const ns = "default"
	create := func(tn *framework.Tenant, pr *v1.PipelineRun) string {
		t.Helper()
		created, err := tn.Tekton.TektonV1().PipelineRuns(ns).Create(ctx, pr, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return created.Name
	}

	t.Run("child runs and ends its parent", func(t *testing.T) {
		name := create(alpha, pinp("0"))
		done := alpha.WaitPipelineRun(ctx, t, ns, name, 3*time.Minute, "done", framework.PipelineRunDone)
		if status, reason := framework.PipelineRunCondition(done); status != "True" {
			t.Fatalf("parent %s: %s %s", name, status, reason)
		}
		var child string
		for _, ref := range done.Status.ChildReferences {
			if ref.Kind == "PipelineRun" && ref.PipelineTaskName == "inner" {
				child = ref.Name
			}
		}
		if child == "" {
			t.Fatalf("parent's child references %+v name no child PipelineRun", done.Status.ChildReferences)
		}
		c, err := alpha.Tekton.TektonV1().PipelineRuns(ns).Get(ctx, child, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !c.Status.GetCondition(apis.ConditionSucceeded).IsTrue() || c.Labels["tekton.dev/pipelineRun"] != name {
			t.Errorf("child %s: %v, labels %v", child, c.Status.GetCondition(apis.ConditionSucceeded), c.Labels)
		}
	})
	t.Run("cancelling the parent cancels the child", func(t *testing.T) {
		name := create(alpha, pinp("300"))
		var child string
		alpha.WaitPipelineRun(ctx, t, ns, name, 2*time.Minute, "has a child", func(pr *v1.PipelineRun) bool {
			for _, ref := range pr.Status.ChildReferences {
				if ref.Kind == "PipelineRun" {
					child = ref.Name
				}
			}
			return child != ""
		})
		patch := []byte(`{"spec":{"status":"Cancelled"}}`)
		if _, err := alpha.Tekton.TektonV1().PipelineRuns(ns).Patch(ctx, name, "application/merge-patch+json", patch, metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		c := alpha.WaitPipelineRun(ctx, t, ns, child, 2*time.Minute, "cancelled", framework.PipelineRunDone)
		if status, reason := framework.PipelineRunCondition(c); status != "False" || reason != v1.PipelineRunReasonCancelled.String() {
			t.Errorf("child %s after the parent's cancel: %s %s", child, status, reason)
		}
	})
	t.Run("without alpha Tekton's validation refuses it", func(t *testing.T) {
		done := stable.WaitPipelineRun(ctx, t, ns, create(stable, pinp("0")), time.Minute, "done", framework.PipelineRunDone)
		status, reason := framework.PipelineRunCondition(done)
		msg := done.Status.GetCondition(apis.ConditionSucceeded).Message
		if status != "False" || !strings.Contains(msg, "alpha") {
			t.Errorf("without alpha: %s %s: %s", status, reason, msg)
		}
	})
	t.Run("pipelineRef is refused naming Tekton's limit", func(t *testing.T) {
		pr := pinp("0")
		pr.Spec.PipelineSpec.Tasks[0].PipelineSpec = nil
		pr.Spec.PipelineSpec.Tasks[0].PipelineRef = &v1.PipelineRef{Name: "other"}
		done := alpha.WaitPipelineRun(ctx, t, ns, create(alpha, pr), time.Minute, "done", framework.PipelineRunDone)
		msg := done.Status.GetCondition(apis.ConditionSucceeded).Message
		if status, _ := framework.PipelineRunCondition(done); status != "False" || !strings.Contains(msg, "pipelineSpec only") {
			t.Errorf("pipelineRef: %s: %s", status, msg)
		}
	})
}
