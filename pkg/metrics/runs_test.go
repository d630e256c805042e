package metrics

import (
	"net/http/httptest"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/pipelines-service/pipelines-service/pkg/fleet"
)

// run builds a TaskRun or PipelineRun of workspace ws with a Succeeded
// condition ("" for none) and the given labels and spec.
func testRun(kind, ws, name, succeeded, reason string, spec map[string]any, lbls map[string]string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "tekton.dev/v1", "kind": kind,
		"metadata": map[string]any{"name": name, "namespace": "default", "annotations": map[string]any{"kcp.io/cluster": ws}},
		"spec":     spec,
		"status":   map[string]any{"startTime": "2026-12-05T10:00:00Z"},
	}}
	u.SetLabels(lbls)
	if succeeded != "" {
		_ = unstructured.SetNestedSlice(u.Object, []any{map[string]any{"type": "Succeeded", "status": succeeded, "reason": reason}}, "status", "conditions")
		_ = unstructured.SetNestedField(u.Object, "2026-12-05T10:00:42Z", "status", "completionTime")
	}
	return u
}

type listerOf []runtime.Object

func (l listerOf) List(labels.Selector) ([]runtime.Object, error) { return l, nil }

func TestRunMetricsAreTektons(t *testing.T) {
	taskRef := map[string]any{"taskRef": map[string]any{"name": "build"}}
	inPipeline := map[string]string{"tekton.dev/pipeline": "ci", "tekton.dev/pipelineRun": "ci-1", "tekton.dev/pipelineTask": "compile"}
	type update struct{ old, new *unstructured.Unstructured }
	for _, tc := range []struct {
		name           string
		workspaceLabel bool
		maxWorkspaces  int
		maxLabelValues int
		taskRuns       []update
		pipelineRuns   []update
		family         string
		match          map[string]string
		want           float64
	}{{
		name:     "a TaskRun that succeeds counts once, by Tekton's status",
		taskRuns: []update{{testRun("TaskRun", "ws-a", "tr", "Unknown", "Running", taskRef, nil), testRun("TaskRun", "ws-a", "tr", "True", "Succeeded", taskRef, nil)}},
		family:   "tekton_pipelines_controller_taskrun_total", match: map[string]string{"status": "success"}, want: 1,
	}, {
		name: "an update of a run already done counts nothing (relists, later status writes)",
		taskRuns: []update{{testRun("TaskRun", "ws-a", "tr", "False", "Failed", taskRef, nil), testRun("TaskRun", "ws-a", "tr", "False", "Failed", taskRef, nil)},
			{testRun("TaskRun", "ws-a", "tr", "True", "Succeeded", taskRef, nil), testRun("TaskRun", "ws-a", "tr", "True", "Succeeded", taskRef, nil)}},
		family: "tekton_pipelines_controller_taskrun_total", want: 0,
	}, {
		name:     "the duration is start to completion, under the referenced Task",
		taskRuns: []update{{testRun("TaskRun", "ws-a", "tr", "", "", taskRef, nil), testRun("TaskRun", "ws-a", "tr", "False", "Failed", taskRef, nil)}},
		family:   "tekton_pipelines_controller_taskrun_duration_seconds", match: map[string]string{"status": "failed", "task": "build", "namespace": "default"}, want: 1,
	}, {
		name: "a pipeline's TaskRun goes to pipelinerun_taskrun_duration_seconds, by pipeline task",
		taskRuns: []update{{testRun("TaskRun", "ws-a", "tr", "Unknown", "", map[string]any{"taskSpec": map[string]any{}}, inPipeline),
			testRun("TaskRun", "ws-a", "tr", "True", "Succeeded", map[string]any{"taskSpec": map[string]any{}}, inPipeline)}},
		family: "tekton_pipelines_controller_pipelinerun_taskrun_duration_seconds", match: map[string]string{"pipeline": "ci", "task": "compile"}, want: 1,
	}, {
		name: "a cancelled PipelineRun is cancelled",
		pipelineRuns: []update{{testRun("PipelineRun", "ws-a", "pr", "Unknown", "Running", map[string]any{"pipelineRef": map[string]any{"name": "ci"}}, nil),
			testRun("PipelineRun", "ws-a", "pr", "False", "Cancelled", map[string]any{"pipelineRef": map[string]any{"name": "ci"}}, nil)}},
		family: "tekton_pipelines_controller_pipelinerun_duration_seconds", match: map[string]string{"status": "cancelled", "pipeline": "ci"}, want: 1,
	}, {
		name:           "with the workspace label, runs count per workspace",
		workspaceLabel: true,
		pipelineRuns: []update{{testRun("PipelineRun", "ws-a", "pr", "", "", nil, nil), testRun("PipelineRun", "ws-a", "pr", "True", "Succeeded", nil, nil)},
			{testRun("PipelineRun", "ws-b", "pr", "", "", nil, nil), testRun("PipelineRun", "ws-b", "pr", "True", "Succeeded", nil, nil)}},
		family: "tekton_pipelines_controller_pipelinerun_total", match: map[string]string{"status": "success", "workspace": "ws-b"}, want: 1,
	}, {
		name:           "workspaces beyond the bound count as other",
		workspaceLabel: true, maxWorkspaces: 1,
		pipelineRuns: []update{{testRun("PipelineRun", "ws-a", "pr", "", "", nil, nil), testRun("PipelineRun", "ws-a", "pr", "True", "Succeeded", nil, nil)},
			{testRun("PipelineRun", "ws-b", "pr", "", "", nil, nil), testRun("PipelineRun", "ws-b", "pr", "True", "Succeeded", nil, nil)},
			{testRun("PipelineRun", "ws-c", "pr", "", "", nil, nil), testRun("PipelineRun", "ws-c", "pr", "True", "Succeeded", nil, nil)}},
		family: "tekton_pipelines_controller_pipelinerun_total", match: map[string]string{"workspace": "other"}, want: 2,
	}, {
		name:           "a tenant's ever new Task names count as other beyond the bound",
		maxLabelValues: 1,
		taskRuns: []update{
			{testRun("TaskRun", "ws-a", "tr1", "", "", map[string]any{"taskRef": map[string]any{"name": "n1"}}, nil), testRun("TaskRun", "ws-a", "tr1", "True", "Succeeded", map[string]any{"taskRef": map[string]any{"name": "n1"}}, nil)},
			{testRun("TaskRun", "ws-a", "tr2", "", "", map[string]any{"taskRef": map[string]any{"name": "n2"}}, nil), testRun("TaskRun", "ws-a", "tr2", "True", "Succeeded", map[string]any{"taskRef": map[string]any{"name": "n2"}}, nil)},
			{testRun("TaskRun", "ws-a", "tr3", "", "", map[string]any{"taskRef": map[string]any{"name": "n3"}}, nil), testRun("TaskRun", "ws-a", "tr3", "True", "Succeeded", map[string]any{"taskRef": map[string]any{"name": "n3"}}, nil)},
		},
		family: "tekton_pipelines_controller_taskrun_duration_seconds", match: map[string]string{"task": "other"}, want: 2,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			m := New(Options{WorkspaceLabel: tc.workspaceLabel, MaxWorkspaces: tc.maxWorkspaces, MaxLabelValues: tc.maxLabelValues})
			m.SetLeading(true)
			for _, u := range tc.taskRuns {
				m.Runs.onUpdate(m.Runs.taskRunDone)(u.old, u.new)
			}
			for _, u := range tc.pipelineRuns {
				m.Runs.onUpdate(m.Runs.pipelineRunDone)(u.old, u.new)
			}
			families, err := Gather(m.Gatherer())
			if err != nil {
				t.Fatal(err)
			}
			if got := families.Total(tc.family, tc.match); got != tc.want {
				t.Errorf("%s%v = %v, want %v (series %v)", tc.family, tc.match, got, tc.want, families.Samples(tc.family, nil))
			}
		})
	}
}

