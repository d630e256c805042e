package customrun

import (
	"context"
	"fmt"
	"time"

	"github.com/tektoncd/pipeline/pkg/apis/pipeline/v1beta1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"knative.dev/pkg/apis"

	"github.com/pipelines-service/pipelines-service/pkg/reconciler"
)

// Reasons of the Succeeded condition the service gives CustomRuns.
const (
	ReasonNotServed = "CustomTaskNotServed"
	ReasonCancelled = "CustomRunCancelled"
)

// kind is the CustomRun's part of the reconcile skeleton
// (reconciler.Skeleton).
type kind struct{}

func (kind) New() *v1beta1.CustomRun          { return &v1beta1.CustomRun{} }
func (kind) Status(cr *v1beta1.CustomRun) any { return &cr.Status }
func (kind) Succeeded(cr *v1beta1.CustomRun) *apis.Condition {
	return cr.Status.GetCondition(apis.ConditionSucceeded)
}
func (kind) Gone(context.Context, string) error                                         { return nil }
func (kind) FinalizeKind(context.Context, *reconciler.Object, *v1beta1.CustomRun) error { return nil }

// Undecodable: a CustomRun the service cannot read is another
// controller's to serve, or no one's; it is left as it is.
func (kind) Undecodable(context.Context, *reconciler.Object, error) error { return nil }

func (kind) ReconcileKind(_ context.Context, o *reconciler.Object, cr *v1beta1.CustomRun) (time.Duration, error) {
	before := cr.Status.GetCondition(apis.ConditionSucceeded).DeepCopy()
	mark(cr, metav1.Now())
	if after := cr.Status.GetCondition(apis.ConditionSucceeded); !equality.Semantic.DeepEqual(before, after) {
		o.Log.Infow("CustomRun has no custom-task controller", "reason", after.Reason)
	}
	return 0, nil
}

// mark gives a CustomRun that no controller has picked up (no condition
// yet) Succeeded=Unknown with reason CustomTaskNotServed; one so marked
// that is then cancelled ends as False, CustomRunCancelled. A CustomRun
// another controller writes is left alone.
func mark(cr *v1beta1.CustomRun, now metav1.Time) {
	cond := cr.Status.GetCondition(apis.ConditionSucceeded)
	switch {
	case cond == nil:
		kind := cr.Spec.CustomRef
		what := "its custom task"
		if kind != nil {
			what = fmt.Sprintf("%s %s", kind.APIVersion, kind.Kind)
		} else if cr.Spec.CustomSpec != nil {
			what = fmt.Sprintf("%s %s", cr.Spec.CustomSpec.APIVersion, cr.Spec.CustomSpec.Kind)
		}
		cr.Status.SetCondition(&apis.Condition{
			Type: apis.ConditionSucceeded, Status: corev1.ConditionUnknown, Reason: ReasonNotServed,
			Message: fmt.Sprintf("no custom-task controller of pipelines-service serves %s; a controller of your own watching this workspace may", what),
		})
		if cr.Status.StartTime == nil {
			cr.Status.StartTime = &now
		}
	case cond.IsUnknown() && cond.Reason == ReasonNotServed && cr.IsCancelled():
		cr.Status.SetCondition(&apis.Condition{
			Type: apis.ConditionSucceeded, Status: corev1.ConditionFalse, Reason: ReasonCancelled,
			Message: fmt.Sprintf("CustomRun %q was cancelled before any controller served it", cr.Name),
		})
		cr.Status.CompletionTime = &now
	}
}
