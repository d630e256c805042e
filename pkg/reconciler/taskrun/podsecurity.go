package taskrun

import (
	"context"
	"fmt"
	"strings"

	"github.com/tektoncd/pipeline/pkg/apis/config"
	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	corev1 "k8s.io/api/core/v1"
	psaapi "k8s.io/pod-security-admission/api"
	"k8s.io/utils/ptr"

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

// ReasonUserNamespace fails a run whose pod cannot run in a user namespace
// on a workload cluster that gives every tenant pod one.
const ReasonUserNamespace = "UserNamespaceConflict"

// userNamespaces says whether the pod of a workspace at level gets a user
// namespace of its own on a member whose nodes support them (supported):
// root in a step is then an unprivileged user on the node, so what escapes
// a container owns nothing there. The privileged level keeps the node's
// users: that is what the platform granted such a workspace.
func userNamespaces(level psaapi.Level, supported bool) bool {
	return supported && level != psaapi.LevelPrivileged
}

// inUserNamespace sets hostUsers: false on pod. It fails tr, and returns
// false, when the pod uses what Kubernetes forbids in a user namespace
// (raw block devices, which cannot be idmapped): the run fails with the
// fields named instead of the workload apiserver refusing the pod, and a
// tenant cannot leave the user namespace by asking for a device.
func inUserNamespace(tr *v1.TaskRun, pod *corev1.Pod) bool {
	var fields []string
	for _, c := range append(append([]corev1.Container(nil), pod.Spec.InitContainers...), pod.Spec.Containers...) {
		if len(c.VolumeDevices) > 0 {
			fields = append(fields, fmt.Sprintf("container %q: volumeDevices", c.Name))
		}
	}
	if len(fields) > 0 {
		tr.Status.MarkResourceFailed(ReasonUserNamespace, fmt.Errorf("pods of this workspace run in user namespaces, which cannot use raw block devices: %s", strings.Join(fields, "; ")))
		return false
	}
	pod.Spec.HostUsers = ptr.To(false)
	return true
}
