package pacrun

import (
	"testing"

	"github.com/openshift-pipelines/pipelines-as-code/pkg/apis/pipelinesascode/keys"
	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"knative.dev/pkg/apis"
	duckv1 "knative.dev/pkg/apis/duck/v1"
)

func TestStepOf(t *testing.T) {
	run := func(state string, pending bool, succeeded corev1.ConditionStatus) *v1.PipelineRun {
		pr := &v1.PipelineRun{ObjectMeta: metav1.ObjectMeta{
			Labels:      map[string]string{keys.State: state, keys.Repository: "app"},
			Annotations: map[string]string{keys.GitProvider: "gitea", keys.State: state},
		}}
		if pending {
			pr.Spec.Status = v1.PipelineRunSpecStatusPending
		}
		if succeeded != "" {
			pr.Status.Status = duckv1.Status{Conditions: duckv1.Conditions{{Type: apis.ConditionSucceeded, Status: succeeded}}}
		}
		return pr
	}
	for _, tc := range []struct {
		name string
		pr   *v1.PipelineRun
		want step
	}{
		{"queued: admit", run("queued", true, ""), stepAdmit},
		{"created started and pending, not yet queued: nothing", run("started", true, ""), stepNone},
		{"started: holds a slot", run("started", false, corev1.ConditionUnknown), stepRunning},
		{"ended: report", run("started", false, corev1.ConditionFalse), stepReport},
		{"ended and reported", run("completed", false, corev1.ConditionTrue), stepDone},
		{"queued then cancelled before it started: report", run("queued", true, corev1.ConditionFalse), stepReport},
	} {
		if got := stepOf(tc.pr); got != tc.want {
			t.Errorf("%s: step %d, want %d", tc.name, got, tc.want)
		}
	}
}
