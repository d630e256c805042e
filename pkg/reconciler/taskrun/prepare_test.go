package taskrun

import (
	"strings"
	"testing"

	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	corev1 "k8s.io/api/core/v1"
)

func TestUnservedTaskRunFeatureIsNamed(t *testing.T) {
	cases := []struct {
		name string
		spec v1.TaskRunSpec
		want string
	}{
		{name: "plain taskRef", spec: v1.TaskRunSpec{TaskRef: &v1.TaskRef{Name: "t"}}},
		{name: "emptyDir and secret workspaces", spec: v1.TaskRunSpec{Workspaces: []v1.WorkspaceBinding{
			{Name: "a", EmptyDir: &corev1.EmptyDirVolumeSource{}}, {Name: "b", Secret: &corev1.SecretVolumeSource{SecretName: "s"}}}}},
		{name: "git resolver: served", spec: v1.TaskRunSpec{TaskRef: &v1.TaskRef{ResolverRef: v1.ResolverRef{Resolver: "git"}}}},
		{name: "custom task", spec: v1.TaskRunSpec{TaskRef: &v1.TaskRef{APIVersion: "example.dev/v1", Kind: "Wait"}}, want: "custom task example.dev/v1 Wait"},
		{name: "pvc workspace", spec: v1.TaskRunSpec{Workspaces: []v1.WorkspaceBinding{{Name: "src", PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "c"}}}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := unservedTaskRunFeature(&v1.TaskRun{Spec: tc.spec})
			if tc.want == "" && err != nil {
				t.Fatalf("unexpected refusal: %v", err)
			}
			if tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "not served by pipelines-service yet")) {
				t.Fatalf("got %v, want an error naming %q", err, tc.want)
			}
		})
	}
}
