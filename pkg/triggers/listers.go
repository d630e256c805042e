package triggers

import (
	"context"
	"fmt"

	kcpcache "github.com/kcp-dev/apimachinery/v2/pkg/cache"
	kcpdynamicinformer "github.com/kcp-dev/client-go/dynamic/dynamicinformer"
	"github.com/kcp-dev/logicalcluster/v3"
	"github.com/tektoncd/triggers/pkg/apis/triggers/contexts"
	"github.com/tektoncd/triggers/pkg/apis/triggers/v1alpha1"
	"github.com/tektoncd/triggers/pkg/apis/triggers/v1beta1"
	listersv1alpha1 "github.com/tektoncd/triggers/pkg/client/listers/triggers/v1alpha1"
	listers "github.com/tektoncd/triggers/pkg/client/listers/triggers/v1beta1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/client-go/tools/cache"
	"knative.dev/pkg/apis"
	duckv1 "knative.dev/pkg/apis/duck/v1"

	"github.com/pipelines-service/pipelines-service/pkg/reconciler"
)

// ClusterListers are the tenant informers' listers of the Triggers
// resources, across workspaces.
type ClusterListers map[schema.GroupVersionResource]kcpcache.GenericClusterLister

// ListersOf are the listers of every Triggers resource from tenant
// informers (registering the informers with the factory).
func ListersOf(informers kcpdynamicinformer.DynamicSharedInformerFactory) ClusterListers {
	out := ClusterListers{}
	for _, gvr := range Resources {
		out[gvr] = informers.ForResource(gvr).Lister()
	}
	return out
}

// Workspace is Triggers' own lister interfaces over one workspace, for
// library code (the sink, template resolution) that takes them. Objects are
// decoded as Triggers' webhook would admit them, with its defaults: kcp
// runs no Triggers webhook.
type Workspace struct {
	listers map[schema.GroupVersionResource]cache.GenericLister
	// runnable hides what must never run: triggers and trigger groups
	// whose forge interceptor verifies no signature.
	runnable bool
}

// Workspace is the listers of one workspace. With runnable, listeners and
// triggers come without the chains that must not run (Unsigned), as the
// sink must see them; without, as the tenant wrote them.
func (c ClusterListers) Workspace(cluster logicalcluster.Name, runnable bool) *Workspace {
	w := &Workspace{listers: map[schema.GroupVersionResource]cache.GenericLister{}, runnable: runnable}
	for gvr, l := range c {
		w.listers[gvr] = l.ByCluster(cluster)
	}
	return w
}

// EventListeners lists the workspace's listeners.
func (w *Workspace) EventListeners() listers.EventListenerLister {
	return elLister{typed: typed[v1beta1.EventListener, *v1beta1.EventListener]{lister: w.listers[EventListeners], resource: EventListeners, keep: w.keepListener}}
}

// Triggers lists the workspace's triggers.
func (w *Workspace) Triggers() listers.TriggerLister {
	return triggerLister{typed: typed[v1beta1.Trigger, *v1beta1.Trigger]{lister: w.listers[Triggers], resource: Triggers, keep: w.keepTrigger}}
}

// TriggerBindings lists the workspace's bindings.
func (w *Workspace) TriggerBindings() listers.TriggerBindingLister {
	return bindingLister{typed: typed[v1beta1.TriggerBinding, *v1beta1.TriggerBinding]{lister: w.listers[TriggerBindings], resource: TriggerBindings}}
}

// ClusterTriggerBindings lists the workspace's cluster bindings (per
// workspace in kcp).
func (w *Workspace) ClusterTriggerBindings() listers.ClusterTriggerBindingLister {
	return typed[v1beta1.ClusterTriggerBinding, *v1beta1.ClusterTriggerBinding]{lister: w.listers[ClusterTriggerBindings], resource: ClusterTriggerBindings}
}

// TriggerTemplates lists the workspace's templates.
func (w *Workspace) TriggerTemplates() listers.TriggerTemplateLister {
	return templateLister{typed: typed[v1beta1.TriggerTemplate, *v1beta1.TriggerTemplate]{lister: w.listers[TriggerTemplates], resource: TriggerTemplates}}
}

// Interceptors lists the workspace's namespaced interceptors.
func (w *Workspace) Interceptors() listersv1alpha1.InterceptorLister {
	return interceptorLister{typed: typed[v1alpha1.Interceptor, *v1alpha1.Interceptor]{lister: w.listers[Interceptors], resource: Interceptors}}
}

// ClusterInterceptors lists the core interceptors, then the workspace's
// own ClusterInterceptors; a tenant's object of a core interceptor's name
// is shadowed by the core one.
func (w *Workspace) ClusterInterceptors() listersv1alpha1.ClusterInterceptorLister {
	return clusterInterceptorLister{tenant: typed[v1alpha1.ClusterInterceptor, *v1alpha1.ClusterInterceptor]{lister: w.listers[ClusterInterceptors], resource: ClusterInterceptors}}
}

func (w *Workspace) keepListener(el *v1beta1.EventListener) bool {
	if !w.runnable {
		return true
	}
	var ts []v1beta1.EventListenerTrigger
	for _, t := range el.Spec.Triggers {
		if Unsigned(t.Interceptors) == nil {
			ts = append(ts, t)
		}
	}
	var gs []v1beta1.EventListenerTriggerGroup
	for _, g := range el.Spec.TriggerGroups {
		if Unsigned(g.Interceptors) == nil {
			gs = append(gs, g)
		}
	}
	el.Spec.Triggers, el.Spec.TriggerGroups = ts, gs
	return true
}

