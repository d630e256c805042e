package taskrun

import (
	"context"
	"fmt"

	"github.com/kcp-dev/logicalcluster/v3"
	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"knative.dev/pkg/apis"
)

// updateStatus writes tr's status into the tenant TaskRun.
func (c *Controller) updateStatus(ctx context.Context, cluster logicalcluster.Name, u *unstructured.Unstructured, tr *v1.TaskRun) error {
	return c.objects.UpdateStatus(ctx, cluster, u, &tr.Status)
}

// failUndecodable marks a TaskRun that Tekton's types cannot read as
// failed validation, keeping everything the tenant wrote.
func (c *Controller) failUndecodable(ctx context.Context, cluster logicalcluster.Name, u *unstructured.Unstructured, decodeErr error) error {
	status := v1.TaskRunStatus{}
	status.MarkResourceFailed(v1.TaskRunReasonFailedValidation, fmt.Errorf("not a valid tekton.dev/v1 TaskRun: %w", decodeErr))
	if cond := status.GetCondition(apis.ConditionSucceeded); cond != nil {
		existing, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
		if len(existing) > 0 {
			return nil // already reported
		}
	}
	tr := &v1.TaskRun{Status: status}
	return c.updateStatus(ctx, cluster, u, tr)
}
