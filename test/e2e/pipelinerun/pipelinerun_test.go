//go:build e2e

package pipelinerun

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/kcp-dev/logicalcluster/v3"
	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/pipelines-service/pipelines-service/pkg/workload"
	"github.com/pipelines-service/pipelines-service/test/e2e/framework"
)

const ns = "default"

func script(s string) v1.EmbeddedTask {
	return v1.EmbeddedTask{TaskSpec: v1.TaskSpec{Steps: []v1.Step{{Name: "s", Image: "busybox", Script: s}}}}
}

func createPR(ctx context.Context, t *testing.T, tn *framework.Tenant, pr *v1.PipelineRun) {
	t.Helper()
	if _, err := tn.Tekton.TektonV1().PipelineRuns(ns).Create(ctx, pr, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create PipelineRun %s: %v", pr.Name, err)
	}
}

// TestFanOutOfTenWithFinallyAndPipelineResult: 10 parallel tasks each
// produce a result; a finally task reads all ten; the pipeline result
// aggregates them; childReferences list all 11 TaskRuns.
func TestFanOutOfTenWithFinallyAndPipelineResult(t *testing.T) {
	ctx := context.Background()
	tn := env.NewTenant(ctx, t, "e2e-fanout")
	spec := &v1.PipelineSpec{}
	var refs []string
	for i := 0; i < 10; i++ {
		name := fmt.Sprintf("t%d", i)
		task := script(fmt.Sprintf("printf %d > $(results.n.path)", i*i))
		task.Results = []v1.TaskResult{{Name: "n"}}
		spec.Tasks = append(spec.Tasks, v1.PipelineTask{Name: name, TaskSpec: &task})
		refs = append(refs, fmt.Sprintf("$(tasks.%s.results.n)", name))
	}
	sum := script(`total=0; for n in "$@"; do total=$((total+n)); done; printf "$total" > $(results.sum.path)`)
	sum.Results = []v1.TaskResult{{Name: "sum"}}
	sum.Steps[0].Args = refs
	sum.Steps[0].Script = "#!/bin/sh\n" + sum.Steps[0].Script
	spec.Finally = []v1.PipelineTask{{Name: "sum", TaskSpec: &sum}}
	spec.Results = []v1.PipelineResult{
		{Name: "sum", Value: *v1.NewStructuredValues("$(finally.sum.results.sum)")},
		{Name: "t9", Value: *v1.NewStructuredValues("$(tasks.t9.results.n)")},
	}
	createPR(ctx, t, tn, &v1.PipelineRun{ObjectMeta: metav1.ObjectMeta{Name: "fanout"}, Spec: v1.PipelineRunSpec{PipelineSpec: spec}})

	pr := tn.WaitPipelineRun(ctx, t, ns, "fanout", 5*time.Minute, "done", framework.PipelineRunDone)
	if status, reason := framework.PipelineRunCondition(pr); status != "True" || reason != "Succeeded" {
		t.Fatalf("PipelineRun ended %s/%s, want True/Succeeded", status, reason)
	}
	var tasks []string
	for _, ref := range pr.Status.ChildReferences {
		tasks = append(tasks, ref.PipelineTaskName)
	}
	sort.Strings(tasks)
	if len(pr.Status.ChildReferences) != 11 || strings.Join(tasks, ",") != "sum,t0,t1,t2,t3,t4,t5,t6,t7,t8,t9" {
		t.Errorf("childReferences name %v, want the 10 tasks and the finally task", tasks)
	}
	results := map[string]string{}
	for _, r := range pr.Status.Results {
		results[r.Name] = r.Value.StringVal
	}
	if results["sum"] != "285" || results["t9"] != "81" { // sum of squares 0..9
		t.Errorf("pipeline results = %v, want sum=285 t9=81", results)
	}
}

