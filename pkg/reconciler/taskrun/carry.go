package taskrun

import (
	"context"
	"fmt"

	"github.com/kcp-dev/logicalcluster/v3"
	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"knative.dev/pkg/kmeta"

	"github.com/pipelines-service/pipelines-service/pkg/workload"
)

var (
	secretsResource    = corev1.SchemeGroupVersion.WithResource("secrets")
	configMapsResource = corev1.SchemeGroupVersion.WithResource("configmaps")
)

// missingSourceError is a workspace's secret or configmap that the tenant
// namespace does not have.
type missingSourceError struct{ error }

// carryWorkspaceSources copies the secrets and configmaps the TaskRun's
// workspaces bind from the tenant workspace (read through the export's
// permission claims) into the workload namespace, one copy per TaskRun,
// and returns the bindings pointing at the copies.
func (c *Controller) carryWorkspaceSources(ctx context.Context, cluster logicalcluster.Name, tr *v1.TaskRun) ([]v1.WorkspaceBinding, error) {
	bindings := make([]v1.WorkspaceBinding, len(tr.Spec.Workspaces))
	for i, b := range tr.Spec.Workspaces {
		b = *b.DeepCopy()
		switch {
		case b.Secret != nil:
			name, err := c.carry(ctx, cluster, tr, secretsResource, b.Name, b.Secret.SecretName, b.Secret.Optional)
			if err != nil {
				return nil, err
			}
			b.Secret.SecretName = name
		case b.ConfigMap != nil:
			name, err := c.carry(ctx, cluster, tr, configMapsResource, b.Name, b.ConfigMap.Name, b.ConfigMap.Optional)
			if err != nil {
				return nil, err
			}
			b.ConfigMap.Name = name
		}
		bindings[i] = b
	}
	return bindings, nil
}

// carry copies one secret or configmap; a missing optional one is left
// missing (its volume is optional too).
func (c *Controller) carry(ctx context.Context, cluster logicalcluster.Name, tr *v1.TaskRun, resource schema.GroupVersionResource, binding, name string, optional *bool) (string, error) {
	u, err := c.tenants.Cluster(cluster.Path()).Resource(resource).Namespace(tr.Namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		if optional != nil && *optional {
			return name, nil
		}
		return "", missingSourceError{fmt.Errorf("workspace %q binds %s %q, which does not exist in namespace %q", binding, resource.Resource, name, tr.Namespace)}
	}
	if err != nil {
		return "", fmt.Errorf("read %s %s/%s of the tenant: %w", resource.Resource, tr.Namespace, name, err)
	}
	meta := metav1.ObjectMeta{
		Name:      kmeta.ChildName(tr.Name, "-ws-"+binding),
		Namespace: workload.Namespace(cluster, tr.Namespace),
		Labels: map[string]string{
			workload.LabelManagedBy: workload.ManagedByValue, workload.LabelClusterName: cluster.String(), workload.LabelTaskRunUID: string(tr.UID),
		},
		Annotations: map[string]string{workload.AnnotationTaskRun: tr.Namespace + "/" + tr.Name},
	}
	switch resource {
	case secretsResource:
		secret := &corev1.Secret{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, secret); err != nil {
			return "", err
		}
		_, err = c.workload.CoreV1().Secrets(meta.Namespace).Create(ctx, &corev1.Secret{ObjectMeta: meta, Type: secret.Type, Data: secret.Data}, metav1.CreateOptions{})
	default:
		cm := &corev1.ConfigMap{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, cm); err != nil {
			return "", err
		}
		_, err = c.workload.CoreV1().ConfigMaps(meta.Namespace).Create(ctx, &corev1.ConfigMap{ObjectMeta: meta, Data: cm.Data, BinaryData: cm.BinaryData}, metav1.CreateOptions{})
	}
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return "", fmt.Errorf("carry %s %s to the workload namespace: %w", resource.Resource, name, err)
	}
	return meta.Name, nil
}

// deleteCarried removes the TaskRun's copies of secrets and configmaps.
func (c *Controller) deleteCarried(ctx context.Context, cluster logicalcluster.Name, tr *v1.TaskRun) error {
	ns := workload.Namespace(cluster, tr.Namespace)
	selector := metav1.ListOptions{LabelSelector: workload.LabelTaskRunUID + "=" + string(tr.UID)}
	if err := c.workload.CoreV1().Secrets(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, selector); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	if err := c.workload.CoreV1().ConfigMaps(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, selector); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	return nil
}
