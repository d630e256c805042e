// Package podsecurity holds the platform's Pod Security rules for tenant
// pods: the level a tenant's pods run at, the labels that make a workload
// cluster's apiserver enforce it on the tenant's workload namespace, and
// the controller's own evaluation of a pod before it is created.
//
// Both sides use the same rules: the controller evaluates with the
// library the apiserver's PodSecurity admission is built on
// (k8s.io/pod-security-admission/policy), at the version it pins on the
// namespace labels. A violation therefore fails the TaskRun with the
// offending fields before any pod exists, and the apiserver is the
// backstop for whatever bypasses the controller.
package podsecurity

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	psaapi "k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
)

// ReasonPodSecurityViolation is the reason of a TaskRun whose pod breaks
// its workspace's Pod Security level.
const ReasonPodSecurityViolation = "PodSecurityViolation"

// DefaultLevel is the level of a tenant whose TenantPolicy sets none.
const DefaultLevel = psaapi.LevelBaseline

// rulesVersion is the rules' version: that of the library compiled in,
// pinned on the namespaces so that a newer apiserver enforces the same
// rules.
func rulesVersion() psaapi.Version { return psaapi.MajorMinorVersion(1, 32) }

// ParseLevel reads a TenantPolicy's podSecurity; "" is DefaultLevel.
func ParseLevel(s string) (psaapi.Level, error) {
	if s == "" {
		return DefaultLevel, nil
	}
	level, err := psaapi.ParseLevel(s)
	if err != nil {
		return "", fmt.Errorf("pod security level %q: must be privileged, baseline or restricted", s)
	}
	return level, nil
}

// NamespaceLabels are the Pod Security labels of a workload namespace
// whose pods run at level: enforced at level, and warned and audited at
// restricted (what a workload cluster's operator wants to see).
func NamespaceLabels(level psaapi.Level) map[string]string {
	v := rulesVersion().String()
	return map[string]string{
		psaapi.EnforceLevelLabel:   string(level),
		psaapi.EnforceVersionLabel: v,
		psaapi.WarnLevelLabel:      string(psaapi.LevelRestricted),
		psaapi.WarnVersionLabel:    v,
		psaapi.AuditLevelLabel:     string(psaapi.LevelRestricted),
		psaapi.AuditVersionLabel:   v,
	}
}

// Violation is a pod that breaks a level; it names every offending field.
type Violation struct {
	Level psaapi.Level
	// Forbidden holds one entry per failed check: the check's reason and
	// its detail, which names the container and field, e.g.
	// `privileged (container "step-root" must not set securityContext.privileged=true)`.
	Forbidden []string
}

func (v *Violation) Error() string {
	return fmt.Sprintf("the pod breaks the workspace's Pod Security level %q: %s", v.Level, strings.Join(v.Forbidden, "; "))
}

// Checker evaluates pods against a level.
type Checker struct {
	evaluator policy.Evaluator
}

// NewChecker builds a Checker on the library's default checks.
func NewChecker() (*Checker, error) {
	evaluator, err := policy.NewEvaluator(policy.DefaultChecks())
	if err != nil {
		return nil, err
	}
	return &Checker{evaluator: evaluator}, nil
}

// Check returns a *Violation when pod breaks level, nil when it does not.
func (c *Checker) Check(level psaapi.Level, meta *metav1.ObjectMeta, spec *corev1.PodSpec) error {
	results := c.evaluator.EvaluatePod(psaapi.LevelVersion{Level: level, Version: rulesVersion()}, meta, spec)
	var forbidden []string
	for _, r := range results {
		if r.Allowed {
			continue
		}
		entry := r.ForbiddenReason
		if r.ForbiddenDetail != "" {
			entry += " (" + r.ForbiddenDetail + ")"
		}
		forbidden = append(forbidden, entry)
	}
	if len(forbidden) == 0 {
		return nil
	}
	return &Violation{Level: level, Forbidden: forbidden}
}
