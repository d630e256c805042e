//go:build e2e

package pipelinerun

import (
	"context"
	"strings"
	"testing"
	"time"

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
