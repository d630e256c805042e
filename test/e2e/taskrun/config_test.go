//go:build e2e

package taskrun

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pipelines-service/pipelines-service/pkg/tenantconfig"
	"github.com/pipelines-service/pipelines-service/test/e2e/framework"
)

// TestTenantConfiguration: a tenant's invalid feature flags fail its new
// TaskRuns with a reason naming the ConfigMap, and touch no other tenant;
// once fixed, the tenant's runs succeed again.
func TestTenantConfiguration(t *testing.T) {
	ctx := context.Background()
	broken := env.NewTenant(ctx, t, "e2e-cfg-broken")
	other := env.NewTenant(ctx, t, "e2e-cfg-other")
	for _, tn := range []*framework.Tenant{broken, other} {
		if _, err := tn.Tekton.TektonV1().Tasks(ns).Create(ctx, greetTask(), metav1.CreateOptions{}); err != nil {
			t.Fatalf("create Task in %s: %v", tn.Name, err)
		}
	}
	broken.SetFeatureFlags(ctx, t, map[string]string{"enable-api-fields": "everything"})
	framework.Eventually(t, 3*time.Minute, "invalid configuration reported", func() (bool, string, error) {
		name := "probe-" + time.Now().Format("150405.000")
		name = strings.ReplaceAll(name, ".", "")
		create(ctx, t, broken, greetRun(name, broken.Name, "x", "y"))
		tr := broken.WaitTaskRunDone(ctx, t, ns, name, 2*time.Minute)
		status, reason := framework.Condition(tr)
		msg := tr.Status.GetCondition("Succeeded").Message
		// The controller may see the TaskRun before the ConfigMap: retry.
		return status == "False" && reason == tenantconfig.ReasonInvalidConfiguration && strings.Contains(msg, "tekton-pipelines/feature-flags"),
			status + "/" + reason + ": " + msg, nil
	})
	create(ctx, t, other, greetRun("unaffected", other.Name, "x", "y"))
	if status, reason := framework.Condition(other.WaitTaskRunDone(ctx, t, ns, "unaffected", 3*time.Minute)); status != "True" {
		t.Errorf("another tenant's TaskRun ended %s/%s, want True", status, reason)
	}
	broken.SetFeatureFlags(ctx, t, map[string]string{"enable-api-fields": "beta"})
	framework.Eventually(t, 3*time.Minute, "runs succeed after the fix", func() (bool, string, error) {
		name := "fixed-" + strings.ReplaceAll(time.Now().Format("150405.000"), ".", "")
		create(ctx, t, broken, greetRun(name, broken.Name, "x", "y"))
		status, reason := framework.Condition(broken.WaitTaskRunDone(ctx, t, ns, name, 2*time.Minute))
		return status == "True", status + "/" + reason, nil
	})
}
