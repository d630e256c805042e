package triggers

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/tektoncd/triggers/pkg/apis/triggers/v1beta1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func param(name string, value any) v1beta1.InterceptorParams {
	raw, _ := json.Marshal(value)
	return v1beta1.InterceptorParams{Name: name, Value: apiextensionsv1.JSON{Raw: raw}}
}

func ref(name string, params ...v1beta1.InterceptorParams) *v1beta1.TriggerInterceptor {
	return &v1beta1.TriggerInterceptor{Ref: v1beta1.InterceptorRef{Name: name}, Params: params}
}

var secretRef = param("secretRef", map[string]string{"secretName": "s", "secretKey": "k"})

func TestUnsigned(t *testing.T) {
	for _, tc := range []struct {
		name  string
		chain []*v1beta1.TriggerInterceptor
		want  string
	}{
		{"no interceptors", nil, ""},
		{"github signed", []*v1beta1.TriggerInterceptor{ref("github", secretRef, param("eventTypes", []string{"push"}))}, ""},
		{"github without secretRef", []*v1beta1.TriggerInterceptor{ref("github", param("eventTypes", []string{"push"}))}, "interceptors[0] (github) has no secretRef"},
		{"gitlab with an empty secretRef", []*v1beta1.TriggerInterceptor{ref("gitlab", param("secretRef", map[string]string{"secretName": "s"}))}, "interceptors[0] (gitlab)"},
		{"bitbucket after cel", []*v1beta1.TriggerInterceptor{ref("cel"), ref("bitbucket")}, "interceptors[1] (bitbucket)"},
		{"cel and slack verify nothing and are not refused", []*v1beta1.TriggerInterceptor{ref("cel"), ref("slack")}, ""},
		{"a tenant's namespaced interceptor named github", []*v1beta1.TriggerInterceptor{{Ref: v1beta1.InterceptorRef{Name: "github", Kind: v1beta1.NamespacedInterceptorKind}}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Unsigned(tc.chain)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("Unsigned: %v, want nil", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("Unsigned: %v, want %q", err, tc.want)
			}
		})
	}
}

func TestVerifier(t *testing.T) {
	webhook := &v1beta1.TriggerInterceptor{Webhook: &v1beta1.WebhookInterceptor{}}
	for _, tc := range []struct {
		name  string
		chain []*v1beta1.TriggerInterceptor
		want  string
	}{
		{"github first", []*v1beta1.TriggerInterceptor{ref("github", secretRef), ref("cel")}, "github"},
		{"after cel", []*v1beta1.TriggerInterceptor{ref("cel"), ref("gitlab", secretRef)}, "gitlab"},
		{"after a webhook, which may rewrite the payload", []*v1beta1.TriggerInterceptor{webhook, ref("github", secretRef)}, ""},
		{"cel only", []*v1beta1.TriggerInterceptor{ref("cel")}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ""
			if v := (Unit{Interceptors: tc.chain}).Verifier(); v != nil {
				got = v.Ref.Name
			}
			if got != tc.want {
				t.Errorf("Verifier: %q, want %q", got, tc.want)
			}
		})
	}
}

func TestServiceAccountOf(t *testing.T) {
	el := &v1beta1.EventListener{}
	if got := ServiceAccountOf(el); got != "default" {
		t.Errorf("no serviceAccountName: %q, want default", got)
	}
	el.Spec.ServiceAccountName = "listener"
	if got := ServiceAccountOf(el); got != "listener" {
		t.Errorf("serviceAccountName: %q, want listener", got)
	}
	el.Spec.Resources.KubernetesResource = &v1beta1.KubernetesResource{}
	el.Spec.Resources.KubernetesResource.Template.Spec.ServiceAccountName = "pod-sa"
	if got := ServiceAccountOf(el); got != "pod-sa" {
		t.Errorf("pod template's serviceAccountName: %q, want pod-sa (upstream's sink pod runs with it)", got)
	}
}

func TestTokenOf(t *testing.T) {
	filled := func(mutate func(*corev1.Secret)) *corev1.Secret {
		s := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: TokenSecretName("sa"), Annotations: map[string]string{corev1.ServiceAccountNameKey: "sa", corev1.ServiceAccountUIDKey: "uid"}},
			Type:       corev1.SecretTypeServiceAccountToken,
			Data:       map[string][]byte{corev1.ServiceAccountTokenKey: []byte("token")},
		}
		if mutate != nil {
			mutate(s)
		}
		return s
	}
	if tok, err := TokenOf(filled(nil), "sa"); err != nil || tok != "token" {
		t.Errorf("issued token: %q %v", tok, err)
	}
	for name, s := range map[string]*corev1.Secret{
		"opaque secret a tenant wrote":    filled(func(s *corev1.Secret) { s.Type = corev1.SecretTypeOpaque }),
		"token of another ServiceAccount": filled(func(s *corev1.Secret) { s.Annotations[corev1.ServiceAccountNameKey] = "admin" }),
		"not issued yet":                  filled(func(s *corev1.Secret) { delete(s.Data, corev1.ServiceAccountTokenKey) }),
	} {
		if _, err := TokenOf(s, "sa"); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if long := TokenSecretName(strings.Repeat("a", 300)); len(long) > 253 {
		t.Errorf("TokenSecretName of a long name is %d characters", len(long))
	}
}
