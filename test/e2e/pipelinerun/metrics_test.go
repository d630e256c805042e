//go:build e2e

package pipelinerun

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pipelines-service/pipelines-service/pkg/metrics"
	"github.com/pipelines-service/pipelines-service/test/e2e/framework"
)

// TestMetricsUnderTektonsNames scrapes the controller's /metrics while a
// tenant's PipelineRun runs and after it is done: Tekton's own series
// (names and labels of tektoncd/pipeline's controller, plus the
// workspace) count it, and the work queues, reconciles, requests to kcp
// and to the workload cluster, and the fleet's admission are there with
// non-zero values. Every scrape is parsed as the exposition format.
func TestMetricsUnderTektonsNames(t *testing.T) {
	ctx := context.Background()
	tn := env.NewTenant(ctx, t, "e2e-metrics")
	ws := tn.Cluster.String()
	inWorkspace := map[string]string{"workspace": ws}
	createPR(ctx, t, tn, &v1.PipelineRun{
		ObjectMeta: metav1.ObjectMeta{Name: "measured"},
		Spec: v1.PipelineRunSpec{PipelineSpec: &v1.PipelineSpec{Tasks: []v1.PipelineTask{
			{Name: "wait", TaskSpec: ptr(script("sleep 15"))},
		}}},
	})

	framework.Eventually(t, 2*time.Minute, "the running run in "+ws+"'s gauges", func() (bool, string, error) {
		families, err := framework.ControllerMetrics()
		if err != nil {
			return false, "", err
		}
		running := map[string]float64{
			"tekton_pipelines_controller_running_pipelineruns": families.Total("tekton_pipelines_controller_running_pipelineruns", inWorkspace),
			"tekton_pipelines_controller_running_taskruns":     families.Total("tekton_pipelines_controller_running_taskruns", inWorkspace),
			"pipelines_service_admission_taskruns running":     families.Total("pipelines_service_admission_taskruns", map[string]string{"workspace": ws, "state": "running"}),
		}
		for name, v := range running {
			if v < 1 {
				return false, fmt.Sprintf("%s = %v (all %v)", name, v, running), nil
			}
		}
		return true, "", nil
	})

	pr := tn.WaitPipelineRun(ctx, t, ns, "measured", 3*time.Minute, "done", framework.PipelineRunDone)
	if status, reason := framework.PipelineRunCondition(pr); status != "True" {
		t.Fatalf("PipelineRun ended %s/%s, want True", status, reason)
	}
	var families metrics.Families
	framework.Eventually(t, 30*time.Second, "the finished run counted in "+ws, func() (bool, string, error) {
		var err error
		if families, err = framework.ControllerMetrics(); err != nil {
			return false, "", err
		}
		got := families.Total("tekton_pipelines_controller_pipelinerun_total", map[string]string{"workspace": ws, "status": "success"})
		return got == 1, fmt.Sprintf("pipelinerun_total{status=success,workspace=%s} = %v", ws, got), nil
	})
	for _, c := range []struct {
		family string
		match  map[string]string
		want   float64
	}{
		{"tekton_pipelines_controller_taskrun_total", map[string]string{"workspace": ws, "status": "success"}, 1},
		{"tekton_pipelines_controller_pipelinerun_duration_seconds", map[string]string{"workspace": ws, "status": "success", "namespace": ns, "pipeline": "anonymous"}, 1},
		{"tekton_pipelines_controller_pipelinerun_taskrun_duration_seconds", map[string]string{"workspace": ws, "status": "success", "task": "wait"}, 1},
		{"tekton_pipelines_controller_running_pipelineruns", inWorkspace, 0},
	} {
		if got := families.Total(c.family, c.match); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.family, c.match, got, c.want)
		}
	}
	// The run took its 15 s: the duration is start to completion.
	if s := families.Samples("tekton_pipelines_controller_pipelinerun_duration_seconds", inWorkspace); len(s) != 1 || s[0].Sum < 15 {
		t.Errorf("pipelinerun_duration_seconds in %s: %v, want one run of at least 15 s", ws, s)
	}

	// The controller's own series, each with a non-zero value.
	nonZero := []struct {
		family string
		match  map[string]string
	}{
		{"workqueue_adds_total", map[string]string{"name": "pipelines-service-taskrun"}},
		{"workqueue_queue_duration_seconds", map[string]string{"name": "pipelines-service-pipelinerun"}},
		{"pipelines_service_reconcile_duration_seconds", map[string]string{"controller": "TaskRun", "result": "success"}},
		{"pipelines_service_client_request_duration_seconds", map[string]string{"server": "kcp", "verb": "PUT", "resource": "taskruns/status"}},
		{"pipelines_service_client_request_duration_seconds", map[string]string{"verb": "POST", "resource": "pods"}},
		{"process_resident_memory_bytes", nil},
	}
	for _, c := range nonZero {
		if got := families.Total(c.family, c.match); got <= 0 {
			t.Errorf("%s%v = %v, want > 0", c.family, c.match, got)
		}
	}
	// Pods are created on a workload cluster, not through kcp.
	for _, s := range families.Samples("pipelines_service_client_request_duration_seconds", map[string]string{"verb": "POST", "resource": "pods"}) {
		if s.Labels["server"] == "kcp" || !strings.HasPrefix(s.Labels["server"], "workload/") {
			t.Errorf("pod creation counted under server %q, want a workload cluster", s.Labels["server"])
		}
	}
	if _, ok := families["workqueue_depth"]; !ok {
		t.Error("no workqueue_depth family")
	}
}

func ptr[T any](v T) *T { return &v }
