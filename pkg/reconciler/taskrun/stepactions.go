package taskrun

import (
	"context"
	"fmt"

	"github.com/kcp-dev/logicalcluster/v3"
	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	tektonclient "github.com/tektoncd/pipeline/pkg/client/clientset/versioned"
	"github.com/tektoncd/pipeline/pkg/reconciler/taskrun/resources"
)

// resolveStepActions merges the StepActions that steps reference (from the
// TaskRun's workspace and namespace) into the steps, as Tekton does.
func (c *Controller) resolveStepActions(ctx context.Context, cluster logicalcluster.Name, tr *v1.TaskRun, spec *v1.TaskSpec) error {
	var client tektonclient.Interface
	for _, step := range spec.Steps {
		if step.Ref == nil {
			continue
		}
		if step.Ref.Resolver != "" {
			return fmt.Errorf("step %q references a StepAction through the %q resolver: remote resolution is not served by pipelines-service yet", step.Name, step.Ref.Resolver)
		}
		if client == nil {
			var err error
			if client, err = c.stepActions(cluster); err != nil {
				return err
			}
		}
	}
	// The Kubernetes client serves remote resolution only, refused above.
	steps, err := resources.GetStepActionsData(ctx, *spec, tr, client, nil, nil)
	if err != nil {
		return err
	}
	spec.Steps = steps
	return nil
}