func (w *Workspace) keepTrigger(t *v1beta1.Trigger) bool {
	return !w.runnable || Unsigned(t.Spec.Interceptors) == nil
}

// defaultable is a Triggers type with the defaults its webhook sets.
type defaultable[T any] interface {
	*T
	runtime.Object
	metav1.Object
	SetDefaults(context.Context)
}

// typed lists objects of one type from a workspace lister: all of them, or
// those of one namespace.
type typed[T any, P defaultable[T]] struct {
	lister    cache.GenericLister
	resource  schema.GroupVersionResource
	namespace string
	// keep, if set, may edit a decoded object and says whether it is
	// visible at all.
	keep func(P) bool
}

func (t typed[T, P]) in(namespace string) typed[T, P] {
	t.namespace = namespace
	return t
}

func (t typed[T, P]) List(selector labels.Selector) ([]P, error) {
	if t.lister == nil {
		return nil, nil
	}
	var objs []runtime.Object
	var err error
	if t.namespace != "" {
		objs, err = t.lister.ByNamespace(t.namespace).List(selector)
	} else {
		objs, err = t.lister.List(selector)
	}
	if err != nil {
		return nil, err
	}
	var out []P
	for _, o := range objs {
		p, err := t.decode(o)
		if err != nil {
			continue // not admitted by Triggers' own schema; the reconciler reports it
		}
		if t.keep == nil || t.keep(p) {
			out = append(out, p)
		}
	}
	return out, nil
}

func (t typed[T, P]) Get(name string) (P, error) {
	if t.lister == nil {
		return nil, apierrors.NewNotFound(t.resource.GroupResource(), name)
	}
	var obj runtime.Object
	var err error
	if t.namespace != "" {
		obj, err = t.lister.ByNamespace(t.namespace).Get(name)
	} else {
		obj, err = t.lister.Get(name)
	}
	if err != nil {
		return nil, err
	}
	p, err := t.decode(obj)
	if err != nil {
		return nil, err
	}
	if t.keep != nil && !t.keep(p) {
		return nil, apierrors.NewNotFound(t.resource.GroupResource(), name)
	}
	return p, nil
}

func (t typed[T, P]) decode(obj runtime.Object) (P, error) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return nil, fmt.Errorf("unexpected object %T", obj)
	}
	p := P(new(T))
	if err := reconciler.Decode(u, p); err != nil {
		return nil, fmt.Errorf("%s %s/%s: %w", u.GetKind(), u.GetNamespace(), u.GetName(), err)
	}
	p.SetDefaults(contexts.WithUpgradeViaDefaulting(context.Background()))
	return p, nil
}

type elLister struct {
	typed[v1beta1.EventListener, *v1beta1.EventListener]
}

func (l elLister) EventListeners(ns string) listers.EventListenerNamespaceLister { return l.in(ns) }

type triggerLister struct {
	typed[v1beta1.Trigger, *v1beta1.Trigger]
}

func (l triggerLister) Triggers(ns string) listers.TriggerNamespaceLister { return l.in(ns) }

type bindingLister struct {
	typed[v1beta1.TriggerBinding, *v1beta1.TriggerBinding]
}

func (l bindingLister) TriggerBindings(ns string) listers.TriggerBindingNamespaceLister {
	return l.in(ns)
}

type templateLister struct {
	typed[v1beta1.TriggerTemplate, *v1beta1.TriggerTemplate]
}

func (l templateLister) TriggerTemplates(ns string) listers.TriggerTemplateNamespaceLister {
	return l.in(ns)
}

type interceptorLister struct {
	typed[v1alpha1.Interceptor, *v1alpha1.Interceptor]
}

func (l interceptorLister) Interceptors(ns string) listersv1alpha1.InterceptorNamespaceLister {
	return l.in(ns)
}

type clusterInterceptorLister struct {
	tenant typed[v1alpha1.ClusterInterceptor, *v1alpha1.ClusterInterceptor]
}

func (l clusterInterceptorLister) Get(name string) (*v1alpha1.ClusterInterceptor, error) {
	if IsCore(name) {
		return coreInterceptor(name), nil
	}
	return l.tenant.Get(name)
}

func (l clusterInterceptorLister) List(selector labels.Selector) ([]*v1alpha1.ClusterInterceptor, error) {
	own, err := l.tenant.List(selector)
	if err != nil {
		return nil, err
	}
	var out []*v1alpha1.ClusterInterceptor
	for _, name := range CoreInterceptors {
		out = append(out, coreInterceptor(name))
	}
	core := sets.New(CoreInterceptors...)
	for _, ci := range own {
		if !core.Has(ci.Name) {
			out = append(out, ci)
		}
	}
	return out, nil
}

// coreInterceptor is a core interceptor as a ClusterInterceptor whose
// address the sink answers in process.
func coreInterceptor(name string) *v1alpha1.ClusterInterceptor {
	u, _ := apis.ParseURL(CoreInterceptorURL(name))
	return &v1alpha1.ClusterInterceptor{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"server/type": "https"}},
		Status:     v1alpha1.ClusterInterceptorStatus{AddressStatus: duckv1.AddressStatus{Address: &duckv1.Addressable{URL: u}}},
	}
}