func TestRunningGaugesCountTheCaches(t *testing.T) {
	for _, workspaceLabel := range []bool{false, true} {
		m := New(Options{WorkspaceLabel: workspaceLabel})
		m.SetLeading(true)
		m.Runs.taskRuns = listerOf{
			testRun("TaskRun", "ws-a", "a", "", "", nil, nil),
			testRun("TaskRun", "ws-a", "b", "Unknown", "Running", nil, nil),
			testRun("TaskRun", "ws-b", "c", "Unknown", "Pending", nil, nil),
			testRun("TaskRun", "ws-b", "d", "True", "Succeeded", nil, nil),
		}
		m.Register(m.Admission(func() fleet.AdmissionState {
			return fleet.AdmissionState{
				Running: map[string]fleet.AdmissionSlot{"1": {Workspace: "ws-a", Cluster: "workload-1"}, "2": {Workspace: "ws-a", Cluster: "workload-1"}},
				Waiting: map[string]fleet.AdmissionSlot{"3": {Workspace: "ws-b", Cluster: "workload-2"}},
			}
		}))
		// Through the handler and the exposition format, as a scraper
		// reads it.
		rec := httptest.NewRecorder()
		m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		families, err := Parse(rec.Body)
		if err != nil {
			t.Fatal(err)
		}
		if got := families.Total("tekton_pipelines_controller_running_taskruns", nil); got != 3 {
			t.Errorf("workspace label %v: running_taskruns = %v, want 3", workspaceLabel, got)
		}
		if got := families.Total("tekton_pipelines_controller_running_pipelineruns", nil); got != 0 || (!workspaceLabel && len(families.Samples("tekton_pipelines_controller_running_pipelineruns", nil)) != 1) {
			t.Errorf("workspace label %v: running_pipelineruns = %v %v, want 0, present without the workspace label", workspaceLabel, got, families.Samples("tekton_pipelines_controller_running_pipelineruns", nil))
		}
		if got := families.Total("pipelines_service_admission_taskruns", map[string]string{"state": "running", "cluster": "workload-1"}); got != 2 {
			t.Errorf("workspace label %v: admitted on workload-1 = %v, want 2", workspaceLabel, got)
		}
		if workspaceLabel {
			if got := families.Total("tekton_pipelines_controller_running_taskruns", map[string]string{"workspace": "ws-b"}); got != 1 {
				t.Errorf("running_taskruns{workspace=ws-b} = %v, want 1", got)
			}
			if got := families.Total("pipelines_service_admission_taskruns", map[string]string{"state": "queued", "workspace": "ws-b"}); got != 1 {
				t.Errorf("queued in ws-b = %v, want 1", got)
			}
		}
	}
}

func TestAStandbyReplicaRecordsNoRuns(t *testing.T) {
	m := New(Options{WorkspaceLabel: true})
	m.Runs.taskRuns = listerOf{testRun("TaskRun", "ws-a", "a", "", "", nil, nil)}
	m.Runs.onUpdate(m.Runs.taskRunDone)(testRun("TaskRun", "ws-a", "b", "", "", nil, nil), testRun("TaskRun", "ws-a", "b", "True", "Succeeded", nil, nil))
	families, err := Gather(m.Gatherer())
	if err != nil {
		t.Fatal(err)
	}
	for _, family := range []string{"tekton_pipelines_controller_taskrun_total", "tekton_pipelines_controller_running_taskruns"} {
		if s := families.Samples(family, nil); len(s) != 0 {
			t.Errorf("standby exports %s %v, want nothing (the leader counts)", family, s)
		}
	}
	if got := families.Total("pipelines_service_leader", nil); got != 0 {
		t.Errorf("pipelines_service_leader = %v on a standby, want 0", got)
	}
}
