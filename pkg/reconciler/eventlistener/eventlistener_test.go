package eventlistener

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/kcp-dev/logicalcluster/v3"
	"github.com/tektoncd/triggers/pkg/apis/triggers/v1beta1"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"
	"knative.dev/pkg/apis"

	"github.com/pipelines-service/pipelines-service/pkg/triggers"
)

type workspaces struct{ kube kubernetes.Interface }

func (w workspaces) Kube(logicalcluster.Name) (kubernetes.Interface, error) { return w.kube, nil }

func githubTrigger(withSecret bool) v1beta1.EventListenerTrigger {
	var params []v1beta1.InterceptorParams
	if withSecret {
		raw, _ := json.Marshal(map[string]string{"secretName": "s", "secretKey": "k"})
		params = append(params, v1beta1.InterceptorParams{Name: "secretRef", Value: apiextensionsv1.JSON{Raw: raw}})
	}
	return v1beta1.EventListenerTrigger{Name: "pr", Template: &v1beta1.EventListenerTemplate{Ref: ptr.To("tt")},
		Interceptors: []*v1beta1.TriggerInterceptor{{Ref: v1beta1.InterceptorRef{Name: "github", Kind: v1beta1.ClusterInterceptorKind}, Params: params}}}
}

func serviceAccount(name string) *corev1.ServiceAccount {
	return &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}}
}

func issuedToken(sa string) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: triggers.TokenSecretName(sa), Namespace: "default",
			Annotations: map[string]string{corev1.ServiceAccountNameKey: sa, corev1.ServiceAccountUIDKey: "uid"}},
		Type: corev1.SecretTypeServiceAccountToken, Data: map[string][]byte{corev1.ServiceAccountTokenKey: []byte("t")},
	}
}

// TestCheck drives the reconcile's core, from a listener and what its
// workspace holds to its Ready condition and the identity it mints.
func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		name       string
		url        string
		triggers   []v1beta1.EventListenerTrigger
		objects    []runtime.Object
		wantStatus corev1.ConditionStatus
		wantReason string
		wantSecret bool
		wantWait   bool
	}{
		{name: "ready", url: "https://gw/hooks", triggers: []v1beta1.EventListenerTrigger{githubTrigger(true)},
			objects: []runtime.Object{serviceAccount("listener"), issuedToken("listener")}, wantStatus: "True", wantReason: ReasonReady, wantSecret: true},
		{name: "first reconcile: the token Secret is made, kcp fills it", url: "https://gw/hooks", triggers: []v1beta1.EventListenerTrigger{githubTrigger(true)},
			objects: []runtime.Object{serviceAccount("listener")}, wantStatus: "False", wantReason: ReasonIdentityPending, wantSecret: true, wantWait: true},
		{name: "no ServiceAccount", url: "https://gw/hooks", triggers: []v1beta1.EventListenerTrigger{githubTrigger(true)},
			wantStatus: "False", wantReason: ReasonServiceAccountGone, wantWait: true},
		{name: "a GitHub interceptor without secretRef", url: "https://gw/hooks", triggers: []v1beta1.EventListenerTrigger{githubTrigger(false)},
			objects: []runtime.Object{serviceAccount("listener")}, wantStatus: "False", wantReason: ReasonUnsigned},
		{name: "no sink on the platform", triggers: []v1beta1.EventListenerTrigger{githubTrigger(true)},
			objects: []runtime.Object{serviceAccount("listener")}, wantStatus: "False", wantReason: ReasonNoSink},
		{name: "invalid: a trigger with neither template nor ref", url: "https://gw/hooks", triggers: []v1beta1.EventListenerTrigger{{Name: "x"}},
			objects: []runtime.Object{serviceAccount("listener")}, wantStatus: "False", wantReason: ReasonInvalid},
		{name: "the tenant's own Secret in the token's place is not a token", url: "https://gw/hooks", triggers: []v1beta1.EventListenerTrigger{githubTrigger(true)},
			objects: []runtime.Object{serviceAccount("listener"), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: triggers.TokenSecretName("listener"), Namespace: "default"},
				Data: map[string][]byte{"token": []byte("borrowed")}}},
			wantStatus: "False", wantReason: ReasonIdentityPending, wantSecret: true, wantWait: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			kube := fake.NewSimpleClientset(tc.objects...)
			c := &Controller{log: zap.NewNop().Sugar(), workspaces: workspaces{kube}, url: tc.url, listers: triggers.ClusterListers{}}
			el := &v1beta1.EventListener{ObjectMeta: metav1.ObjectMeta{Name: "l", Namespace: "default", UID: "el-uid"},
				Spec: v1beta1.EventListenerSpec{ServiceAccountName: "listener", Triggers: tc.triggers}}
			cond, wait := c.check(ctx, "ws", el)
			if cond.Status != tc.wantStatus || cond.Reason != tc.wantReason {
				t.Errorf("Ready %s %s (%s), want %s %s", cond.Status, cond.Reason, cond.Message, tc.wantStatus, tc.wantReason)
			}
			if (wait > 0) != tc.wantWait {
				t.Errorf("looked at again after %s, want again: %v", wait, tc.wantWait)
			}
			secret, err := kube.CoreV1().Secrets("default").Get(ctx, triggers.TokenSecretName("listener"), metav1.GetOptions{})
			if (err == nil) != tc.wantSecret {
				t.Fatalf("token Secret: %v, want one: %v", err, tc.wantSecret)
			}
			if tc.wantSecret && tc.name == "first reconcile: the token Secret is made, kcp fills it" {
				if secret.Type != corev1.SecretTypeServiceAccountToken || secret.Annotations[corev1.ServiceAccountNameKey] != "listener" ||
					len(secret.OwnerReferences) != 1 || secret.OwnerReferences[0].UID != "el-uid" {
					t.Errorf("minted Secret %+v: want a token request for listener owned by the EventListener", secret)
				}
			}
		})
	}
}

func TestDesiredStatus(t *testing.T) {
	el := &v1beta1.EventListener{ObjectMeta: metav1.ObjectMeta{Name: "l", Namespace: "ns", Generation: 3}}
	el.Spec.Resources.KubernetesResource = &v1beta1.KubernetesResource{Replicas: ptr.To[int32](3)}
	ready := apis.Condition{Type: apis.ConditionReady, Status: "True", Reason: ReasonReady}
	got := desiredStatus("https://gw:8443/hooks", "abc", el, ready)
	if got.Address == nil || got.Address.URL.String() != "https://gw:8443/hooks/abc/ns/l" {
		t.Errorf("address %v, want https://gw:8443/hooks/abc/ns/l", got.Address)
	}
	if c := got.GetCondition(ConditionResourcesApplied); c == nil || c.Status != "False" || c.Severity != apis.ConditionSeverityWarning {
		t.Errorf("kubernetesResource: condition %+v, want ResourcesApplied=False (warning)", c)
	}
	el.Status = got
	again := desiredStatus("https://gw:8443/hooks", "abc", el, ready)
	if again.GetCondition(apis.ConditionReady).LastTransitionTime != got.GetCondition(apis.ConditionReady).LastTransitionTime {
		t.Error("an unchanged condition got a new transition time: every reconcile would write")
	}
	if noSink := desiredStatus("", "abc", el, ready); noSink.Address != nil {
		t.Errorf("no sink: address %v, want none", noSink.Address)
	}
}
