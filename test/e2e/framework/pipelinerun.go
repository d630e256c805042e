package framework

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"knative.dev/pkg/apis"
)

// childrenEvery is how often WaitPipelineRun reads the run's TaskRuns to
// say, should the wait fail, which of them were not done and why: the
// PipelineRun's own message only counts them.
const childrenEvery = 10 * time.Second

// WaitPipelineRun waits until cond holds for the PipelineRun and returns it.
func (tn *Tenant) WaitPipelineRun(ctx context.Context, t testing.TB, namespace, name string, timeout time.Duration, what string, cond func(*v1.PipelineRun) bool) *v1.PipelineRun {
	t.Helper()
	var pr *v1.PipelineRun
	var children string
	var childrenRead time.Time
	Eventually(t, timeout, "PipelineRun "+name+" "+what, func() (bool, string, error) {
		var err error
		pr, err = tn.Tekton.TektonV1().PipelineRuns(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error(), nil
		}
		if cond(pr) {
			return true, "", nil
		}
		if time.Since(childrenRead) > childrenEvery {
			children, childrenRead = tn.unfinishedChildren(ctx, namespace, pr), time.Now()
		}
		c := pr.Status.GetCondition(apis.ConditionSucceeded)
		if c == nil {
			return false, "no condition yet" + children, nil
		}
		return false, fmt.Sprintf("%s %s: %s%s", c.Status, c.Reason, c.Message, children), nil
	})
	return pr
}

// unfinishedChildren describes the PipelineRun's TaskRuns that are not
// done: their condition, pod and when they were created.
func (tn *Tenant) unfinishedChildren(ctx context.Context, namespace string, pr *v1.PipelineRun) string {
	var lines []string
	for _, ref := range pr.Status.ChildReferences {
		if ref.Kind != "TaskRun" {
			continue
		}
		tr, err := tn.Tekton.TektonV1().TaskRuns(namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		if err != nil {
			lines = append(lines, fmt.Sprintf("%s: %v", ref.Name, err))
			continue
		}
		if tr.IsDone() {
			continue
		}
		line := fmt.Sprintf("%s (created %s, pod %q)", tr.Name, tr.CreationTimestamp.Format(time.RFC3339), tr.Status.PodName)
		if c := tr.Status.GetCondition(apis.ConditionSucceeded); c != nil {
			line += fmt.Sprintf(": %s %s: %s", c.Status, c.Reason, c.Message)
		}
		if len(tr.Annotations) > 0 {
			line += fmt.Sprintf("; annotations %v", tr.Annotations)
		}
		lines = append(lines, line)
	}
	if len(lines) == 0 {
		return ""
	}
	sort.Strings(lines)
	return "; TaskRuns not done: " + strings.Join(lines, "; ")
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
