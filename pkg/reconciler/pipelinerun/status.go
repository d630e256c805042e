package pipelinerun

import (
	"context"
	"fmt"

	"github.com/kcp-dev/logicalcluster/v3"
	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

func (c *Controller) updateStatus(ctx context.Context, cluster logicalcluster.Name, u *unstructured.Unstructured, pr *v1.PipelineRun) error {
	status, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&pr.Status)
	if err != nil {
		return err
	}
	out := u.DeepCopy()
	out.Object["status"] = status
	if _, err := c.tenants.Cluster(cluster.Path()).Resource(PipelineRunsResource).Namespace(u.GetNamespace()).UpdateStatus(ctx, out, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("update status: %w", err)
	}
	return nil
}

// updateMeta writes labels and annotations Tekton adds (tekton.dev/pipeline
// and the Pipeline's own) and returns the updated object.
func (c *Controller) updateMeta(ctx context.Context, cluster logicalcluster.Name, u *unstructured.Unstructured, pr *v1.PipelineRun) (*unstructured.Unstructured, error) {
	out := u.DeepCopy()
	out.SetLabels(pr.Labels)
	out.SetAnnotations(pr.Annotations)
	updated, err := c.tenants.Cluster(cluster.Path()).Resource(PipelineRunsResource).Namespace(u.GetNamespace()).Update(ctx, out, metav1.UpdateOptions{})
	if err != nil {
		return nil, fmt.Errorf("update labels: %w", err)
	}
	return updated, nil
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
