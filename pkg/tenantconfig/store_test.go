package tenantconfig

import (
	"strings"
	"testing"

	"github.com/tektoncd/pipeline/pkg/apis/config"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func configMap(name string, data map[string]string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: Namespace}, Data: data}
}

func TestFromConfigMaps(t *testing.T) {
	cases := []struct {
		name     string
		flags    *corev1.ConfigMap
		defaults *corev1.ConfigMap
		wantErr  string
		check    func(*testing.T, *config.Config)
	}{
		{name: "nothing set: Tekton's defaults", check: func(t *testing.T, c *config.Config) {
			if c.FeatureFlags.EnableAPIFields != config.DefaultEnableAPIFields {
				t.Errorf("enable-api-fields %q", c.FeatureFlags.EnableAPIFields)
			}
		}},
		{name: "tenant flags apply", flags: configMap("feature-flags", map[string]string{
			"enable-api-fields": "alpha", "results-from": "sidecar-logs", "enable-param-enum": "true",
		}), check: func(t *testing.T, c *config.Config) {
			ff := c.FeatureFlags
			if ff.EnableAPIFields != "alpha" || ff.ResultExtractionMethod != "sidecar-logs" || !ff.EnableParamEnum {
				t.Errorf("tenant flags not applied: %+v", ff)
			}
		}},
		{name: "pinned flags win", flags: configMap("feature-flags", map[string]string{
			"disable-creds-init": "false", "coschedule": "workspaces", "keep-pod-on-cancel": "true",
			"enable-kubernetes-sidecar": "true", "trusted-resources-verification-no-match-policy": "fail",
			"running-in-environment-with-injected-sidecars": "true",
		}), check: func(t *testing.T, c *config.Config) {
			ff := c.FeatureFlags
			if !ff.DisableCredsInit || ff.Coschedule != config.CoscheduleDisabled || ff.EnableKeepPodOnCancel ||
				ff.EnableKubernetesSidecar || ff.VerificationNoMatchPolicy != config.IgnoreNoMatchPolicy ||
				ff.RunningInEnvWithInjectedSidecars {
				t.Errorf("a pinned flag follows the tenant: %+v", ff)
			}
		}},
		{name: "tenant defaults apply, managed-by stays ours", defaults: configMap("config-defaults", map[string]string{
			"default-timeout-minutes": "5", "default-managed-by-label-value": "someone-else",
		}), check: func(t *testing.T, c *config.Config) {
			if c.Defaults.DefaultTimeoutMinutes != 5 || c.Defaults.DefaultManagedByLabelValue != "pipelines-service" {
				t.Errorf("defaults %+v", c.Defaults)
			}
		}},
		{name: "invalid flag is an error naming the ConfigMap", flags: configMap("feature-flags", map[string]string{
			"enable-api-fields": "everything",
		}), wantErr: "tekton-pipelines/feature-flags"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := FromConfigMaps(tc.flags, tc.defaults, "pipelines-service")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want one naming %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, cfg)
		})
	}
}
