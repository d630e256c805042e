package recorder

import (
	"testing"

	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestSetForRecording(t *testing.T) {
	standalone := &v1.TaskRun{ObjectMeta: metav1.ObjectMeta{Name: "tr", UID: "tr-uid"}}
	setForRecording(standalone, "TaskRun", "c1_default")
	if got := standalone.Annotations[AnnotationResult]; got != "c1_default/results/tr-uid" {
		t.Errorf("standalone TaskRun's result %q", got)
	}
	if standalone.APIVersion != "tekton.dev/v1" || standalone.Kind != "TaskRun" {
		t.Errorf("type %s %s", standalone.APIVersion, standalone.Kind)
	}
	child := &v1.TaskRun{ObjectMeta: metav1.ObjectMeta{Name: "pr-t", UID: "tr2", OwnerReferences: []metav1.OwnerReference{
		{APIVersion: "tekton.dev/v1", Kind: "PipelineRun", Name: "pr", UID: "pr-uid"},
	}}}
	setForRecording(child, "TaskRun", "c1_default")
	if got := child.Annotations[AnnotationResult]; got != "c1_default/results/pr-uid" {
		t.Errorf("a PipelineRun's TaskRun goes to the PipelineRun's result, got %q", got)
	}
}

func TestNeedsRecording(t *testing.T) {
	mk := func(status string, stored bool) *unstructured.Unstructured {
		u := &unstructured.Unstructured{Object: map[string]any{"status": map[string]any{
			"conditions": []any{map[string]any{"type": "Succeeded", "status": status}}}}}
		if stored {
			u.SetAnnotations(map[string]string{AnnotationStored: "true"})
		}
		return u
	}
	for _, tc := range []struct {
		u    *unstructured.Unstructured
		want bool
	}{
		{mk("Unknown", false), false},
		{mk("True", false), true},
		{mk("False", false), true},
		{mk("True", true), false},
		{&unstructured.Unstructured{Object: map[string]any{}}, false},
	} {
		if got := needsRecording(tc.u); got != tc.want {
			t.Errorf("needsRecording(%v) = %v, want %v", tc.u.Object, got, tc.want)
		}
	}
}
