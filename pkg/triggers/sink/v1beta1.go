package sink

import (
	"context"
	"fmt"

	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	"github.com/tektoncd/pipeline/pkg/apis/pipeline/v1beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"knative.dev/pkg/apis"
)

// Tenants' workspaces serve tekton.dev TaskRuns and PipelineRuns as v1
// only: upstream serves v1beta1 beside it through a conversion webhook,
// which kcp does not run. Triggers' examples, and many tenants'
// templates, still create v1beta1 runs. The sink converts them with
// Tekton's own conversion (what the webhook would run) and creates the v1
// object.
var convertible = map[string]func() (from apis.Convertible, to apis.Convertible){
	"taskruns":     func() (apis.Convertible, apis.Convertible) { return &v1beta1.TaskRun{}, &v1.TaskRun{} },
	"pipelineruns": func() (apis.Convertible, apis.Convertible) { return &v1beta1.PipelineRun{}, &v1.PipelineRun{} },
}

// v1beta1Discovery answers tekton.dev/v1beta1 with the convertible
// resources of tekton.dev/v1.
type v1beta1Discovery struct {
	discovery.ServerResourcesInterface
}

func (d v1beta1Discovery) ServerResourcesForGroupVersion(gv string) (*metav1.APIResourceList, error) {
	if gv != v1beta1.SchemeGroupVersion.String() {
		return d.ServerResourcesInterface.ServerResourcesForGroupVersion(gv)
	}
	list, err := d.ServerResourcesInterface.ServerResourcesForGroupVersion(v1.SchemeGroupVersion.String())
	if err != nil {
		return nil, err
	}
	out := &metav1.APIResourceList{GroupVersion: gv}
	for _, r := range list.APIResources {
		if _, ok := convertible[r.Name]; ok {
			r.Version = v1beta1.SchemeGroupVersion.Version
			out.APIResources = append(out.APIResources, r)
		}
	}
	return out, nil
}

// v1beta1Dynamic creates tekton.dev/v1beta1 runs as v1.
type v1beta1Dynamic struct {
	dynamic.Interface
}

func (d v1beta1Dynamic) Resource(gvr schema.GroupVersionResource) dynamic.NamespaceableResourceInterface {
	if _, ok := convertible[gvr.Resource]; !ok || gvr.GroupVersion() != v1beta1.SchemeGroupVersion {
		return d.Interface.Resource(gvr)
	}
	return v1beta1Resource{NamespaceableResourceInterface: d.Interface.Resource(v1.SchemeGroupVersion.WithResource(gvr.Resource)), resource: gvr.Resource}
}

type v1beta1Resource struct {
	dynamic.NamespaceableResourceInterface
	resource string
}

func (r v1beta1Resource) Namespace(ns string) dynamic.ResourceInterface {
	return v1beta1Namespaced{ResourceInterface: r.NamespaceableResourceInterface.Namespace(ns), resource: r.resource}
}

type v1beta1Namespaced struct {
	dynamic.ResourceInterface
	resource string
}

func (r v1beta1Namespaced) Create(ctx context.Context, obj *unstructured.Unstructured, opts metav1.CreateOptions, subresources ...string) (*unstructured.Unstructured, error) {
	converted, err := toV1(ctx, r.resource, obj)
	if err != nil {
		return nil, err
	}
	return r.ResourceInterface.Create(ctx, converted, opts, subresources...)
}

// toV1 converts a v1beta1 run to v1 with Tekton's conversion.
func toV1(ctx context.Context, resource string, obj *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	from, to := convertible[resource]()
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, from); err != nil {
		return nil, fmt.Errorf("%s %s is not a tekton.dev/v1beta1 %s: %w", obj.GetKind(), obj.GetName(), resource, err)
	}
	if err := from.ConvertTo(ctx, to); err != nil {
		return nil, fmt.Errorf("convert %s %s to tekton.dev/v1: %w", obj.GetKind(), obj.GetName(), err)
	}
	out, err := runtime.DefaultUnstructuredConverter.ToUnstructured(to)
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{Object: out}
	u.SetAPIVersion(v1.SchemeGroupVersion.String())
	u.SetKind(obj.GetKind())
	unstructured.RemoveNestedField(u.Object, "status")
	unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	return u, nil
}
