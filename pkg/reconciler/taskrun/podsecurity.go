package taskrun

import (
	"context"

	"github.com/tektoncd/pipeline/pkg/apis/config"
	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	corev1 "k8s.io/api/core/v1"
	psaapi "k8s.io/pod-security-admission/api"

	"github.com/pipelines-service/pipelines-service/pkg/podsecurity"
)

// ReasonInvalidPodSecurityLevel fails a run whose workspace's TenantPolicy
// names no Pod Security level the service knows.
const ReasonInvalidPodSecurityLevel = "InvalidPodSecurityLevel"

// withTektonSecurityContext is ctx whose Tekton configuration has Tekton
// give its own containers (init containers, the sidecar-logs results
// container) a restricted security context where the level is restricted:
// without it, no pod of such a workspace could pass. Other levels keep the
// workspace's flag. The tenant's cached configuration is not changed.
func withTektonSecurityContext(ctx context.Context, level psaapi.Level) context.Context {
	if level != psaapi.LevelRestricted {
		return ctx
	}
	cfg := *config.FromContextOrDefaults(ctx)
	cfg.FeatureFlags = cfg.FeatureFlags.DeepCopy()
	cfg.FeatureFlags.SetSecurityContext = true
	return config.ToContext(ctx, &cfg)
}

// checkPodSecurity fails tr, and returns false, when pod breaks the
// workspace's level: the run ends at once with the offending fields named,
// and no pod is created for the workload apiserver to refuse.
func (c *Controller) checkPodSecurity(level psaapi.Level, tr *v1.TaskRun, pod *corev1.Pod) bool {
	if err := c.podSecurity.Check(level, &pod.ObjectMeta, &pod.Spec); err != nil {
		tr.Status.MarkResourceFailed(podsecurity.ReasonPodSecurityViolation, err)
		return false
	}
	return true
}
