//go:build e2e

package pipelinerun

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/kcp-dev/logicalcluster/v3"
	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pipelines-service/pipelines-service/pkg/workload"
	"github.com/pipelines-service/pipelines-service/test/e2e/framework"
)

// TestConfigMapSecretAndEmptyDirWorkspaces: a pipeline reads a configmap
// and a secret of the tenant workspace through workspaces; the controller
// carries them to the workload namespace for the run and removes them when
// it is done. A missing secret fails the TaskRun with Tekton's reason.
func TestConfigMapSecretAndEmptyDirWorkspaces(t *testing.T) {
	ctx := context.Background()
	tn := env.NewTenant(ctx, t, "e2e-ws")
	if _, err := tn.Kube.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "settings"}, Data: map[string]string{"greeting": "bonjour"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := tn.Kube.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "token"}, StringData: map[string]string{"token": "s3cr3t"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	task := v1.EmbeddedTask{TaskSpec: v1.TaskSpec{
		Workspaces: []v1.WorkspaceDeclaration{{Name: "config", ReadOnly: true}, {Name: "creds", ReadOnly: true}, {Name: "scratch"}},
		Results:    []v1.TaskResult{{Name: "out"}},
		Steps: []v1.Step{
			{Name: "write", Image: "busybox", Script: `printf "%s:%s" "$(cat $(workspaces.config.path)/greeting)" "$(wc -c < $(workspaces.creds.path)/token)" > $(workspaces.scratch.path)/out`},
			{Name: "read", Image: "busybox", Script: `cat $(workspaces.scratch.path)/out > $(results.out.path)`},
		},
	}}
	pr := &v1.PipelineRun{ObjectMeta: metav1.ObjectMeta{Name: "workspaces"}, Spec: v1.PipelineRunSpec{
		Workspaces: []v1.WorkspaceBinding{
			{Name: "config", ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}}},
			{Name: "creds", Secret: &corev1.SecretVolumeSource{SecretName: "token"}},
			{Name: "scratch", EmptyDir: &corev1.EmptyDirVolumeSource{}},
		},
		PipelineSpec: &v1.PipelineSpec{
			Workspaces: []v1.PipelineWorkspaceDeclaration{{Name: "config"}, {Name: "creds"}, {Name: "scratch"}},
			Tasks: []v1.PipelineTask{{Name: "use", TaskSpec: &task,
				Workspaces: []v1.WorkspacePipelineTaskBinding{{Name: "config"}, {Name: "creds"}, {Name: "scratch"}}}},
			Results: []v1.PipelineResult{{Name: "out", Value: *v1.NewStructuredValues("$(tasks.use.results.out)")}},
		},
	}}
	createPR(ctx, t, tn, pr)
	done := tn.WaitPipelineRun(ctx, t, ns, "workspaces", 3*time.Minute, "done", framework.PipelineRunDone)
	if status, reason := framework.PipelineRunCondition(done); status != "True" {
		t.Fatalf("PipelineRun ended %s/%s", status, reason)
	}
	if len(done.Status.Results) != 1 || done.Status.Results[0].Value.StringVal != "bonjour:6" {
		t.Errorf("pipeline results = %+v, want out=bonjour:6 (configmap value, secret length)", done.Status.Results)
	}
	tr, err := tn.Tekton.TektonV1().TaskRuns(ns).Get(ctx, "workspaces-use", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	wns := workload.Namespace(logicalcluster.From(tr), ns)
	framework.Eventually(t, 30*time.Second, "carried secret and configmap removed after the run", func() (bool, string, error) {
		secrets, err := env.Workload.CoreV1().Secrets(wns).List(ctx, metav1.ListOptions{LabelSelector: workload.LabelTaskRunUID + "=" + string(tr.UID)})
		if err != nil {
			return false, err.Error(), nil
		}
		cms, err := env.Workload.CoreV1().ConfigMaps(wns).List(ctx, metav1.ListOptions{LabelSelector: workload.LabelTaskRunUID + "=" + string(tr.UID)})
		if err != nil {
			return false, err.Error(), nil
		}
		return len(secrets.Items)+len(cms.Items) == 0, "copies remain", nil
	})

	missing := &v1.TaskRun{ObjectMeta: metav1.ObjectMeta{Name: "missing-secret"}, Spec: v1.TaskRunSpec{
		Workspaces: []v1.WorkspaceBinding{{Name: "creds", Secret: &corev1.SecretVolumeSource{SecretName: "nope"}}},
		TaskSpec: &v1.TaskSpec{Workspaces: []v1.WorkspaceDeclaration{{Name: "creds"}},
			Steps: []v1.Step{{Name: "s", Image: "busybox", Script: "true"}}},
	}}
	if _, err := tn.Tekton.TektonV1().TaskRuns(ns).Create(ctx, missing, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	failed := tn.WaitTaskRunDone(ctx, t, ns, "missing-secret", time.Minute)
	cond := failed.Status.GetCondition("Succeeded")
	if cond.Reason != string(v1.TaskRunReasonCreateContainerConfigError) || !strings.Contains(cond.Message, `secrets "nope"`) {
		t.Errorf("missing secret: %s %q, want CreateContainerConfigError naming the secret", cond.Reason, cond.Message)
	}
}
