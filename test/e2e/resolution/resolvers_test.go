//go:build e2e

package resolution

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pipelines-service/pipelines-service/test/e2e/framework"
)

// TestHTTPResolver fetches Tasks by URL from the forge's raw files: a
// public one, with its digest checked, and a private one with basic auth
// from the tenant's secret.
func TestHTTPResolver(t *testing.T) {
	ctx := context.Background()
	tn := env.NewTenant(ctx, t, "http")
	user := env.Forge(t).NewUser(t, "e2e-http")
	user.Push(t, "public", false, map[string]string{"greet.yaml": greetTask("greet")})
	user.Push(t, "private", true, map[string]string{"greet.yaml": greetTask("greet")})
	sum := sha256.Sum256([]byte(greetTask("greet")))

	wantSucceeded(t, runTask(ctx, t, tn, "http", ref("http", "url", user.RawURL("public", "greet.yaml"), "digest", "sha256:"+hex.EncodeToString(sum[:]))))
	wantFailed(t, runTask(ctx, t, tn, "http-digest", ref("http", "url", user.RawURL("public", "greet.yaml"), "digest", "sha256:"+hex.EncodeToString(make([]byte, 32)))),
		string(v1.TaskRunReasonFailedResolution), "digest mismatch")

	secret(ctx, t, tn, ns, "forge-basic", map[string]string{"password": user.Token})
	wantSucceeded(t, runTask(ctx, t, tn, "http-auth", ref("http", "url", user.RawURL("private", "greet.yaml"),
		"http-username", user.Name, "http-password-secret", "forge-basic", "http-password-secret-key", "password")))
	wantFailed(t, runTask(ctx, t, tn, "http-noauth", ref("http", "url", user.RawURL("private", "greet.yaml"))),
		string(v1.TaskRunReasonFailedResolution), user.RawURL("private", "greet.yaml"), "404")
}

// TestBundlesResolver pushes a Task and a Pipeline as a Tekton bundle to
// the stack's registry with tkn, and runs both from it.
func TestBundlesResolver(t *testing.T) {
	ctx := context.Background()
	tn := env.NewTenant(ctx, t, "bundles")
	dir := t.TempDir()
	pipeline := `apiVersion: tekton.dev/v1
kind: Pipeline
metadata:
  name: greet-pipeline
spec:
  tasks:
  - name: greet
    taskRef:
      resolver: bundles
      params:
      - {name: bundle, value: BUNDLE}
      - {name: name, value: greet}
      - {name: kind, value: task}
`
	bundle := env.Stack.Config().RegistryAddr + "/e2e/" + tn.Name + "/catalog:v1"
	for name, content := range map[string]string{"task.yaml": greetTask("greet"), "pipeline.yaml": strings.ReplaceAll(pipeline, "BUNDLE", bundle)} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, errOut, err := env.Tkn(ctx, t, tn.Kubeconfig, "bundle", "push", bundle, "-f", filepath.Join(dir, "task.yaml"), "-f", filepath.Join(dir, "pipeline.yaml"))
	if err != nil {
		t.Fatalf("tkn bundle push: %v\n%s%s", err, out, errOut)
	}

	wantSucceeded(t, runTask(ctx, t, tn, "bundle", ref("bundles", "bundle", bundle, "name", "greet", "kind", "task")))
	pr := &v1.PipelineRun{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "bundle-pipeline-"},
		Spec:       v1.PipelineRunSpec{PipelineRef: &v1.PipelineRef{ResolverRef: ref("bundles", "bundle", bundle, "name", "greet-pipeline", "kind", "pipeline")}},
	}
	created, err := tn.Tekton.TektonV1().PipelineRuns(ns).Create(ctx, pr, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	done := tn.WaitPipelineRun(ctx, t, ns, created.Name, 4*time.Minute, "done", framework.PipelineRunDone)
	if status, reason := framework.PipelineRunCondition(done); status != "True" {
		t.Fatalf("PipelineRun %s from a bundle: %s %s", done.Name, status, reason)
	}
	wantFailed(t, runTask(ctx, t, tn, "bundle-missing", ref("bundles", "bundle", bundle, "name", "nothing", "kind", "task")),
		string(v1.TaskRunReasonFailedResolution), "could not find object in image with kind: task and name: nothing")
}

// TestClusterResolver reaches a Task in another namespace of the same
// workspace, from a TaskRun and from a pipeline task; the same reference
// made by another tenant finds nothing, and a namespace the tenant blocks
// is refused.
func TestClusterResolver(t *testing.T) {
	ctx := context.Background()
	owner := env.NewTenant(ctx, t, "cluster")
	other := env.NewTenant(ctx, t, "cluster-other")
	namespace(ctx, t, owner, "shared")
	owner.Apply(ctx, t, strings.Replace(greetTask("greet"), "  name: greet\n", "  name: greet\n  namespace: shared\n", 1))
	shared := ref("cluster", "kind", "task", "name", "greet", "namespace", "shared")

	tr := runTask(ctx, t, owner, "cluster", shared)
	wantSucceeded(t, tr)
	if src := tr.Status.Provenance.RefSource; src == nil || src.URI == "" {
		t.Errorf("refSource = %+v, want the Task's identifier", src)
	}
	pr := &v1.PipelineRun{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "cluster-pipeline-"},
		Spec: v1.PipelineRunSpec{PipelineSpec: &v1.PipelineSpec{Tasks: []v1.PipelineTask{{
			Name: "greet", TaskRef: &v1.TaskRef{ResolverRef: shared},
		}}}},
	}
	created, err := owner.Tekton.TektonV1().PipelineRuns(ns).Create(ctx, pr, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	done := owner.WaitPipelineRun(ctx, t, ns, created.Name, 4*time.Minute, "done", framework.PipelineRunDone)
	if status, reason := framework.PipelineRunCondition(done); status != "True" {
		t.Fatalf("PipelineRun %s with a cluster-resolved task: %s %s", done.Name, status, reason)
	}

	// Another workspace: namespace shared is its own, and empty.
	namespace(ctx, t, other, "shared")
	wantFailed(t, runTask(ctx, t, other, "cluster-stranger", shared), string(v1.TaskRunReasonFailedResolution), `"greet" not found`)

	resolverConfig(ctx, t, owner, "cluster-resolver-config", map[string]string{"blocked-namespaces": "shared"})
	wantFailed(t, runTask(ctx, t, owner, "cluster-blocked", shared), string(v1.TaskRunReasonFailedResolution), "shared")
}
