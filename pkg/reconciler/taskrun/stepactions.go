package taskrun

import (
	"context"

	"github.com/kcp-dev/logicalcluster/v3"
	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	tektonclient "github.com/tektoncd/pipeline/pkg/client/clientset/versioned"
	"github.com/tektoncd/pipeline/pkg/reconciler/taskrun/resources"
	remoteresource "github.com/tektoncd/pipeline/pkg/remoteresolution/resource"
	"k8s.io/client-go/kubernetes"
)

// resolveStepActions merges the StepActions that steps reference (from the
// TaskRun's workspace and namespace) into the steps, as Tekton does.
func (c *Controller) resolveStepActions(ctx context.Context, cluster logicalcluster.Name, key string, tr *v1.TaskRun, spec *v1.TaskSpec) error {
	var (
		client    tektonclient.Interface
		kube      kubernetes.Interface
		requester remoteresource.Requester
	)
	for _, step := range spec.Steps {
		if step.Ref != nil && client == nil {
			var err error
			if kube, client, requester, err = c.remote(cluster, key, tr.Namespace); err != nil {
				return err
			}
		}
	}
	steps, err := resources.GetStepActionsData(ctx, *spec, tr, client, kube, requester)
	if err != nil {
		return err
	}
	spec.Steps = steps
	return nil
}
