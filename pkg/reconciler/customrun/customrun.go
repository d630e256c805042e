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

// reconcileKey reconciles the CustomRun of a cluster-aware key.
func (c *Controller) reconcileKey(ctx context.Context, key string) (time.Duration, error) {
	cr := &v1beta1.CustomRun{}
	obj, err := reconciler.Get(c.customRuns.Lister(), key, cr)
	if obj == nil || err != nil || cr.DeletionTimestamp != nil {
		return 0, err // gone, or not a CustomRun the service can read
	}
	before := cr.Status.DeepCopy()
	mark(cr, metav1.Now())
	if equality.Semantic.DeepEqual(before, &cr.Status) {
		return 0, nil
	}
	c.log.Infow("CustomRun has no custom-task controller", "workspace", obj.Cluster.String(), "namespace", obj.Namespace, "name", obj.Name,
		"reason", cr.Status.GetCondition(apis.ConditionSucceeded).Reason)
	return 0, c.objects.UpdateStatus(ctx, obj.Cluster, obj.Unstructured, &cr.Status)
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
