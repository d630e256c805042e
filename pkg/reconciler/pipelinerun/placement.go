package pipelinerun

import (
	"errors"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"knative.dev/pkg/controller"

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
		stands, err := r.recordStands(current)
		if stands || err != nil {
			return 0, err
		}
		current = "" // never placed by the controller: it waits rather than strands
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
		return 0, controller.NewPermanentError(err)
	case err != nil:
		return 0, err
	}
	if current != "" && current != name {
		r.log.Infow("PipelineRun moves before it made a TaskRun, or its workload cluster is lost", "from", current, "to", name)
	}
	placement.Set(pr, name)
	return 0, nil
}

// recordStands says whether the PipelineRun stays on the cluster its
// annotation records. The annotation is the tenant's to write too: before
// the PipelineRun has made a TaskRun, a record stands only where the fleet
// would place it (the TenantPolicy, the run's selector and volumes, no
// cordon); one that does not is placed anew. Once it has TaskRuns, each
// of them is held to the same test where its pods go (taskrun
// standingMember), and the record stays.
func (r *run) recordStands(name string) (bool, error) {
	if len(r.pr.Status.ChildReferences) > 0 {
		return true, nil
	}
	err := r.c.placer.Allows(r.cluster, r.pr.Namespace, r.pr, r.pr.Spec.Workspaces, name)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fleet.ErrNoCluster), errors.Is(err, placement.ErrInvalid):
		r.log.Infow("PipelineRun's recorded workload cluster is not one the fleet places it on: placed anew", "recorded", name, "why", err)
		return false, nil
	}
	return false, err
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
