package podsecurity

import (
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	psaapi "k8s.io/pod-security-admission/api"
	"k8s.io/utils/ptr"
)

// stepPod is a pod with one step container, changed by edit.
func stepPod(edit func(*corev1.PodSpec)) *corev1.PodSpec {
	spec := &corev1.PodSpec{Containers: []corev1.Container{{Name: "step-build", Image: "busybox"}}}
	if edit != nil {
		edit(spec)
	}
	return spec
}

func TestCheckNamesEveryOffendingField(t *testing.T) {
	checker, err := NewChecker()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		level psaapi.Level
		spec  *corev1.PodSpec
		// want are substrings of the violation; none means allowed.
		want []string
	}{
		{name: "a plain step passes baseline", level: psaapi.LevelBaseline, spec: stepPod(nil)},
		{name: "privileged step", level: psaapi.LevelBaseline, spec: stepPod(func(s *corev1.PodSpec) {
			s.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: ptr.To(true)}
		}), want: []string{`container "step-build" must not set securityContext.privileged=true`}},
		{name: "privileged sidecar", level: psaapi.LevelBaseline, spec: stepPod(func(s *corev1.PodSpec) {
			s.Containers = append(s.Containers, corev1.Container{Name: "sidecar-dind", SecurityContext: &corev1.SecurityContext{Privileged: ptr.To(true)}})
		}), want: []string{`container "sidecar-dind" must not set securityContext.privileged=true`}},
		{name: "hostPath volume", level: psaapi.LevelBaseline, spec: stepPod(func(s *corev1.PodSpec) {
			s.Volumes = []corev1.Volume{{Name: "root", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/"}}}}
		}), want: []string{"hostPath volumes", `"root"`}},
		{name: "host namespaces", level: psaapi.LevelBaseline, spec: stepPod(func(s *corev1.PodSpec) {
			s.HostNetwork, s.HostPID, s.HostIPC = true, true, true
		}), want: []string{"hostNetwork=true", "hostPID=true", "hostIPC=true"}},
		{name: "capabilities beyond baseline", level: psaapi.LevelBaseline, spec: stepPod(func(s *corev1.PodSpec) {
			s.Containers[0].SecurityContext = &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"SYS_ADMIN", "NET_ADMIN"}}}
		}), want: []string{"non-default capabilities", `"NET_ADMIN"`, `"SYS_ADMIN"`, "securityContext.capabilities.add"}},
		{name: "host port of a sidecar", level: psaapi.LevelBaseline, spec: stepPod(func(s *corev1.PodSpec) {
			s.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 80, HostPort: 80}}
		}), want: []string{"hostPort"}},
		{name: "baseline capabilities pass", level: psaapi.LevelBaseline, spec: stepPod(func(s *corev1.PodSpec) {
			s.Containers[0].SecurityContext = &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"CHOWN"}}}
		})},
		{name: "privileged level allows everything", level: psaapi.LevelPrivileged, spec: stepPod(func(s *corev1.PodSpec) {
			s.HostNetwork = true
			s.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: ptr.To(true)}
		})},
		{name: "restricted wants a non-root, locked-down step", level: psaapi.LevelRestricted, spec: stepPod(nil),
			want: []string{"allowPrivilegeEscalation", "runAsNonRoot", "seccompProfile", "capabilities.drop"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checker.Check(tc.level, &metav1.ObjectMeta{Name: "p"}, tc.spec)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var v *Violation
			if !errors.As(err, &v) || v.Level != tc.level {
				t.Fatalf("got %v, want a violation of %s", err, tc.level)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q does not name %q", err, w)
				}
			}
		})
	}
}

func TestParseLevel(t *testing.T) {
	for in, want := range map[string]psaapi.Level{"": psaapi.LevelBaseline, "baseline": psaapi.LevelBaseline, "restricted": psaapi.LevelRestricted, "privileged": psaapi.LevelPrivileged} {
		if got, err := ParseLevel(in); err != nil || got != want {
			t.Errorf("ParseLevel(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParseLevel("root"); err == nil {
		t.Error("ParseLevel(root) did not fail")
	}
}

func TestNamespaceLabelsEnforceTheLevelAtTheCheckersVersion(t *testing.T) {
	got := NamespaceLabels(psaapi.LevelBaseline)
	want := map[string]string{
		"pod-security.kubernetes.io/enforce": "baseline", "pod-security.kubernetes.io/enforce-version": "v1.32",
		"pod-security.kubernetes.io/warn": "restricted", "pod-security.kubernetes.io/warn-version": "v1.32",
		"pod-security.kubernetes.io/audit": "restricted", "pod-security.kubernetes.io/audit-version": "v1.32",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
}
