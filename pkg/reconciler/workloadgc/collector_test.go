package workloadgc

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/pipelines-service/pipelines-service/pkg/fleet"
	"github.com/pipelines-service/pipelines-service/pkg/reconciler/placement"
	"github.com/pipelines-service/pipelines-service/pkg/workload"
)

func taskRun(uid, cluster, reason string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{"metadata": map[string]any{"name": "run", "uid": uid}}}
	if cluster != "" {
		u.SetAnnotations(map[string]string{fleet.AnnotationCluster: cluster})
	}
	if reason != "" {
		u.Object["status"] = map[string]any{"conditions": []any{map[string]any{"type": "Succeeded", "status": "False", "reason": reason}}}
	}
	return u
}

func TestUnaccountedByTaskRun(t *testing.T) {
	pod := &metav1.ObjectMeta{Name: "run-pod", Labels: map[string]string{workload.LabelTaskRunUID: "uid-1"}}
	tests := []struct {
		name string
		tr   *unstructured.Unstructured
		want bool
	}{
		{name: "TaskRun gone", tr: nil, want: true},
		{name: "another TaskRun of the same name", tr: taskRun("uid-2", "a", ""), want: true},
		{name: "placed here", tr: taskRun("uid-1", "a", ""), want: false},
		{name: "placement not recorded yet", tr: taskRun("uid-1", "", ""), want: false},
		{name: "moved to another cluster", tr: taskRun("uid-1", "b", ""), want: true},
		{name: "failed here for another reason (logs stay)", tr: taskRun("uid-1", "a", "Failed"), want: false},
		{name: "lost with this cluster", tr: taskRun("uid-1", "a", placement.ReasonWorkloadClusterLost), want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := unaccountedByTaskRun(pod, tt.tr, "a"); got != tt.want {
				t.Fatalf("unaccountedByTaskRun() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestEmptyNamespaceGoes(t *testing.T) {
	running := func(cluster string) *unstructured.Unstructured { return taskRun("u", cluster, "") }
	done := func(cluster string) *unstructured.Unstructured {
		u := taskRun("u", cluster, "")
		u.Object["status"] = map[string]any{"conditions": []any{map[string]any{"type": "Succeeded", "status": "True", "reason": "Succeeded"}}}
		return u
	}
	const grace = 2 * time.Minute
	tests := []struct {
		name  string
		runs  []*unstructured.Unstructured
		empty time.Duration
		want  bool
	}{
		{name: "a tenant between runs keeps it", empty: 30 * time.Second, want: false},
		{name: "a tenant between runs, past the grace", empty: grace, want: true},
		{name: "a run here still to start or running", runs: []*unstructured.Unstructured{running("a")}, empty: time.Hour, want: false},
		{name: "a run not placed yet may come here", runs: []*unstructured.Unstructured{running("")}, empty: time.Hour, want: false},
		{name: "finished runs here: the grace", runs: []*unstructured.Unstructured{done("a")}, empty: 10 * time.Second, want: false},
		{name: "finished runs here, past the grace", runs: []*unstructured.Unstructured{done("a")}, empty: grace, want: true},
		{name: "the runs moved to another cluster: at once", runs: []*unstructured.Unstructured{running("b"), done("a")}, want: true},
		{name: "lost with this cluster: at once", runs: []*unstructured.Unstructured{taskRun("u", "a", placement.ReasonWorkloadClusterLost)}, want: true},
		{name: "moved, but one still here", runs: []*unstructured.Unstructured{running("b"), running("a")}, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := namespaceIdle(tt.runs, "a", tt.empty, grace); got != tt.want {
				t.Fatalf("namespaceIdle() = %v, want %v", got, tt.want)
			}
		})
	}
}
