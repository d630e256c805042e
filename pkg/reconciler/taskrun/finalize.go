package taskrun

import (
	"context"
	"fmt"

	"github.com/kcp-dev/logicalcluster/v3"
	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	"go.uber.org/zap"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/pipelines-service/pipelines-service/pkg/reconciler/placement"
	"github.com/pipelines-service/pipelines-service/pkg/workload"
)

// finalize removes what the TaskRun made on the workload cluster, then its
// finalizer. A cluster that does not answer does not hold the deletion:
// the garbage collector removes what is left there when it is back.
func (c *Controller) finalize(ctx context.Context, log *zap.SugaredLogger, key string, cluster logicalcluster.Name, u *unstructured.Unstructured, tr *v1.TaskRun) error {
	if !c.finalizers.Has(u) {
		return nil
	}
	c.fleet.Admission().Release(key)
	if placement.Of(tr) == "" {
		return c.finalizers.Remove(ctx, cluster, u) // never placed: nothing was made
	}
	m := c.memberOf(tr)
	if m == nil || !m.Reachable() {
		log.Infow("workload cluster of TaskRun does not answer; its objects there are collected when it is back", "cluster", placement.Of(tr))
		return c.finalizers.Remove(ctx, cluster, u)
	}
	ns := workload.Namespace(cluster, tr.Namespace)
	selector := workload.LabelTaskRunUID + "=" + string(tr.UID)
	if err := m.Client.CoreV1().Pods(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: selector}); err != nil {
		return fmt.Errorf("delete pods of TaskRun: %w", err)
	}
	if err := c.deleteCarried(ctx, cluster, tr); err != nil {
		return fmt.Errorf("delete secrets and configmaps of TaskRun: %w", err)
	}
	log.Infow("deleted workload objects of TaskRun", "podNamespace", ns)
	return c.finalizers.Remove(ctx, cluster, u)
}
