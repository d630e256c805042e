package taskrun

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kcp-dev/logicalcluster/v3"
	"github.com/tektoncd/pipeline/pkg/apis/config"
	pipelineerrors "github.com/tektoncd/pipeline/pkg/apis/pipeline/errors"
	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	podconvert "github.com/tektoncd/pipeline/pkg/pod"
	"github.com/tektoncd/pipeline/pkg/remote"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"knative.dev/pkg/apis"

	"github.com/pipelines-service/pipelines-service/pkg/fleet"
	"github.com/pipelines-service/pipelines-service/pkg/reconciler"
	"github.com/pipelines-service/pipelines-service/pkg/tenantconfig"
	"github.com/pipelines-service/pipelines-service/pkg/workload"
)

// resolvingRequeue is when a run waiting for a remote reference is looked
// at again if no notification came.
const resolvingRequeue = 10 * time.Second

// Finalizer is what earlier versions kept a TaskRun with until its
// workload objects were gone; it is removed where found and added no more
// (reconciler.Tombstones says why).
const Finalizer = "pipelines-service.dev/workload"

// reconcileKey reconciles the TaskRun of a cluster-aware key and returns
// when to look again.
func (c *Controller) reconcileKey(ctx context.Context, key string) (time.Duration, error) {
	tr := &v1.TaskRun{}
	obj, err := reconciler.Get(c.taskRuns.Lister(), key, tr)
	if obj == nil && err == nil {
		c.fleet.Admission().Release(key)
		return 0, c.collectDeleted(ctx, c.log.With("key", key), key, "")
	}
	if obj == nil {
		return 0, err
	}
	cluster, u := obj.Cluster, obj.Unstructured
	log := c.log.With("workspace", cluster.String(), "namespace", obj.Namespace, "name", obj.Name)
	if err := c.collectDeleted(ctx, log, key, obj.Unstructured.GetUID()); err != nil {
		return 0, err // an earlier TaskRun of the same name went first
	}
	if errors.Is(err, reconciler.ErrUndecodable) {
		log.Errorw("TaskRun does not decode into tekton.dev/v1", "error", err)
		return 0, c.failUndecodable(ctx, cluster, u, err)
	}
	ctx, cfgErr := c.config.WithConfig(ctx, cluster)

	if tr.DeletionTimestamp != nil {
		return 0, c.finalize(ctx, log, key, cluster, u, tr)
	}
	before := tr.DeepCopy()
	requeue, err := c.reconcile(ctx, log, cluster, key, tr, cfgErr)
	retried := retryIfRetriable(tr)
	if retried {
		log.Infow("TaskRun failed, retrying", "attempt", len(tr.Status.RetriesStatus)+1, "retries", tr.Spec.Retries)
	}
	if retried || tr.IsDone() {
		c.fleet.Admission().Release(key)
	}
	beforeCond := before.Status.GetCondition(apis.ConditionSucceeded)
	if tr.IsDone() && !beforeCond.IsTrue() && !beforeCond.IsFalse() {
		// The pod is kept for its logs; the secrets it was given go now.
		if derr := c.deleteCarried(ctx, cluster, tr); derr != nil {
			return 0, derr
		}
	}
	if !equality.Semantic.DeepEqual(before.Labels, tr.Labels) || !equality.Semantic.DeepEqual(before.Annotations, tr.Annotations) {
		updated, uerr := c.objects.UpdateMeta(ctx, cluster, u, tr.Labels, tr.Annotations)
		if uerr != nil {
			return 0, uerr
		}
		u = updated
	}
	if !equality.Semantic.DeepEqual(&before.Status, &tr.Status) {
		if uerr := c.updateStatus(ctx, cluster, u, tr); uerr != nil {
			return 0, uerr
		}
		c.events.EmitRun(ctx, cluster, ControllerName, beforeCond, tr.Status.GetCondition(apis.ConditionSucceeded), tr)
	}
	return requeue, err
}

