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

// kind is the TaskRun's part of the reconcile skeleton
// (reconciler.Skeleton): get, decode, finalize, write and emit are shared
// by every kind.
type kind struct{ c *Controller }

func (kind) New() *v1.TaskRun          { return &v1.TaskRun{} }
func (kind) Status(tr *v1.TaskRun) any { return &tr.Status }
func (kind) Succeeded(tr *v1.TaskRun) *apis.Condition {
	return tr.Status.GetCondition(apis.ConditionSucceeded)
}

// Gone: the TaskRun's slot frees, and what it made on a workload cluster
// goes (reconciler.Tombstones).
func (k kind) Gone(ctx context.Context, key string) error {
	k.c.fleet.Admission().Release(key)
	return k.c.collectDeleted(ctx, k.c.log.With("key", key), key, "")
}

// Undecodable: the TaskRun fails validation, keeping what the tenant wrote.
func (k kind) Undecodable(ctx context.Context, o *reconciler.Object, err error) error {
	if err := k.collectEarlier(ctx, o); err != nil {
		return err
	}
	return k.c.failUndecodable(ctx, o.Cluster, o.Unstructured, err)
}

func (k kind) FinalizeKind(ctx context.Context, o *reconciler.Object, tr *v1.TaskRun) error {
	if err := k.collectEarlier(ctx, o); err != nil {
		return err
	}
	ctx, _ = k.c.config.WithConfig(ctx, o.Cluster)
	return k.c.finalize(ctx, o.Log, o.Key, o.Cluster, o.Unstructured, tr)
}

// ReconcileKind drives the TaskRun (reconcile), then starts its next
// attempt if it failed with retries left, frees its slot when it is done,
// and deletes what was carried for its pod once it is done (the pod is
// kept for its logs).
func (k kind) ReconcileKind(ctx context.Context, o *reconciler.Object, tr *v1.TaskRun) (time.Duration, error) {
	c := k.c
	if err := k.collectEarlier(ctx, o); err != nil {
		return 0, err
	}
	ctx, cfgErr := c.config.WithConfig(ctx, o.Cluster)
	requeue, err := c.reconcile(ctx, o.Log, o.Cluster, o.Key, tr, cfgErr)
	retried := retryIfRetriable(tr)
	if retried {
		o.Log.Infow("TaskRun failed, retrying", "attempt", len(tr.Status.RetriesStatus)+1, "retries", tr.Spec.Retries)
	}
	if retried || tr.IsDone() {
		c.fleet.Admission().Release(o.Key)
	}
	if tr.IsDone() {
		if derr := c.deleteCarried(ctx, o.Cluster, tr); derr != nil {
			return 0, errors.Join(err, derr)
		}
	}
	return requeue, err
}

// collectEarlier removes what an earlier TaskRun of the same name, since
// deleted, made on a workload cluster: it goes before this one's.
func (k kind) collectEarlier(ctx context.Context, o *reconciler.Object) error {
	return k.c.collectDeleted(ctx, o.Log, o.Key, o.Unstructured.GetUID())
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
		return 0, c.stopSidecars(ctx, cluster, tr)
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
