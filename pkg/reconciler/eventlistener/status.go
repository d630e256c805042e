package eventlistener

import (
	"strings"

	"github.com/kcp-dev/logicalcluster/v3"
	"github.com/tektoncd/triggers/pkg/apis/triggers/v1beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"knative.dev/pkg/apis"
	duckv1 "knative.dev/pkg/apis/duck/v1"
	duckv1beta1 "knative.dev/pkg/apis/duck/v1beta1"
)

// desiredStatus is a listener's status: its address when a sink serves
// the platform, Ready, and whether upstream's resource options apply.
// Conditions keep their transition time while their status holds.
func desiredStatus(base string, cluster logicalcluster.Name, el *v1beta1.EventListener, ready apis.Condition) v1beta1.EventListenerStatus {
	want := v1beta1.EventListenerStatus{}
	want.ObservedGeneration = el.Generation
	if base != "" {
		url, err := apis.ParseURL(Address(base, cluster, el.Namespace, el.Name))
		if err == nil {
			want.Address = &duckv1beta1.Addressable{URL: url}
		}
	}
	conds := []apis.Condition{ready}
	if msg := notApplied(el.Spec.Resources); msg != "" {
		conds = append(conds, apis.Condition{Type: ConditionResourcesApplied, Status: "False", Severity: apis.ConditionSeverityWarning,
			Reason: "SharedSink", Message: msg})
	}
	for i := range conds {
		conds[i].LastTransitionTime = transitionTime(el.Status.Conditions, conds[i])
	}
	want.Conditions = conds
	return want
}

// Address is a listener's URL: the sink's path for it under base.
func Address(base string, cluster logicalcluster.Name, namespace, name string) string {
	return strings.TrimSuffix(base, "/") + "/" + cluster.String() + "/" + namespace + "/" + name
}

// notApplied says which of upstream's per-listener resource options do not
// apply: one shared sink serves every listener, so there is no pod,
// Deployment or Service of the listener's own to shape.
func notApplied(r v1beta1.Resources) string {
	var parts []string
	if r.KubernetesResource != nil {
		parts = append(parts, "resources.kubernetesResource (replicas, service type and port, the pod template but for its serviceAccountName, which is the listener's identity)")
	}
	if r.CustomResource != nil {
		parts = append(parts, "resources.customResource")
	}
	if len(parts) == 0 {
		return ""
	}
	return strings.Join(parts, " and ") + " do not apply: a shared, replicated sink serves every EventListener, with no pod or Service of its own"
}

func transitionTime(existing duckv1.Conditions, c apis.Condition) apis.VolatileTime {
	for _, e := range existing {
		if e.Type == c.Type && e.Status == c.Status {
			return e.LastTransitionTime
		}
	}
	return apis.VolatileTime{Inner: nowTime()}
}

// nowTime is when a condition changes.
func nowTime() metav1.Time { return metav1.Now() }
