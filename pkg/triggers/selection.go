package triggers

import (
	"encoding/json"
	"fmt"

	"github.com/tektoncd/triggers/pkg/apis/triggers/v1beta1"
	listers "github.com/tektoncd/triggers/pkg/client/listers/triggers/v1beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// ListenerTriggers are the triggers a listener processes, as the sink
// selects and merges them (upstream's Sink.selectTriggers and Sink.merge):
// those its namespace and label selectors pick, then its inline triggers
// and triggerRefs. A triggerRef that does not exist is skipped, as
// upstream skips it.
func ListenerTriggers(el *v1beta1.EventListener, triggers listers.TriggerLister) ([]*v1beta1.Trigger, error) {
	out, err := selectTriggers(el.Namespace, el.Spec.NamespaceSelector, el.Spec.LabelSelector, triggers)
	if err != nil {
		return nil, err
	}
	for _, t := range el.Spec.Triggers {
		switch {
		case t.Template == nil && t.TriggerRef != "":
			trig, err := triggers.Triggers(el.Namespace).Get(t.TriggerRef)
			if err != nil {
				continue
			}
			out = append(out, trig)
		case t.Template != nil:
			out = append(out, &v1beta1.Trigger{
				ObjectMeta: metav1.ObjectMeta{Name: t.Name, Namespace: el.Namespace},
				Spec: v1beta1.TriggerSpec{ServiceAccountName: t.ServiceAccountName, Bindings: t.Bindings,
					Template: *t.Template, Interceptors: t.Interceptors},
			})
		default:
			return nil, fmt.Errorf("EventListenerTrigger %q has neither template nor triggerRef", t.Name)
		}
	}
	return out, nil
}

// Units are the interceptor chains a listener runs for an event: one per
// trigger, and one per trigger group (whose selected triggers then run
// their own chains).
func Units(el *v1beta1.EventListener, triggers listers.TriggerLister) ([]Unit, error) {
	ts, err := ListenerTriggers(el, triggers)
	if err != nil {
		return nil, err
	}
	var out []Unit
	for _, t := range ts {
		out = append(out, Unit{ID: fmt.Sprintf("namespaces/%s/triggers/%s", t.Namespace, t.Name), Namespace: t.Namespace, Interceptors: t.Spec.Interceptors})
	}
	for _, g := range el.Spec.TriggerGroups {
		out = append(out, Unit{ID: fmt.Sprintf("namespaces/%s/triggerGroups/%s", el.Namespace, g.Name), Namespace: el.Namespace, Interceptors: g.Interceptors})
	}
	return out, nil
}

// GroupTriggers are the triggers of a trigger group.
func GroupTriggers(el *v1beta1.EventListener, g v1beta1.EventListenerTriggerGroup, triggers listers.TriggerLister) ([]*v1beta1.Trigger, error) {
	return selectTriggers(el.Namespace, g.TriggerSelector.NamespaceSelector, g.TriggerSelector.LabelSelector, triggers)
}

func selectTriggers(namespace string, ns v1beta1.NamespaceSelector, ls *metav1.LabelSelector, triggers listers.TriggerLister) ([]*v1beta1.Trigger, error) {
	selector := labels.Everything()
	if ls != nil {
		var err error
		if selector, err = metav1.LabelSelectorAsSelector(ls); err != nil {
			return nil, fmt.Errorf("labelSelector: %w", err)
		}
	}
	switch {
	case len(ns.MatchNames) == 1 && ns.MatchNames[0] == "*":
		return triggers.List(selector)
	case len(ns.MatchNames) != 0:
		var out []*v1beta1.Trigger
		for _, n := range ns.MatchNames {
			ts, err := triggers.Triggers(n).List(selector)
			if err != nil {
				return nil, err
			}
			out = append(out, ts...)
		}
		return out, nil
	case ls != nil:
		return triggers.Triggers(namespace).List(selector)
	}
	return nil, nil
}

func unmarshalParam(p v1beta1.InterceptorParams, into any) error {
	return json.Unmarshal(p.Value.Raw, into)
}
