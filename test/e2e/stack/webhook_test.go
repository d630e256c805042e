//go:build e2e

package stack

import (
	"context"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/pipelines-service/pipelines-service/test/e2e/framework"
)

// TestWorkspaceWebhooksStillCalled guards kcp's patch that skips building
// the webhook admission plugin where no webhook is configured
// (third_party/kcp/patches): a workspace that configures a validating
// webhook still has it called (here it cannot be reached and fails
// closed, so the write is refused), while another workspace, and the
// same one once the configuration is deleted, write freely.
func TestWorkspaceWebhooksStillCalled(t *testing.T) {
	ctx := context.Background()
	guarded := env.NewTenant(ctx, t, "e2e-webhook")
	other := env.NewTenant(ctx, t, "e2e-nowebhook")
	hooks := guarded.Kube.AdmissionregistrationV1().ValidatingWebhookConfigurations()
	_, err := hooks.Create(ctx, &admissionv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "e2e-deny-configmaps"},
		Webhooks: []admissionv1.ValidatingWebhook{{
			Name:                    "deny.e2e.pipelines-service.dev",
			ClientConfig:            admissionv1.WebhookClientConfig{URL: ptr.To("https://127.0.0.1:1/deny")},
			Rules:                   []admissionv1.RuleWithOperations{{Operations: []admissionv1.OperationType{admissionv1.Create}, Rule: admissionv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"configmaps"}}}},
			FailurePolicy:           ptr.To(admissionv1.Fail),
			SideEffects:             ptr.To(admissionv1.SideEffectClassNone),
			AdmissionReviewVersions: []string{"v1"},
			TimeoutSeconds:          ptr.To[int32](2),
		}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	configMap := func(name string) *corev1.ConfigMap {
		return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}}
	}
	n := 0
	framework.Eventually(t, time.Minute, "a ConfigMap refused by the workspace's webhook", func() (bool, string, error) {
		n++
		_, err := guarded.Kube.CoreV1().ConfigMaps("default").Create(ctx, configMap("guarded-"+strings.ReplaceAll(time.Now().Format("150405.000000"), ".", "-")), metav1.CreateOptions{})
		if err == nil {
			return false, "created: the webhook was not called (yet)", nil
		}
		return strings.Contains(err.Error(), "deny.e2e.pipelines-service.dev"), err.Error(), nil
	})
	t.Logf("the webhook refused a write after %d attempts", n)
	if _, err := other.Kube.CoreV1().ConfigMaps("default").Create(ctx, configMap("free"), metav1.CreateOptions{}); err != nil {
		t.Errorf("a workspace without webhooks could not write: %v", err)
	}
	if err := hooks.Delete(ctx, "e2e-deny-configmaps", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, time.Minute, "a ConfigMap created once the webhook is gone", func() (bool, string, error) {
		_, err := guarded.Kube.CoreV1().ConfigMaps("default").Create(ctx, configMap("after-"+strings.ReplaceAll(time.Now().Format("150405.000000"), ".", "-")), metav1.CreateOptions{})
		if err != nil {
			return false, err.Error(), nil
		}
		return true, "", nil
	})
}
