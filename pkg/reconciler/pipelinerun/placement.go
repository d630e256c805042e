package pipelinerun

import (
	"errors"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pipelines-service/pipelines-service/pkg/fleet"
	"github.com/pipelines-service/pipelines-service/pkg/reconciler/placement"
)

// waitRequeue is how often a PipelineRun waiting for a cluster looks
// again (a change of the fleet wakes it earlier).
const waitRequeue = 5 * time.Second

// place records the workload cluster the PipelineRun (all its TaskRuns)
// runs on: chosen once, and chosen again when that cluster is lost, so
// that its TaskRuns not started yet run elsewhere (those that ran there
// fail). A PipelineRun no cluster fits waits, saying why; one that was
// placed before is stranded (strandedError).
func (r *run) place() (time.Duration, error) {
	pr := r.pr
	current := placement.Of(pr)
	if m := r.c.fleet.Member(current); m != nil && !m.Lost() {
		return 0, nil
	}
	if current == "" {
		if adopted := r.childPlacement(); adopted != "" {
			placement.Set(pr, adopted) // the earlier write of the placement failed
			return 0, nil
		}
	}
	name, err := r.c.placer.Place(r.cluster, pr.Namespace, pr, pr.Spec.Workspaces)
	switch {
	case errors.Is(err, fleet.ErrNoCluster) && current != "":
		return 0, strandedError{err}
	case errors.Is(err, fleet.ErrNoCluster):
		pr.Status.MarkRunning(placement.ReasonWaitingForWorkloadCluster, "%s", err)
		return waitRequeue, nil
	case errors.Is(err, placement.ErrInvalid):
		pr.Status.MarkFailed(placement.ReasonInvalidPlacement, "%s", err)
		return 0, permanentError{err}
	case err != nil:
		return 0, err
	}
	if current != "" {
		r.log.Infow("PipelineRun moves: its workload cluster is lost", "from", current, "to", name)
	}
	placement.Set(pr, name)
	return 0, nil
}

// strandedError: the PipelineRun's cluster is lost and no other fits. It
// stays placed where it was, and goes on as Tekton's would: what its
// TaskRuns did concludes it (one that ran on the lost cluster failed with
// WorkloadClusterLost), and the TaskRuns it starts wait for a cluster, as
// it says while it is not done.
type strandedError struct{ error }

func (e strandedError) Unwrap() error { return e.error }

// childPlacement is the cluster of a TaskRun the PipelineRun made.
func (r *run) childPlacement() string {
	for _, ref := range r.pr.Status.ChildReferences {
		if ref.Kind != "TaskRun" {
			continue
		}
		obj, err := r.c.taskRuns.Lister().ByCluster(r.cluster).ByNamespace(r.pr.Namespace).Get(ref.Name)
		if err != nil {
			continue
		}
		if name := placement.Of(obj.(metav1.Object)); name != "" {
			return name
		}
	}
	return ""
}
