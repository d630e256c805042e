package taskrun

import (
	"context"
	"fmt"

	"github.com/kcp-dev/logicalcluster/v3"
	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"knative.dev/pkg/kmeta"

	"github.com/pipelines-service/pipelines-service/pkg/fleet"
	"github.com/pipelines-service/pipelines-service/pkg/workload"
)

var (
	secretsResource    = corev1.SchemeGroupVersion.WithResource("secrets")
	configMapsResource = corev1.SchemeGroupVersion.WithResource("configmaps")
)

// missingSourceError is a secret or configmap the pod needs that the tenant
// namespace does not have.
type missingSourceError struct{ error }

// sourceRef is one reference of the pod to a secret or configmap.
type sourceRef struct {
	resource schema.GroupVersionResource
	name     *string // rewritten to the copy's name
	optional *bool
}

// podSources lists every reference of the pod to a secret or configmap:
// volumes (workspaces among them), projected volume sources, env, envFrom.
func podSources(pod *corev1.Pod) []sourceRef {
	var refs []sourceRef
	add := func(resource schema.GroupVersionResource, name *string, optional *bool) {
		refs = append(refs, sourceRef{resource, name, optional})
	}
	for i := range pod.Spec.Volumes {
		v := &pod.Spec.Volumes[i]
		switch {
		case v.Secret != nil:
			add(secretsResource, &v.Secret.SecretName, v.Secret.Optional)
		case v.ConfigMap != nil:
			add(configMapsResource, &v.ConfigMap.Name, v.ConfigMap.Optional)
		case v.Projected != nil:
			for j := range v.Projected.Sources {
				src := &v.Projected.Sources[j]
				if src.Secret != nil {
					add(secretsResource, &src.Secret.Name, src.Secret.Optional)
				}
				if src.ConfigMap != nil {
					add(configMapsResource, &src.ConfigMap.Name, src.ConfigMap.Optional)
				}
			}
		}
	}
	for _, containers := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range containers {
			c := &containers[i]
			for j := range c.Env {
				if from := c.Env[j].ValueFrom; from != nil && from.SecretKeyRef != nil {
					add(secretsResource, &from.SecretKeyRef.Name, from.SecretKeyRef.Optional)
				} else if from != nil && from.ConfigMapKeyRef != nil {
					add(configMapsResource, &from.ConfigMapKeyRef.Name, from.ConfigMapKeyRef.Optional)
				}
			}
			for j := range c.EnvFrom {
				if ref := c.EnvFrom[j].SecretRef; ref != nil {
					add(secretsResource, &ref.Name, ref.Optional)
				} else if ref := c.EnvFrom[j].ConfigMapRef; ref != nil {
					add(configMapsResource, &ref.Name, ref.Optional)
				}
			}
		}
	}
	return refs
}

// carryPodSources copies every secret and configmap the pod references
// from the tenant workspace (read through the export's permission claims)
// into the workload namespace, one copy per TaskRun, and points the pod at
// the copies. A missing optional one stays missing, as its reference is
// optional too.
func (c *Controller) carryPodSources(ctx context.Context, m *fleet.Member, cluster logicalcluster.Name, tr *v1.TaskRun, pod *corev1.Pod) error {
	copies := map[string]string{} // resource/name -> copy
	for _, ref := range podSources(pod) {
		key := ref.resource.Resource + "/" + *ref.name
		copyName, done := copies[key]
		if !done {
			var err error
			if copyName, err = c.carry(ctx, m, cluster, tr, ref.resource, *ref.name, ref.optional); err != nil {
				return err
			}
			copies[key] = copyName
		}
		*ref.name = copyName
	}
	return nil
}

func (c *Controller) carry(ctx context.Context, m *fleet.Member, cluster logicalcluster.Name, tr *v1.TaskRun, resource schema.GroupVersionResource, name string, optional *bool) (string, error) {
	u, err := c.tenants.Cluster(cluster.Path()).Resource(resource).Namespace(tr.Namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		if optional != nil && *optional {
			return name, nil
		}
		return "", missingSourceError{fmt.Errorf("%s %q does not exist in namespace %q", resource.Resource, name, tr.Namespace)}
	}
	if err != nil {
		return "", fmt.Errorf("read %s %s/%s of the tenant: %w", resource.Resource, tr.Namespace, name, err)
	}
	meta := metav1.ObjectMeta{
		Name:      kmeta.ChildName(name, "-"+string(tr.UID)),
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
		_, err = m.Client.CoreV1().Secrets(meta.Namespace).Create(ctx, &corev1.Secret{ObjectMeta: meta, Type: secret.Type, Data: secret.Data}, metav1.CreateOptions{})
	default:
		cm := &corev1.ConfigMap{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, cm); err != nil {
			return "", err
		}
		_, err = m.Client.CoreV1().ConfigMaps(meta.Namespace).Create(ctx, &corev1.ConfigMap{ObjectMeta: meta, Data: cm.Data, BinaryData: cm.BinaryData}, metav1.CreateOptions{})
	}
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return "", fmt.Errorf("carry %s %s to the workload namespace: %w", resource.Resource, name, err)
	}
	return meta.Name, nil
}

// deleteCarried removes the TaskRun's copies of secrets and configmaps.
// On a cluster that does not answer, the garbage collector removes them
// when it is back.
func (c *Controller) deleteCarried(ctx context.Context, cluster logicalcluster.Name, tr *v1.TaskRun) error {
	m := c.memberOf(tr)
	if m == nil || !m.Reachable() {
		return nil
	}
	ns := workload.Namespace(cluster, tr.Namespace)
	if !carriedLeft(m, ns, tr.UID) {
		return nil
	}
	return deleteCarriedOn(ctx, m, ns, tr.UID)
}

// carriedLeft says whether the member's informers still hold secrets or
// configmaps carried for the TaskRun: every reconcile of a finished
// TaskRun asks, and only then goes to the workload cluster.
func carriedLeft(m *fleet.Member, ns string, uid types.UID) bool {
	selector := labels.SelectorFromSet(labels.Set{workload.LabelTaskRunUID: string(uid)})
	secrets, err := m.Secrets.Secrets(ns).List(selector)
	if err != nil || len(secrets) > 0 {
		return true
	}
	maps, err := m.Maps.ConfigMaps(ns).List(selector)
	return err != nil || len(maps) > 0
}

func deleteCarriedOn(ctx context.Context, m *fleet.Member, ns string, uid types.UID) error {
	selector := metav1.ListOptions{LabelSelector: workload.LabelTaskRunUID + "=" + string(uid)}
	if err := m.Client.CoreV1().Secrets(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, selector); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete secrets of TaskRun: %w", err)
	}
	if err := m.Client.CoreV1().ConfigMaps(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, selector); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete configmaps of TaskRun: %w", err)
	}
	return nil
}
