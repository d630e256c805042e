package eventlistener

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/kcp-dev/logicalcluster/v3"
	"github.com/tektoncd/triggers/pkg/apis/triggers/contexts"
	"github.com/tektoncd/triggers/pkg/apis/triggers/v1beta1"
	"k8s.io/apimachinery/pkg/api/equality"
	"knative.dev/pkg/apis"

	"github.com/pipelines-service/pipelines-service/pkg/reconciler"
	"github.com/pipelines-service/pipelines-service/pkg/triggers"
)

// Reasons of a listener's Ready condition when it is False.
const (
	ReasonInvalid             = "InvalidEventListener"
	ReasonUnsigned            = "UnsignedInterceptor"
	ReasonNoSink              = "NoSink"
	ReasonServiceAccountGone  = "ServiceAccountNotFound"
	ReasonIdentityPending     = "IdentityPending"
	ReasonReady               = "Ready"
	ConditionResourcesApplied = apis.ConditionType("ResourcesApplied")
)

// identityRecheck is how soon a listener whose token kcp has not issued
// yet, or whose ServiceAccount does not exist yet, is looked at again.
const identityRecheck = 2 * time.Second

// kind is the EventListener's part of the reconcile skeleton
// (reconciler.Skeleton).
type kind struct{ c *Controller }

func (kind) New() *v1beta1.EventListener                      { return &v1beta1.EventListener{} }
func (kind) Status(el *v1beta1.EventListener) any             { return &el.Status }
func (kind) Succeeded(*v1beta1.EventListener) *apis.Condition { return nil }

// Gone: the sink forgets its route, kcp collects its token Secrets.
func (kind) Gone(context.Context, string) error { return nil }

// FinalizeKind: nothing of a listener's own is outside its workspace.
func (kind) FinalizeKind(context.Context, *reconciler.Object, *v1beta1.EventListener) error {
	return nil
}

// Undecodable: the listener is not Ready, and says why.
func (k kind) Undecodable(ctx context.Context, o *reconciler.Object, err error) error {
	el := &v1beta1.EventListener{}
	_ = reconciler.Decode(o.Unstructured, el) // what of it decodes: its current status
	want := desiredStatus(k.c.url, o.Cluster, el, notReady(ReasonInvalid, err.Error()))
	if equality.Semantic.DeepEqual(el.Status, want) {
		return nil
	}
	return k.c.objects.UpdateStatus(ctx, o.Cluster, o.Unstructured, &want)
}

// ReconcileKind checks the listener (validation, signed interceptors, the
// sink, its identity) and sets its address and Ready condition.
func (k kind) ReconcileKind(ctx context.Context, o *reconciler.Object, el *v1beta1.EventListener) (time.Duration, error) {
	el.SetDefaults(contexts.WithUpgradeViaDefaulting(ctx))
	ready, requeue := k.c.check(ctx, o.Cluster, el)
	if requeue > 0 {
		o.Log.Debugw("listener's identity not ready yet", "reason", ready.Reason, "message", ready.Message)
	}
	el.Status = desiredStatus(k.c.url, o.Cluster, el, ready)
	return requeue, nil
}

// check is the listener's Ready condition, and when to check again.
func (c *Controller) check(ctx context.Context, cluster logicalcluster.Name, el *v1beta1.EventListener) (apis.Condition, time.Duration) {
	if ferr := el.Validate(ctx); ferr != nil {
		return notReady(ReasonInvalid, ferr.Error()), 0
	}
	ws := c.listers.Workspace(cluster, false)
	if msg := unsigned(el, ws); msg != "" {
		return notReady(ReasonUnsigned, msg), 0
	}
	if c.url == "" {
		return notReady(ReasonNoSink, "no triggers sink serves this platform"), 0
	}
	ids, err := triggers.Identities(el, ws.Triggers())
	if err != nil {
		return notReady(ReasonInvalid, err.Error()), 0
	}
	kube, err := c.workspaces.Kube(cluster)
	if err != nil {
		return notReady(ReasonIdentityPending, err.Error()), identityRecheck
	}
	for _, id := range ids {
		if cond, wait := mintIdentity(ctx, kube, el, id); cond != nil {
			return *cond, wait
		}
	}
	return apis.Condition{Type: apis.ConditionReady, Status: "True", Reason: ReasonReady,
		Message: "the listener accepts events at its address"}, 0
}

// unsigned names every chain of the listener whose forge interceptor has
// no secretRef: the sink never runs those (upstream lets them accept any
// payload).
func unsigned(el *v1beta1.EventListener, ws *triggers.Workspace) string {
	var out []string
	for i, t := range el.Spec.Triggers {
		if err := triggers.Unsigned(t.Interceptors); err != nil {
			out = append(out, fmt.Sprintf("spec.triggers[%d] (%s): %v", i, t.Name, err))
		}
	}
	for i, g := range el.Spec.TriggerGroups {
		if err := triggers.Unsigned(g.Interceptors); err != nil {
			out = append(out, fmt.Sprintf("spec.triggerGroups[%d] (%s): %v", i, g.Name, err))
		}
	}
	if ts, err := triggers.ListenerTriggers(el, ws.Triggers()); err == nil {
		for _, t := range ts {
			if t.UID == "" {
				continue // inline, reported above
			}
			if err := triggers.Unsigned(t.Spec.Interceptors); err != nil {
				out = append(out, fmt.Sprintf("Trigger %s/%s: %v", t.Namespace, t.Name, err))
			}
		}
	}
	if len(out) == 0 {
		return ""
	}
	return strings.Join(out, "; ") + "; these triggers do not run until they verify the forge's signature (secretRef)"
}

func notReady(reason, message string) apis.Condition {
	return apis.Condition{Type: apis.ConditionReady, Status: "False", Reason: reason, Message: message}
}
