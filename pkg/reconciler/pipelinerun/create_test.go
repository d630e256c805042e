package pipelinerun

import (
	"context"
	"testing"

	"github.com/tektoncd/pipeline/pkg/apis/config"
	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestChildTaskRunsAreBornDefaulted: a TaskRun the PipelineRun creates
// carries the labels Tekton's defaulting gives it, so that its own first
// reconcile (which runs TaskRun.SetDefaults) has no metadata to write.
func TestChildTaskRunsAreBornDefaulted(t *testing.T) {
	cfg := config.FromContextOrDefaults(context.Background())
	cfg.Defaults.DefaultManagedByLabelValue = "pipelines-service"
	ctx := config.ToContext(context.Background(), cfg)
	pr := &v1.PipelineRun{ObjectMeta: metav1.ObjectMeta{Name: "pr", Namespace: "default", UID: "uid-1"}}
	for _, tc := range []struct {
		name     string
		specMeta *v1.PipelineTaskMetadata
		want     string
	}{
		{name: "platform default", want: "pipelines-service"},
		{name: "the tenant's own label wins", specMeta: &v1.PipelineTaskMetadata{Labels: map[string]string{v1.ManagedByLabelKey: "mine"}}, want: "mine"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := &v1.TaskRun{ObjectMeta: childMeta(pr, "pr-a", v1.PipelineTask{Name: "a"}, false, tc.specMeta)}
			defaultManagedBy(ctx, &tr.ObjectMeta)
			if got := tr.Labels[v1.ManagedByLabelKey]; got != tc.want {
				t.Errorf("managed-by = %q, want %q", got, tc.want)
			}
			reconciled := tr.DeepCopy()
			reconciled.SetDefaults(ctx)
			if !equality.Semantic.DeepEqual(tr.Labels, reconciled.Labels) || !equality.Semantic.DeepEqual(tr.Annotations, reconciled.Annotations) {
				t.Errorf("the TaskRun's reconcile would write metadata: labels %v -> %v, annotations %v -> %v",
					tr.Labels, reconciled.Labels, tr.Annotations, reconciled.Annotations)
			}
		})
	}
}
