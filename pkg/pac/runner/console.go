package runner

import (
	"context"
	"fmt"

	"github.com/kcp-dev/logicalcluster/v3"
	"github.com/openshift-pipelines/pipelines-as-code/pkg/kubeinteraction"
	tektonv1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	"k8s.io/client-go/dynamic"
)

// console links runs to the front door: the run's URL in its workspace,
// which kubectl, tkn and the gateway's log view answer for the tenant.
type console struct {
	base      string
	workspace logicalcluster.Name
}

func (c *console) workspaceURL() string { return c.base + "/clusters/" + c.workspace.String() }

func (c *console) DetailURL(pr *tektonv1.PipelineRun) string {
	return fmt.Sprintf("%s/apis/tekton.dev/v1/namespaces/%s/pipelineruns/%s", c.workspaceURL(), pr.GetNamespace(), pr.GetName())
}

func (c *console) TaskLogURL(pr *tektonv1.PipelineRun, tr *tektonv1.PipelineRunTaskRunStatus) string {
	if tr == nil || tr.Status == nil || tr.Status.PodName == "" {
		return c.DetailURL(pr)
	}
	return fmt.Sprintf("%s/api/v1/namespaces/%s/pods/%s/log", c.workspaceURL(), pr.GetNamespace(), tr.Status.PodName)
}

func (c *console) NamespaceURL(pr *tektonv1.PipelineRun) string {
	return fmt.Sprintf("%s/apis/tekton.dev/v1/namespaces/%s/pipelineruns", c.workspaceURL(), pr.GetNamespace())
}

func (c *console) UI(context.Context, dynamic.Interface) error { return nil }
func (c *console) URL() string                                 { return c.base }
func (c *console) GetName() string                             { return "pipelines-service" }
func (c *console) SetParams(map[string]string)                 {}

// PodLogs reads the last lines of a step's log, the pod named as a
// TaskRun's status.podName in a tenant namespace, from the workload
// cluster the TaskRun ran on.
type PodLogs interface {
	TailLogs(ctx context.Context, workspace logicalcluster.Name, namespace, pod, container string, lines int64) (string, error)
}

// workspaceInteraction is PaC's Kubernetes interaction on one workspace,
// except for pod logs: pods are on the workload clusters, not in kcp.
type workspaceInteraction struct {
	*kubeinteraction.Interaction
	cluster logicalcluster.Name
	logs    PodLogs
}

func (w *workspaceInteraction) GetPodLogs(ctx context.Context, ns, pod, container string, lines int64) (string, error) {
	if w.logs == nil {
		return "", fmt.Errorf("pod logs are not served")
	}
	return w.logs.TailLogs(ctx, w.cluster, ns, pod, container, lines)
}
