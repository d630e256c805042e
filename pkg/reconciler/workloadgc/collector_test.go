package workloadgc

import (
	"testing"

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
