package recorder

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"

	kcpcache "github.com/kcp-dev/apimachinery/v2/pkg/cache"
	"github.com/kcp-dev/logicalcluster/v3"
	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	watcherresults "github.com/tektoncd/results/pkg/watcher/results"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/pipelines-service/pipelines-service/pkg/fleet"
	"github.com/pipelines-service/pipelines-service/pkg/reconciler"
	"github.com/pipelines-service/pipelines-service/pkg/reconciler/placement"
	"github.com/pipelines-service/pipelines-service/pkg/workload"
)

// errUnreachable: the workload cluster holding a run's pod does not answer
// now; its logs are read when it is back.
var errUnreachable = errors.New("workload cluster does not answer")

// logSource reads what a run's steps printed.
type logSource interface {
	read(ctx context.Context, cluster logicalcluster.Name, run watcherresults.Object) ([]byte, error)
}

// fleetLogs reads the logs from the pods on the workload clusters, in the
// format of upstream's watcher (tkn's log writer): each line prefixed
// "[step] " for a TaskRun, "[pipeline task : step] " for a PipelineRun.
type fleetLogs struct {
	fleet    *fleet.Fleet
	taskRuns kcpcache.GenericClusterLister
}

func (f fleetLogs) read(ctx context.Context, cluster logicalcluster.Name, run watcherresults.Object) ([]byte, error) {
	var out bytes.Buffer
	switch r := run.(type) {
	case *v1.TaskRun:
		if err := f.taskRun(ctx, &out, cluster, r, ""); err != nil {
			return nil, err
		}
		return out.Bytes(), nil
	case *v1.PipelineRun:
		for _, child := range r.Status.ChildReferences {
			if child.Kind != "TaskRun" {
				continue
			}
			tr := &v1.TaskRun{}
			obj, err := reconciler.Get(f.taskRuns, kcpcache.ToClusterAwareKey(cluster.String(), r.Namespace, child.Name), tr)
			if err != nil && !errors.Is(err, reconciler.ErrUndecodable) {
				return nil, err
			}
			if obj == nil || err != nil {
				fmt.Fprintf(&out, "[%s] TaskRun %s was gone before its logs were archived\n", child.PipelineTaskName, child.Name)
				continue
			}
			if err := f.taskRun(ctx, &out, cluster, tr, child.PipelineTaskName+" : "); err != nil {
				return nil, err
			}
		}
		return out.Bytes(), nil
	}
	return nil, fmt.Errorf("cannot read logs of %T", run)
}

// taskRun appends the logs of every step of tr's pod to out, each line
// prefixed "[<prefix><step>] ". A pod that is gone leaves a line saying
// so, never a silent gap.
func (f fleetLogs) taskRun(ctx context.Context, out *bytes.Buffer, cluster logicalcluster.Name, tr *v1.TaskRun, prefix string) error {
	if tr.Status.PodName == "" {
		fmt.Fprintf(out, "[%s] TaskRun %s ran no pod: %s\n", prefix+"-", tr.Name, succeededMessage(tr))
		return nil
	}
	m := f.fleet.Member(placement.Of(tr))
	if m == nil || !m.Reachable() {
		return fmt.Errorf("%w: %q (pod %s of TaskRun %s)", errUnreachable, placement.Of(tr), tr.Status.PodName, tr.Name)
	}
	ns := workload.Namespace(cluster, tr.Namespace)
	for _, step := range tr.Status.Steps {
		data, err := m.Client.CoreV1().Pods(ns).GetLogs(tr.Status.PodName, &corev1.PodLogOptions{Container: step.Container}).DoRaw(ctx)
		if apierrors.IsNotFound(err) {
			fmt.Fprintf(out, "[%s%s] pod %s was gone before its logs were archived\n", prefix, step.Name, tr.Status.PodName)
			continue
		}
		if apierrors.IsBadRequest(err) {
			// The step never started (a step before it failed).
			continue
		}
		if err != nil {
			return fmt.Errorf("logs of step %s of TaskRun %s: %w", step.Name, tr.Name, err)
		}
		scanner := bufio.NewScanner(bytes.NewReader(data))
		scanner.Buffer(make([]byte, 64*1024), 16<<20)
		for scanner.Scan() {
			fmt.Fprintf(out, "[%s%s] %s\n", prefix, step.Name, scanner.Text())
		}
	}
	return nil
}

func succeededMessage(tr *v1.TaskRun) string {
	if c := tr.Status.GetCondition("Succeeded"); c != nil {
		return c.Reason + ": " + c.Message
	}
	return "no condition"
}
