package recorder

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func run(namespace string, labels map[string]string, reason string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"status": map[string]any{"conditions": []any{map[string]any{"type": "Succeeded", "reason": reason}}},
	}}
	u.SetNamespace(namespace)
	u.SetLabels(labels)
	return u
}

func TestRetention(t *testing.T) {
	platform := map[string]string{"runAt": "0 * * * *", "defaultRetention": "7d"}
	tenant := &corev1.ConfigMap{Data: map[string]string{"defaultRetention": "2h", "policies": `
- name: failed-kept
  selector:
    matchStatuses: [Failed]
  retention: 30d
- name: ci
  selector:
    matchNamespaces: [ci]
    matchLabels:
      tekton.dev/pipeline: [build, test]
  retention: "0"
`}}
	onlyPlatform, err := retention(platform, nil)
	if err != nil {
		t.Fatal(err)
	}
	if onlyPlatform.RunAt != "0 * * * *" || onlyPlatform.DefaultRetention != 7*24*time.Hour {
		t.Errorf("platform policy = %+v", onlyPlatform)
	}
	upstreamDefaults, err := retention(nil, nil)
	if err != nil || upstreamDefaults.DefaultRetention != 30*24*time.Hour || upstreamDefaults.RunAt != "7 7 * * 7" {
		t.Errorf("no configuration: %+v, %v; want upstream's defaults", upstreamDefaults, err)
	}
	policy, err := retention(platform, tenant)
	if err != nil {
		t.Fatal(err)
	}
	if policy.RunAt != "0 * * * *" {
		t.Errorf("runAt %q: the tenant did not set it, the platform's applies", policy.RunAt)
	}
	cases := []struct {
		name string
		run  *unstructured.Unstructured
		want time.Duration
	}{
		{"default of the tenant", run("default", nil, "Succeeded"), 2 * time.Hour},
		{"failed, first policy", run("ci", map[string]string{"tekton.dev/pipeline": "build"}, "Failed"), 30 * 24 * time.Hour},
		{"ci namespace and label", run("ci", map[string]string{"tekton.dev/pipeline": "test"}, "Succeeded"), 0},
		{"ci namespace, other label value", run("ci", map[string]string{"tekton.dev/pipeline": "deploy"}, "Succeeded"), 2 * time.Hour},
		{"label in another namespace", run("default", map[string]string{"tekton.dev/pipeline": "build"}, "Succeeded"), 2 * time.Hour},
	}
	for _, tc := range cases {
		got, err := retentionOf(policy, tc.run)
		if err != nil || got != tc.want {
			t.Errorf("%s: retention %v, %v; want %v", tc.name, got, err, tc.want)
		}
	}
	if _, err := retention(nil, &corev1.ConfigMap{Data: map[string]string{"defaultRetention": "soon"}}); err == nil {
		t.Error("an unparsable defaultRetention was accepted")
	}
}

func TestDue(t *testing.T) {
	at := func(s string) time.Time { v, _ := time.Parse(time.RFC3339, s); return v }
	cases := []struct {
		schedule  string
		last, now time.Time
		want      bool
	}{
		{"* * * * *", at("2026-12-03T10:00:10Z"), at("2026-12-03T10:00:30Z"), false},
		{"* * * * *", at("2026-12-03T10:00:50Z"), at("2026-12-03T10:01:10Z"), true},
		{"7 7 * * 7", at("2026-12-03T10:00:00Z"), at("2026-12-03T10:00:20Z"), false},
		{"0 * * * *", at("2026-12-03T10:59:50Z"), at("2026-12-03T11:00:00Z"), true},
		{"7 7 * * 7", at("2026-12-06T07:06:50Z"), at("2026-12-06T07:07:10Z"), true}, // a Sunday
		{"7 7 * * 1-7", at("2026-12-06T07:06:50Z"), at("2026-12-06T07:07:10Z"), true},
	}
	for _, tc := range cases {
		got, err := due(tc.schedule, tc.last, tc.now)
		if err != nil || got != tc.want {
			t.Errorf("due(%q, %s, %s) = %v, %v; want %v", tc.schedule, tc.last, tc.now, got, err, tc.want)
		}
	}
	if _, err := due("every day", time.Now(), time.Now()); err == nil {
		t.Error("an invalid schedule was accepted")
	}
}
