//go:build e2e

package resolution

import (
	"context"
	"testing"
	"time"

	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pipelines-service/pipelines-service/test/e2e/framework"
)

// TestGitResolver runs a Task, a Pipeline and a StepAction kept in a
// repository of the stack's forge: by clone (url) at a branch and at a
// commit, and through the forge's API (org/repo) with the tenant's token.
func TestGitResolver(t *testing.T) {
	ctx := context.Background()
	tn := env.NewTenant(ctx, t, "git")
	user := env.Forge(t).NewUser(t, "e2e-git")
	sha := user.Push(t, "catalog", false, map[string]string{
		"task/greet.yaml": greetTask("greet"),
		"stepaction/say.yaml": `apiVersion: tekton.dev/v1beta1
kind: StepAction
metadata:
  name: say
spec:
  params:
  - name: what
  image: busybox
  env:
  - name: WHAT
    value: $(params.what)
  script: echo "$WHAT" > /tekton/results/greeting
`,
		"pipeline/greet.yaml": `apiVersion: tekton.dev/v1
kind: Pipeline
metadata:
  name: greet-pipeline
spec:
  params:
  - name: who
  tasks:
  - name: greet
    taskRef:
      resolver: git
      params:
      - {name: url, value: ` + user.CloneURL("catalog") + `}
      - {name: revision, value: main}
      - {name: pathInRepo, value: task/greet.yaml}
    params:
    - {name: who, value: $(params.who)}
  results:
  - name: greeting
    value: $(tasks.greet.results.greeting)
`,
	})

	t.Run("clone by url at a branch", func(t *testing.T) {
		tr := runTask(ctx, t, tn, "clone", ref("git", "url", user.CloneURL("catalog"), "revision", "main", "pathInRepo", "task/greet.yaml"))
		wantSucceeded(t, tr)
		if src := tr.Status.Provenance.RefSource; src == nil || src.Digest["sha1"] != sha || src.EntryPoint != "task/greet.yaml" {
			t.Errorf("refSource = %+v, want sha1 %s of task/greet.yaml", src, sha)
		}
	})
	t.Run("clone by url at a commit", func(t *testing.T) {
		wantSucceeded(t, runTask(ctx, t, tn, "sha", ref("git", "url", user.CloneURL("catalog"), "revision", sha, "pathInRepo", "task/greet.yaml")))
	})
	t.Run("forge API with the tenant's token", func(t *testing.T) {
		secret(ctx, t, tn, ns, "forge-token", map[string]string{"token": user.Token})
		tr := runTask(ctx, t, tn, "api", ref("git", "org", user.Name, "repo", "catalog", "revision", "main",
			"pathInRepo", "task/greet.yaml", "token", "forge-token"))
		wantSucceeded(t, tr)
		if src := tr.Status.Provenance.RefSource; src == nil || src.Digest["sha1"] != sha {
			t.Errorf("refSource = %+v, want sha1 %s", src, sha)
		}
	})
	t.Run("a pipeline and its task from git", func(t *testing.T) {
		pr := &v1.PipelineRun{
			ObjectMeta: metav1.ObjectMeta{GenerateName: "git-pipeline-"},
			Spec: v1.PipelineRunSpec{
				PipelineRef: &v1.PipelineRef{ResolverRef: ref("git", "url", user.CloneURL("catalog"), "revision", "main", "pathInRepo", "pipeline/greet.yaml")},
				Params:      v1.Params{{Name: "who", Value: *v1.NewStructuredValues("pipeline")}},
			},
		}
		created, err := tn.Tekton.TektonV1().PipelineRuns(ns).Create(ctx, pr, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		done := tn.WaitPipelineRun(ctx, t, ns, created.Name, 4*time.Minute, "done", framework.PipelineRunDone)
		if status, reason := framework.PipelineRunCondition(done); status != "True" {
			t.Fatalf("PipelineRun %s: %s %s", done.Name, status, reason)
		}
		if len(done.Status.Results) != 1 || done.Status.Results[0].Value.StringVal != "hello pipeline\n" {
			t.Errorf("pipeline results = %+v, want the greeting of its git task", done.Status.Results)
		}
		if src := done.Status.Provenance; src == nil || src.RefSource == nil || src.RefSource.Digest["sha1"] != sha {
			t.Errorf("PipelineRun provenance = %+v, want the pipeline's commit %s", src, sha)
		}
	})
	t.Run("a step from a StepAction in git", func(t *testing.T) {
		tr := &v1.TaskRun{
			ObjectMeta: metav1.ObjectMeta{GenerateName: "stepaction-"},
			Spec: v1.TaskRunSpec{TaskSpec: &v1.TaskSpec{
				Results: []v1.TaskResult{{Name: "greeting"}},
				Steps: []v1.Step{{Name: "say", Ref: &v1.Ref{ResolverRef: ref("git", "url", user.CloneURL("catalog"), "revision", "main",
					"pathInRepo", "stepaction/say.yaml")}, Params: v1.Params{{Name: "what", Value: *v1.NewStructuredValues("hello step")}}}},
			}},
		}
		created, err := tn.Tekton.TektonV1().TaskRuns(ns).Create(ctx, tr, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		wantSucceeded(t, tn.WaitTaskRunDone(ctx, t, ns, created.Name, 3*time.Minute))
	})
}

// TestPrivateRepository resolves a Task of a private repository with the
// token a tenant keeps in its own namespace; another tenant, without it,
// gets a failure that names the repository and the reason.
func TestPrivateRepository(t *testing.T) {
	ctx := context.Background()
	owner := env.NewTenant(ctx, t, "private")
	other := env.NewTenant(ctx, t, "stranger")
	user := env.Forge(t).NewUser(t, "e2e-private")
	user.Push(t, "secret-tasks", true, map[string]string{"greet.yaml": greetTask("greet")})
	secret(ctx, t, owner, ns, "forge", map[string]string{"token": user.Token})

	api := ref("git", "org", user.Name, "repo", "secret-tasks", "revision", "main", "pathInRepo", "greet.yaml", "token", "forge")
	clone := ref("git", "url", user.CloneURL("secret-tasks"), "revision", "main", "pathInRepo", "greet.yaml", "gitToken", "forge")

	wantSucceeded(t, runTask(ctx, t, owner, "private-api", api))
	wantSucceeded(t, runTask(ctx, t, owner, "private-clone", clone))

	// The other tenant names the same secret: its namespace has none.
	wantFailed(t, runTask(ctx, t, other, "stranger-api", api), string(v1.TaskRunReasonFailedResolution),
		user.Name+"/secret-tasks", "secret forge not found")
	wantFailed(t, runTask(ctx, t, other, "stranger-clone", clone), string(v1.TaskRunReasonFailedResolution),
		user.CloneURL("secret-tasks"), "forge not found")
	// Without a token at all the forge refuses the clone.
	anonymous := ref("git", "url", user.CloneURL("secret-tasks"), "revision", "main", "pathInRepo", "greet.yaml")
	wantFailed(t, runTask(ctx, t, other, "stranger-anonymous", anonymous), string(v1.TaskRunReasonFailedResolution),
		user.CloneURL("secret-tasks"), "authentication required")
}