// reconcile drives one TaskRun as Tekton's taskrun reconciler does;
// cfgErr says why the workspace's Tekton configuration is unusable.
func (c *Controller) reconcile(ctx context.Context, log *zap.SugaredLogger, cluster logicalcluster.Name, key string, tr *v1.TaskRun, cfgErr error) (time.Duration, error) {
	if !tr.HasStarted() {
		tr.Status.InitializeConditions()
		if tr.Status.StartTime.Sub(tr.CreationTimestamp.Time) < 0 {
			tr.Status.StartTime = tr.CreationTimestamp.DeepCopy()
		}
	}
	if tr.IsDone() {
		return 0, nil
	}
	if tr.IsCancelled() {
		return 0, c.failTaskRun(ctx, cluster, tr, v1.TaskRunReasonCancelled,
			fmt.Sprintf("TaskRun %q was cancelled. %s", tr.Name, tr.Spec.StatusMessage))
	}
	if cfgErr != nil && tr.Status.PodName == "" {
		// Only runs that have not started fail: a tenant's edit of its
		// configuration must not kill what is already running.
		return 0, c.failTaskRun(ctx, cluster, tr, tenantconfig.ReasonInvalidConfiguration,
			fmt.Sprintf("the workspace's Tekton configuration is invalid: %v", cfgErr))
	}
	if cfgErr != nil {
		log.Warnw("the workspace's Tekton configuration is invalid; the running TaskRun goes on with the platform's", "error", cfgErr)
	}

	rtr, err := c.prepare(ctx, cluster, key, tr)
	if errors.Is(err, remote.ErrRequestInProgress) {
		if tr.HasTimedOut(ctx, c.clock) {
			return 0, c.failTaskRun(ctx, cluster, tr, v1.TaskRunReasonTimedOut,
				fmt.Sprintf("TaskRun %q failed to finish within %q", tr.Name, tr.GetTimeout(ctx)))
		}
		// The requester enqueues the run when the fetch ends; this is the
		// fallback.
		return resolvingRequeue, nil
	}
	if err != nil {
		return 0, err
	}
	if rtr == nil {
		log.Infow("TaskRun failed before running", "reason", tr.Status.GetCondition("Succeeded").GetReason())
		return 0, nil
	}

	if tr.HasTimedOut(ctx, c.clock) {
		if m, pod := c.memberOf(tr), c.podIfAny(cluster, tr); m != nil && pod != nil && m.Reachable() {
			if status, err := c.statusFromPod(ctx, log, m, cluster, tr, pod, rtr.TaskSpec); err == nil {
				tr.Status = status
			}
		}
		return 0, c.failTaskRun(ctx, cluster, tr, v1.TaskRunReasonTimedOut,
			fmt.Sprintf("TaskRun %q failed to finish within %q", tr.Name, tr.GetTimeout(ctx)))
	}

	m, wait, err := c.placedMember(ctx, log, cluster, tr)
	if err != nil || m == nil {
		return wait, err
	}
	if !m.Synced() {
		return time.Second, nil // its informers will tell which pods exist
	}
	if admitted, err := c.admit(m, cluster, tr); err != nil || !admitted {
		return waitRequeue, err
	}
	pod, err := c.ensurePod(ctx, log, m, cluster, tr, rtr)
	if err != nil || pod == nil {
		return 0, err
	}
	if podconvert.SidecarsReady(pod.Status) {
		if err := podconvert.UpdateReady(ctx, m.Client, *pod); err != nil {
			return 0, err
		}
	}
	status, err := c.statusFromPod(ctx, log, m, cluster, tr, pod, rtr.TaskSpec)
	if isResultSizeExceeded(err) {
		return 0, c.failTaskRun(ctx, cluster, tr, v1.TaskRunReasonResultLargerThanAllowedLimit,
			fmt.Sprintf("%s TaskRun %q failed: %s", pipelineerrors.UserErrorLabel, tr.Name, err))
	}
	if err := applyPodStatus(log, tr, status, err); err != nil {
		return 0, fmt.Errorf("status from pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	if tr.IsDone() {
		log.Infow("TaskRun finished", "reason", tr.Status.GetCondition("Succeeded").GetReason())
		return 0, nil
	}
	return c.untilTimeout(ctx, tr), nil
}

// applyPodStatus sets the TaskRun's status from its pod's, as Tekton does:
// what was read is kept even where part of the pod's status could not be
// (say the kubelet's "The container could not be located when the pod
// was terminated" where a step's JSON termination message should be). A
// run the pod ended ends with it; an unfinished one returns the error, to
// be looked at again.
func applyPodStatus(log *zap.SugaredLogger, tr *v1.TaskRun, status v1.TaskRunStatus, err error) error {
	tr.Status = status
	if err != nil && tr.IsDone() {
		log.Warnw("the TaskRun ended, but part of its pod's status could not be read", "error", err)
		return nil
	}
	return err
}

// retryIfRetriable starts another attempt of a failed TaskRun that has
// retries left, as Tekton does: the failed attempt's status moves to
// retriesStatus and the run starts over (a new pod, "-retryN").
func retryIfRetriable(tr *v1.TaskRun) bool {
	cond := tr.Status.GetCondition(apis.ConditionSucceeded)
	if cond == nil || !cond.IsFalse() || tr.IsCancelled() || !tr.IsRetriable() {
		return false
	}
	attempt := tr.Status.DeepCopy()
	attempt.RetriesStatus = nil
	tr.Status.RetriesStatus = append(tr.Status.RetriesStatus, *attempt)
	tr.Status.StartTime, tr.Status.CompletionTime = nil, nil
	tr.Status.PodName = ""
	tr.Status.Results = nil
	tr.Status.Steps, tr.Status.Sidecars = nil, nil
	tr.Status.MarkResourceOngoing(v1.TaskRunReasonToBeRetried, cond.Message)
	return true
}

// untilTimeout is when the TaskRun times out, 0 without a timeout.
func (c *Controller) untilTimeout(ctx context.Context, tr *v1.TaskRun) time.Duration {
	timeout := tr.GetTimeout(ctx)
	if tr.Status.StartTime == nil || timeout == config.NoTimeoutDuration {
		return 0
	}
	if left := timeout - c.clock.Since(tr.Status.StartTime.Time); left > 0 {
		return left
	}
	return time.Millisecond
}

// statusFromPod is Tekton's TaskRun status from the pod. Tekton reads
// results from the sidecar's logs in the TaskRun's namespace: here that is
// the pod's, on the workload cluster.
func (c *Controller) statusFromPod(ctx context.Context, log *zap.SugaredLogger, m *fleet.Member, cluster logicalcluster.Name, tr *v1.TaskRun, pod *corev1.Pod, spec *v1.TaskSpec) (v1.TaskRunStatus, error) {
	wtr := *tr
	wtr.Namespace = workload.Namespace(cluster, tr.Namespace)
	return podconvert.MakeTaskRunStatus(ctx, log, wtr, pod, m.Client, spec)
}

// isResultSizeExceeded tells Tekton's internal sidecarlogresults
// ErrSizeExceeded (not importable) by its text.
func isResultSizeExceeded(err error) bool {
	return err != nil && strings.Contains(err.Error(), "results size exceeds configured limit")
}
