package taskrun

import (
	"context"
	"fmt"

	"github.com/kcp-dev/logicalcluster/v3"
	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	"go.uber.org/zap"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/pipelines-service/pipelines-service/pkg/workload"
)

// finalize removes what the TaskRun made on the workload cluster, then its
// finalizer.
func (c *Controller) finalize(ctx context.Context, log *zap.SugaredLogger, cluster logicalcluster.Name, u *unstructured.Unstructured, tr *v1.TaskRun) error {
	if !c.finalizers.Has(u) {
		return nil
	}
	ns := workload.Namespace(cluster, tr.Namespace)
	selector := workload.LabelTaskRunUID + "=" + string(tr.UID)
	if err := c.workload.CoreV1().Pods(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: selector}); err != nil {
		return fmt.Errorf("delete pods of TaskRun: %w", err)
	}
	if err := c.deleteCarried(ctx, cluster, tr); err != nil {
		return fmt.Errorf("delete secrets and configmaps of TaskRun: %w", err)
	}
	log.Infow("deleted workload objects of TaskRun", "podNamespace", ns)
	return c.finalizers.Remove(ctx, cluster, u)
}
