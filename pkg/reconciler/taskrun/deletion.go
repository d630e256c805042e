package taskrun

import (
	"context"
	"fmt"

	"github.com/kcp-dev/logicalcluster/v3"
	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	"go.uber.org/zap"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/pipelines-service/pipelines-service/pkg/fleet"
	"github.com/pipelines-service/pipelines-service/pkg/reconciler/placement"
	"github.com/pipelines-service/pipelines-service/pkg/workload"
)

// collectDeleted removes what the TaskRun last deleted under key made on
// its workload cluster, unless that TaskRun is the one now under key
// (current; empty when none is). The TaskRun itself is already gone: the
// workload objects follow it, as pods follow their owner on Kubernetes.
func (c *Controller) collectDeleted(ctx context.Context, log *zap.SugaredLogger, key string, current types.UID) error {
	gone := c.deleted.Get(key)
	if gone == nil || gone.GetUID() == current {
		return nil
	}
	tr := &v1.TaskRun{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(gone.Object, tr); err != nil {
		log.Infow("deleted TaskRun does not decode; its workload objects are left to the garbage collector", "error", err)
		c.deleted.Forget(key, gone)
		return nil
	}
	if err := c.removeWorkloadObjects(ctx, log, logicalcluster.From(gone), tr); err != nil {
		return err
	}
	c.deleted.Forget(key, gone)
	return nil
}

// finalize removes what a TaskRun that still carries the finalizer of
// earlier versions made, then the finalizer. Nothing adds it any more.
func (c *Controller) finalize(ctx context.Context, log *zap.SugaredLogger, key string, cluster logicalcluster.Name, u *unstructured.Unstructured, tr *v1.TaskRun) error {
	if !c.finalizers.Has(u) {
		return nil
	}
	c.fleet.Admission().Release(key)
	if err := c.removeWorkloadObjects(ctx, log, cluster, tr); err != nil {
		return err
	}
	return c.finalizers.Remove(ctx, cluster, u)
}

// removeWorkloadObjects deletes the pod, secrets and configmaps of a
// TaskRun on the cluster it was placed on; a TaskRun whose last state
// names no cluster may have made its pod just before it was deleted, so
// every cluster is asked. A cluster that does not answer is left to the
// garbage collector, when it is back.
func (c *Controller) removeWorkloadObjects(ctx context.Context, log *zap.SugaredLogger, cluster logicalcluster.Name, tr *v1.TaskRun) error {
	members := c.fleet.Members()
	if name := placement.Of(tr); name != "" {
		members = []*fleet.Member{c.fleet.Member(name)}
	}
	ns := workload.Namespace(cluster, tr.Namespace)
	for _, m := range members {
		if m == nil || !m.Reachable() {
			log.Infow("workload cluster of TaskRun does not answer; its objects there are collected when it is back", "cluster", placement.Of(tr))
			continue
		}
		if err := deleteByTaskRun(ctx, m, ns, tr.UID); err != nil {
			return err
		}
	}
	log.Infow("deleted workload objects of TaskRun", "podNamespace", ns)
	return nil
}

// deleteByTaskRun deletes the pods, secrets and configmaps labelled with
// the TaskRun's UID in ns.
func deleteByTaskRun(ctx context.Context, m *fleet.Member, ns string, uid types.UID) error {
	selector := metav1.ListOptions{LabelSelector: workload.LabelTaskRunUID + "=" + string(uid)}
	if err := m.Client.CoreV1().Pods(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, selector); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete pods of TaskRun: %w", err)
	}
	return deleteCarriedOn(ctx, m, ns, uid)
}
