package taskrun

import (
	"context"
	"errors"
	"fmt"
	"time"

	kcpcache "github.com/kcp-dev/apimachinery/v2/pkg/cache"
	"github.com/kcp-dev/logicalcluster/v3"
	"github.com/tektoncd/pipeline/pkg/apis/pipeline"
	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	"go.uber.org/zap"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pipelines-service/pipelines-service/pkg/fleet"
	"github.com/pipelines-service/pipelines-service/pkg/reconciler/placement"
)

// ReasonQueued: the TaskRun waits for a slot under its workspace's or its
// cluster's limit of concurrently running TaskRuns.
const ReasonQueued = "Queued"

// waitRequeue is how often a waiting TaskRun looks again (a freed slot or
// a change of the fleet wakes it earlier).
const waitRequeue = 5 * time.Second

// memberOf is the member the TaskRun is placed on, nil if none.
func (c *Controller) memberOf(tr *v1.TaskRun) *fleet.Member {
	if name := placement.Of(tr); name != "" {
		return c.fleet.Member(name)
	}
	return nil
}

// placedMember returns the member the TaskRun runs on, placing it first
// when it has no cluster yet, when its recorded cluster does not stand
// (standingMember), or when it has not started on a cluster that is lost.
// A TaskRun that ran on a lost cluster fails. With a nil member the
// TaskRun waits or has failed, as its status says.
func (c *Controller) placedMember(ctx context.Context, log *zap.SugaredLogger, cluster logicalcluster.Name, tr *v1.TaskRun) (*fleet.Member, time.Duration, error) {
	current := placement.Of(tr)
	m := c.fleet.Member(current)
	switch {
	case m != nil && !m.Lost():
		standing, why, err := c.standingMember(cluster, tr, m)
		if err != nil {
			return nil, 0, err
		}
		if standing != nil {
			if standing != m {
				log.Infow("TaskRun's recorded workload cluster was changed under it: it stays where it runs", "recorded", current, "runsOn", standing.Name)
				placement.Set(tr, standing.Name)
			}
			return standing, 0, nil
		}
		log.Infow("TaskRun's recorded workload cluster is not one the fleet places it on: placed anew", "recorded", current, "why", why)
	case current != "" && tr.Status.PodName != "":
		return nil, 0, c.failTaskRun(ctx, cluster, tr, placement.ReasonWorkloadClusterLost, lostMessage(current, m))
	case current == "":
		if found := c.adoptPod(cluster, tr); found != nil {
			placement.Set(tr, found.Name)
			return found, 0, nil
		}
	}
	name, err := c.chooseCluster(cluster, tr)
	switch {
	case errors.Is(err, fleet.ErrNoCluster):
		tr.Status.MarkResourceOngoing(placement.ReasonWaitingForWorkloadCluster, err.Error())
		return nil, waitRequeue, nil
	case errors.Is(err, placement.ErrInvalid):
		return nil, 0, c.failTaskRun(ctx, cluster, tr, placement.ReasonInvalidPlacement, err.Error())
	case err != nil:
		return nil, 0, err
	}
	if current != "" && current != name {
		log.Infow("TaskRun moves before it started", "from", current, "to", name)
	}
	placement.Set(tr, name)
	return c.fleet.Member(name), 0, nil
}

// standingMember is the member a TaskRun recorded on m runs on, nil if the
// record does not stand and the TaskRun is placed anew. The record is an
// annotation in the tenant's workspace, which the tenant can write as well
// as the controller: taken at its word, it would take a tenant's pods to a
// workload cluster its TenantPolicy does not open to it, or to a cordoned
// one, and moving it under a running TaskRun would give it a second pod.
// So what the controller knows comes first: where the TaskRun's pod is,
// where this process admitted it (its pod may not be in the informer yet);
// a record with neither stands only where the fleet would place the run.
func (c *Controller) standingMember(cluster logicalcluster.Name, tr *v1.TaskRun, m *fleet.Member) (standing *fleet.Member, why string, err error) {
	pod, err := podOn(m, cluster, tr)
	if err != nil || pod != nil {
		return m, "", err
	}
	key := kcpcache.ToClusterAwareKey(cluster.String(), tr.Namespace, tr.Name)
	if name, ok := c.fleet.Admission().AdmittedOn(key); ok {
		if admitted := c.fleet.Member(name); admitted != nil {
			return admitted, "", nil
		}
	}
	if found := c.adoptPod(cluster, tr); found != nil {
		return found, "", nil
	}
	err = c.placer.Allows(cluster, tr.Namespace, tr, tr.Spec.Workspaces, m.Name)
	switch {
	case err == nil:
		return m, "", nil
	case errors.Is(err, fleet.ErrNoCluster), errors.Is(err, placement.ErrInvalid):
		return nil, err.Error(), nil
	}
	return nil, "", err
}

func lostMessage(cluster string, m *fleet.Member) string {
	if m == nil {
		return fmt.Sprintf("workload cluster %q was deregistered while the TaskRun ran there", cluster)
	}
	return fmt.Sprintf("workload cluster %q stopped answering at %s while the TaskRun ran there; the outcome of its pod is unknown",
		cluster, m.LostSince().UTC().Format(time.RFC3339))
}

// adoptPod finds a pod of a TaskRun whose placement was not recorded
// (the write failed after the pod was made).
func (c *Controller) adoptPod(cluster logicalcluster.Name, tr *v1.TaskRun) *fleet.Member {
	for _, m := range c.fleet.Members() {
		if pod, err := podOn(m, cluster, tr); err == nil && pod != nil {
			return m
		}
	}
	return nil
}

// chooseCluster places a TaskRun: one of a PipelineRun goes where its
// PipelineRun is, others where the fleet has room.
func (c *Controller) chooseCluster(cluster logicalcluster.Name, tr *v1.TaskRun) (string, error) {
	if parent := tr.Labels[pipeline.PipelineRunLabelKey]; parent != "" {
		obj, err := c.pipelineRuns.Lister().ByCluster(cluster).ByNamespace(tr.Namespace).Get(parent)
		if err == nil {
			if name := placement.Of(obj.(metav1.Object)); name != "" {
				if m := c.fleet.Member(name); m == nil || m.Lost() {
					return "", fmt.Errorf("%w (the PipelineRun's cluster %s is lost; the PipelineRun moves first)", fleet.ErrNoCluster, name)
				}
				// The PipelineRun's record is the tenant's to write too.
				err := c.placer.Allows(cluster, tr.Namespace, tr, tr.Spec.Workspaces, name)
				if err == nil || !errors.Is(err, fleet.ErrNoCluster) {
					return name, err
				}
				// Not where the fleet places it: placed on its own below.
			}
		}
	}
	return c.placer.Place(cluster, tr.Namespace, tr, tr.Spec.Workspaces)
}

// admit says whether the TaskRun may have its pod now: one that has a pod
// runs; others ask the fleet's admission. Queued TaskRuns say why.
func (c *Controller) admit(m *fleet.Member, cluster logicalcluster.Name, tr *v1.TaskRun) (bool, error) {
	key := kcpcache.ToClusterAwareKey(cluster.String(), tr.Namespace, tr.Name)
	pod, err := podOn(m, cluster, tr)
	if err != nil {
		return false, err
	}
	if pod != nil {
		c.fleet.Admission().MarkRunning(key, cluster.String(), m.Name)
		return true, nil
	}
	ok, why := c.fleet.Admission().Admit(key, cluster.String(), m.Name)
	if !ok {
		tr.Status.MarkResourceOngoing(ReasonQueued, why)
	}
	return ok, nil
}