// TestCancellingStopsRunningPods: cancelling a running PipelineRun
// cancels its TaskRuns, their pods go within seconds, reasons are Tekton's.
func TestCancellingStopsRunningPods(t *testing.T) {
	ctx := context.Background()
	tn := env.NewTenant(ctx, t, "e2e-cancel")
	spec := &v1.PipelineSpec{}
	for i := 0; i < 3; i++ {
		task := script("sleep 300")
		spec.Tasks = append(spec.Tasks, v1.PipelineTask{Name: fmt.Sprintf("sleep%d", i), TaskSpec: &task})
	}
	after := script("echo never")
	spec.Tasks = append(spec.Tasks, v1.PipelineTask{Name: "after", RunAfter: []string{"sleep0"}, TaskSpec: &after})
	createPR(ctx, t, tn, &v1.PipelineRun{ObjectMeta: metav1.ObjectMeta{Name: "cancel-me"}, Spec: v1.PipelineRunSpec{PipelineSpec: spec}})

	var pods []*corev1.Pod
	framework.Eventually(t, 2*time.Minute, "3 pods running", func() (bool, string, error) {
		pods = runningPods(ctx, t, tn, "cancel-me")
		return len(pods) == 3, fmt.Sprintf("%d running", len(pods)), nil
	})
	patch := []byte(`{"spec":{"status":"` + string(v1.PipelineRunSpecStatusCancelled) + `"}}`)
	cancelled := time.Now()
	if _, err := tn.Tekton.TektonV1().PipelineRuns(ns).Patch(ctx, "cancel-me", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	pr := tn.WaitPipelineRun(ctx, t, ns, "cancel-me", time.Minute, "done", framework.PipelineRunDone)
	if status, reason := framework.PipelineRunCondition(pr); status != "False" || reason != string(v1.PipelineRunReasonCancelled) {
		t.Errorf("PipelineRun ended %s/%s, want False/Cancelled", status, reason)
	}
	for _, pod := range pods {
		framework.Eventually(t, 30*time.Second, "pod "+pod.Name+" gone", func() (bool, string, error) {
			_, err := env.Workload.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
			return apierrors.IsNotFound(err), fmt.Sprint(err), nil
		})
	}
	t.Logf("all running pods gone %s after cancelling", time.Since(cancelled).Round(100*time.Millisecond))
	for i := 0; i < 3; i++ {
		// The PipelineRun is Cancelled once its TaskRuns' specs say so;
		// each TaskRun's status follows from its own reconcile.
		tr := tn.WaitTaskRunDone(ctx, t, ns, fmt.Sprintf("cancel-me-sleep%d", i), time.Minute)
		if status, reason := framework.Condition(tr); status != "False" || reason != string(v1.TaskRunReasonCancelled) || tr.Spec.StatusMessage != v1.TaskRunCancelledByPipelineMsg {
			t.Errorf("TaskRun %s: %s/%s, message %q; want False/TaskRunCancelled by the pipeline", tr.Name, status, reason, tr.Spec.StatusMessage)
		}
	}
	if _, err := tn.Tekton.TektonV1().TaskRuns(ns).Get(ctx, "cancel-me-after", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("task after the cancelled one was started: %v", err)
	}
}

// runningPods lists the running workload pods of a PipelineRun's TaskRuns.
func runningPods(ctx context.Context, t *testing.T, tn *framework.Tenant, prName string) []*corev1.Pod {
	trs, err := tn.Tekton.TektonV1().TaskRuns(ns).List(ctx, metav1.ListOptions{LabelSelector: "tekton.dev/pipelineRun=" + prName})
	if err != nil {
		return nil
	}
	var pods []*corev1.Pod
	for _, tr := range trs.Items {
		if tr.Status.PodName == "" {
			continue
		}
		pod, err := env.Workload.CoreV1().Pods(workload.Namespace(logicalcluster.From(&tr), ns)).Get(ctx, tr.Status.PodName, metav1.GetOptions{})
		if err == nil && pod.Status.Phase == corev1.PodRunning {
			pods = append(pods, pod)
		}
	}
	return pods
}

// TestDeletingPipelineRunRemovesTaskRunsAndPods: the TaskRuns go with
// their PipelineRun (owner references in the tenant workspace), and with
// them their pods on the workload cluster.
func TestDeletingPipelineRunRemovesTaskRunsAndPods(t *testing.T) {
	ctx := context.Background()
	tn := env.NewTenant(ctx, t, "e2e-prdelete")
	task := script("sleep 300")
	createPR(ctx, t, tn, &v1.PipelineRun{ObjectMeta: metav1.ObjectMeta{Name: "delete-me"},
		Spec: v1.PipelineRunSpec{PipelineSpec: &v1.PipelineSpec{Tasks: []v1.PipelineTask{{Name: "sleep", TaskSpec: &task}}}}})
	var pods []*corev1.Pod
	framework.Eventually(t, 2*time.Minute, "pod running", func() (bool, string, error) {
		pods = runningPods(ctx, t, tn, "delete-me")
		return len(pods) == 1, fmt.Sprintf("%d running", len(pods)), nil
	})
	if err := tn.Tekton.TektonV1().PipelineRuns(ns).Delete(ctx, "delete-me", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, time.Minute, "TaskRun gone", func() (bool, string, error) {
		_, err := tn.Tekton.TektonV1().TaskRuns(ns).Get(ctx, "delete-me-sleep", metav1.GetOptions{})
		return apierrors.IsNotFound(err), fmt.Sprint(err), nil
	})
	framework.Eventually(t, time.Minute, "pod gone", func() (bool, string, error) {
		_, err := env.Workload.CoreV1().Pods(pods[0].Namespace).Get(ctx, pods[0].Name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), fmt.Sprint(err), nil
	})
}

// TestRetriesMatrixAndTimeout: a task failing once is retried (Tekton
// keeps the failed attempt in retriesStatus); a matrix fans out one TaskRun
// per combination; a pipeline timeout ends the run with Tekton's reason.
func TestRetriesMatrixAndTimeout(t *testing.T) {
	ctx := context.Background()
	tn := env.NewTenant(ctx, t, "e2e-retry")
	flaky := script(`echo "attempt $(context.task.retry-count)"; [ "$(context.task.retry-count)" -ge 1 ]`)
	matrixTask := v1.EmbeddedTask{TaskSpec: v1.TaskSpec{
		Params: v1.ParamSpecs{{Name: "os"}, {Name: "arch"}},
		Steps:  []v1.Step{{Name: "s", Image: "busybox", Script: "echo $(params.os)/$(params.arch)"}},
	}}
	createPR(ctx, t, tn, &v1.PipelineRun{ObjectMeta: metav1.ObjectMeta{Name: "retry-matrix"}, Spec: v1.PipelineRunSpec{PipelineSpec: &v1.PipelineSpec{
		Tasks: []v1.PipelineTask{
			{Name: "flaky", Retries: 2, TaskSpec: &flaky},
			{Name: "build", TaskSpec: &matrixTask, Matrix: &v1.Matrix{Params: v1.Params{
				{Name: "os", Value: *v1.NewStructuredValues("linux", "darwin")},
				{Name: "arch", Value: *v1.NewStructuredValues("amd64", "arm64")},
			}}},
		},
	}}})
	slow := script("sleep 300")
	createPR(ctx, t, tn, &v1.PipelineRun{ObjectMeta: metav1.ObjectMeta{Name: "times-out"}, Spec: v1.PipelineRunSpec{
		Timeouts:     &v1.TimeoutFields{Pipeline: &metav1.Duration{Duration: 8 * time.Second}},
		PipelineSpec: &v1.PipelineSpec{Tasks: []v1.PipelineTask{{Name: "slow", TaskSpec: &slow}}},
	}})

	pr := tn.WaitPipelineRun(ctx, t, ns, "retry-matrix", 5*time.Minute, "done", framework.PipelineRunDone)
	if status, reason := framework.PipelineRunCondition(pr); status != "True" {
		t.Errorf("retry-matrix ended %s/%s, want True", status, reason)
	}
	flakyRun, err := tn.Tekton.TektonV1().TaskRuns(ns).Get(ctx, "retry-matrix-flaky", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(flakyRun.Status.RetriesStatus) != 1 {
		t.Errorf("flaky task has %d retries recorded, want 1 (failed once, then succeeded)", len(flakyRun.Status.RetriesStatus))
	}
	builds := 0
	for _, ref := range pr.Status.ChildReferences {
		if ref.PipelineTaskName == "build" {
			builds++
		}
	}
	if builds != 4 {
		t.Errorf("matrix of 2x2 made %d TaskRuns, want 4", builds)
	}

	pr = tn.WaitPipelineRun(ctx, t, ns, "times-out", 2*time.Minute, "done", framework.PipelineRunDone)
	if status, reason := framework.PipelineRunCondition(pr); status != "False" || reason != string(v1.PipelineRunReasonTimedOut) {
		t.Errorf("times-out ended %s/%s, want False/PipelineRunTimeout", status, reason)
	}
}
