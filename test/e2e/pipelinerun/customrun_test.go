//go:build e2e

package pipelinerun

import (
	"context"
	"strings"
	"testing"
	"time"

	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	"github.com/tektoncd/pipeline/pkg/apis/pipeline/v1beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"knative.dev/pkg/apis"

	"github.com/pipelines-service/pipelines-service/pkg/reconciler/customrun"
	"github.com/pipelines-service/pipelines-service/test/e2e/framework"
)

// TestCustomRunIsToldNoControllerServesIt: a tenant's CustomRun says, in
// its condition, that no custom-task controller of the service serves
// its kind, and ends when cancelled.
func TestCustomRunIsToldNoControllerServesIt(t *testing.T) {
	ctx := context.Background()
	tn := env.NewTenant(ctx, t, "customrun")
	runs := tn.Tekton.TektonV1beta1().CustomRuns("default")
	cr, err := runs.Create(ctx, &v1beta1.CustomRun{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "wait-"},
		Spec:       v1beta1.CustomRunSpec{CustomRef: &v1beta1.TaskRef{APIVersion: "example.dev/v1", Kind: "Wait"}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create a CustomRun in a tenant workspace: %v", err)
	}
	wait := func(what string, ok func(*apis.Condition) bool) *apis.Condition {
		var cond *apis.Condition
		framework.Eventually(t, time.Minute, "CustomRun "+cr.Name+" "+what, func() (bool, string, error) {
			got, err := runs.Get(ctx, cr.Name, metav1.GetOptions{})
			if err != nil {
				return false, err.Error(), nil
			}
			cond = got.Status.GetCondition(apis.ConditionSucceeded)
			if cond == nil {
				return false, "no condition", nil
			}
			return ok(cond), string(cond.Status) + " " + cond.Reason, nil
		})
		return cond
	}
	cond := wait("told it is not served", func(c *apis.Condition) bool { return c.Reason == customrun.ReasonNotServed })
	if !cond.IsUnknown() || !strings.Contains(cond.Message, "example.dev/v1 Wait") {
		t.Errorf("condition %s %s: %q, want Unknown naming example.dev/v1 Wait", cond.Status, cond.Reason, cond.Message)
	}
	patch := []byte(`{"spec":{"status":"RunCancelled"}}`)
	if _, err := runs.Patch(ctx, cr.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	wait("cancelled", func(c *apis.Condition) bool { return c.IsFalse() && c.Reason == customrun.ReasonCancelled })
}

// TestCustomTaskInAPipeline: a pipeline task naming a custom task gets a
// CustomRun, as in Tekton, told that no controller of the service serves
// it; the PipelineRun waits for it (a tenant's own controller may run
// it) and its cancellation cancels the CustomRun.
func TestCustomTaskInAPipeline(t *testing.T) {
	ctx := context.Background()
	tn := env.NewTenant(ctx, t, "customtask")
	pr, err := tn.Tekton.TektonV1().PipelineRuns("default").Create(ctx, &v1.PipelineRun{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "custom-"},
		Spec: v1.PipelineRunSpec{PipelineSpec: &v1.PipelineSpec{Tasks: []v1.PipelineTask{{
			Name: "wait", TaskRef: &v1.TaskRef{APIVersion: "example.dev/v1", Kind: "Wait"},
			Params: v1.Params{{Name: "duration", Value: *v1.NewStructuredValues("1h")}},
		}}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var child string
	tn.WaitPipelineRun(ctx, t, "default", pr.Name, time.Minute, "has a CustomRun", func(pr *v1.PipelineRun) bool {
		for _, ref := range pr.Status.ChildReferences {
			if ref.Kind == "CustomRun" {
				child = ref.Name
			}
		}
		return child != "" && !pr.IsDone()
	})
	runs := tn.Tekton.TektonV1beta1().CustomRuns("default")
	framework.Eventually(t, time.Minute, "CustomRun "+child+" told it is not served", func() (bool, string, error) {
		cr, err := runs.Get(ctx, child, metav1.GetOptions{})
		if err != nil {
			return false, err.Error(), nil
		}
		c := cr.Status.GetCondition(apis.ConditionSucceeded)
		if c == nil {
			return false, "no condition", nil
		}
		ok := c.IsUnknown() && c.Reason == customrun.ReasonNotServed && len(cr.Spec.Params) == 1 && cr.Spec.CustomRef.Kind == "Wait"
		return ok, c.Reason + ": " + c.Message, nil
	})
	patch := []byte(`{"spec":{"status":"Cancelled"}}`)
	if _, err := tn.Tekton.TektonV1().PipelineRuns("default").Patch(ctx, pr.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	done := tn.WaitPipelineRun(ctx, t, "default", pr.Name, time.Minute, "done", framework.PipelineRunDone)
	if status, reason := framework.PipelineRunCondition(done); status != "False" || reason != v1.PipelineRunReasonCancelled.String() {
		t.Errorf("PipelineRun after cancel: %s %s", status, reason)
	}
	cr, err := runs.Get(ctx, child, metav1.GetOptions{})
	if err != nil || cr.Spec.Status != v1beta1.CustomRunSpecStatusCancelled {
		t.Errorf("CustomRun after the PipelineRun's cancel: %v %+v", err, cr.Spec.Status)
	}
}
