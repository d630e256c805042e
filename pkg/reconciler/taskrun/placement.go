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
// when it has no cluster yet or has not started on a cluster that is
// lost. A TaskRun that ran on a lost cluster fails. With a nil member the
// TaskRun waits or has failed, as its status says.
func (c *Controller) placedMember(ctx context.Context, log *zap.SugaredLogger, cluster logicalcluster.Name, tr *v1.TaskRun) (*fleet.Member, time.Duration, error) {
	current := placement.Of(tr)
	m := c.fleet.Member(current)
	if m != nil && !m.Lost() {
		return m, 0, nil
	}
	if current != "" && tr.Status.PodName != "" {
		return nil, 0, c.failTaskRun(ctx, cluster, tr, placement.ReasonWorkloadClusterLost, lostMessage(current, m))
	}
	if current == "" {
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
	if current != "" {
		log.Infow("TaskRun moves: its workload cluster is lost before it started", "from", current, "to", name)
	}
	placement.Set(tr, name)
	return c.fleet.Member(name), 0, nil
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
				if m := c.fleet.Member(name); m != nil && !m.Lost() {
					return name, nil
				}
				return "", fmt.Errorf("%w (the PipelineRun's cluster %s is lost; the PipelineRun moves first)", fleet.ErrNoCluster, name)
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
