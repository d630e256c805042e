package customrun

import (
	"testing"

	"github.com/tektoncd/pipeline/pkg/apis/pipeline/v1beta1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"knative.dev/pkg/apis"
)

func TestMark(t *testing.T) {
	now := metav1.Now()
	ref := &v1beta1.TaskRef{APIVersion: "example.dev/v1", Kind: "Wait"}
	served := &apis.Condition{Type: apis.ConditionSucceeded, Status: corev1.ConditionUnknown, Reason: "Running"}
	notServed := &apis.Condition{Type: apis.ConditionSucceeded, Status: corev1.ConditionUnknown, Reason: ReasonNotServed}
	for _, tc := range []struct {
		name       string
		cond       *apis.Condition
		cancelled  bool
		wantStatus corev1.ConditionStatus
		wantReason string
	}{
		{name: "new: not served", wantStatus: corev1.ConditionUnknown, wantReason: ReasonNotServed},
		{name: "not served, cancelled: ends", cond: notServed, cancelled: true, wantStatus: corev1.ConditionFalse, wantReason: ReasonCancelled},
		{name: "not served, waiting: unchanged", cond: notServed, wantStatus: corev1.ConditionUnknown, wantReason: ReasonNotServed},
		{name: "another controller's: untouched", cond: served, cancelled: true, wantStatus: corev1.ConditionUnknown, wantReason: "Running"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cr := &v1beta1.CustomRun{Spec: v1beta1.CustomRunSpec{CustomRef: ref}}
			if tc.cond != nil {
				cr.Status.SetCondition(tc.cond)
			}
			if tc.cancelled {
				cr.Spec.Status = v1beta1.CustomRunSpecStatusCancelled
			}
			mark(cr, now)
			got := cr.Status.GetCondition(apis.ConditionSucceeded)
			if got.Status != tc.wantStatus || got.Reason != tc.wantReason {
				t.Fatalf("condition %s %s (%s), want %s %s", got.Status, got.Reason, got.Message, tc.wantStatus, tc.wantReason)
			}
			if tc.cond == nil && (cr.Status.StartTime == nil || got.Message == "") {
				t.Errorf("a new CustomRun gets a start time and a message naming its kind: %+v", cr.Status)
			}
		})
	}
}
