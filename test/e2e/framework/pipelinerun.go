package framework

import (
	"context"
	"fmt"
	"testing"
	"time"

	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"knative.dev/pkg/apis"
)

// WaitPipelineRun waits until cond holds for the PipelineRun and returns it.
func (tn *Tenant) WaitPipelineRun(ctx context.Context, t testing.TB, namespace, name string, timeout time.Duration, what string, cond func(*v1.PipelineRun) bool) *v1.PipelineRun {
	t.Helper()
	var pr *v1.PipelineRun
	Eventually(t, timeout, "PipelineRun "+name+" "+what, func() (bool, string, error) {
		var err error
		pr, err = tn.Tekton.TektonV1().PipelineRuns(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error(), nil
		}
		c := pr.Status.GetCondition(apis.ConditionSucceeded)
		if c == nil {
			return cond(pr), "no condition yet", nil
		}
		return cond(pr), fmt.Sprintf("%s %s: %s", c.Status, c.Reason, c.Message), nil
	})
	return pr
}

// PipelineRunDone is true when the PipelineRun finished.
func PipelineRunDone(pr *v1.PipelineRun) bool { return pr.IsDone() }

// PipelineRunCondition returns the Succeeded condition's status and reason.
func PipelineRunCondition(pr *v1.PipelineRun) (string, string) {
	c := pr.Status.GetCondition(apis.ConditionSucceeded)
	if c == nil {
		return "", ""
	}
	return string(c.Status), c.Reason
}
