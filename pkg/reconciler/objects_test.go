package reconciler

import (
	"testing"

	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// TestDecodeReadsFieldsAsTektonsWebhookDoes: Tekton's examples write
// "mountpath"; Tekton's webhook (encoding/json) reads it as mountPath.
func TestDecodeReadsFieldsAsTektonsWebhookDoes(t *testing.T) {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "tekton.dev/v1", "kind": "TaskRun",
		"metadata": map[string]any{"name": "run"},
		"spec": map[string]any{"taskSpec": map[string]any{"steps": []any{map[string]any{
			"image":      "busybox",
			"workspaces": []any{map[string]any{"name": "creds", "mountpath": "/creds"}},
		}}}},
	}}
	tr := &v1.TaskRun{}
	if err := Decode(u, tr); err != nil {
		t.Fatal(err)
	}
	if got := tr.Spec.TaskSpec.Steps[0].Workspaces[0].MountPath; got != "/creds" {
		t.Fatalf("mountPath = %q, want /creds", got)
	}
}
