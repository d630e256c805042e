package pipelinerun

import (
	"context"

	"github.com/kcp-dev/logicalcluster/v3"
	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func (c *Controller) updateStatus(ctx context.Context, cluster logicalcluster.Name, u *unstructured.Unstructured, pr *v1.PipelineRun) error {
	return c.objects.UpdateStatus(ctx, cluster, u, &pr.Status)
}

// failUndecodable marks a PipelineRun Tekton's types cannot read as failed,
// once, keeping what the tenant wrote.
func (c *Controller) failUndecodable(ctx context.Context, cluster logicalcluster.Name, u *unstructured.Unstructured, decodeErr error) error {
	if existing, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions"); len(existing) > 0 {
		return nil
	}
	pr := &v1.PipelineRun{}
	pr.Status.MarkFailed(v1.PipelineRunReasonFailedValidation.String(), "not a valid tekton.dev/v1 PipelineRun: %s", decodeErr)
	return c.updateStatus(ctx, cluster, u, pr)
}
