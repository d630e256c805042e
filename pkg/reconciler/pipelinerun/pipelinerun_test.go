package pipelinerun

import (
	"strings"
	"testing"

	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
)

func TestUnservedPipelineFeatureIsNamed(t *testing.T) {
	task := &v1.EmbeddedTask{TaskSpec: v1.TaskSpec{Steps: []v1.Step{{Name: "s", Image: "busybox"}}}}
	cases := []struct {
		name string
		pt   v1.PipelineTask
		want string
	}{
		{name: "taskRef by name", pt: v1.PipelineTask{Name: "a", TaskRef: &v1.TaskRef{Name: "t"}}},
		{name: "embedded task", pt: v1.PipelineTask{Name: "a", TaskSpec: task}},
		{name: "bundle resolver: served", pt: v1.PipelineTask{Name: "a", TaskRef: &v1.TaskRef{ResolverRef: v1.ResolverRef{Resolver: "bundles"}}}},
		{name: "pipeline in pipeline by ref", pt: v1.PipelineTask{Name: "a", PipelineRef: &v1.PipelineRef{Name: "p"}}, want: "pipelineSpec only"},
		{name: "pipeline in pipeline by spec: served", pt: v1.PipelineTask{Name: "a", PipelineSpec: &v1.PipelineSpec{}}},
		{name: "custom task: served as a CustomRun", pt: v1.PipelineTask{Name: "a", TaskRef: &v1.TaskRef{APIVersion: "example.dev/v1", Kind: "Wait"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, spec := range []*v1.PipelineSpec{{Tasks: []v1.PipelineTask{tc.pt}}, {Finally: []v1.PipelineTask{tc.pt}}} {
				err := unservedPipelineFeature(spec)
				if tc.want == "" && err != nil {
					t.Fatalf("unexpected refusal: %v", err)
				}
				if tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
					t.Fatalf("got %v, want an error naming %q", err, tc.want)
				}
			}
		})
	}
}
