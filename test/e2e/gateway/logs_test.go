//go:build e2e

package gateway

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/pipelines-service/pipelines-service/test/e2e/framework"
)

const ns = "default"

// TestTknPipelineRunLogsFollow: `tkn pipelinerun logs -f`, started right
// after the hello pipeline is created, prints every task's step output,
// in order, and exits 0 when the run ends; `tkn taskrun logs` of a
// finished TaskRun prints its step's output.
func TestTknPipelineRunLogsFollow(t *testing.T) {
	ctx := context.Background()
	tn := env.NewTenant(ctx, t, "e2e-tkn")
	data, err := os.ReadFile(filepath.Join(env.Stack.Config().RepoRoot, "examples", "pipelinerun.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	pr := &v1.PipelineRun{}
	if err := yaml.UnmarshalStrict(data, pr); err != nil {
		t.Fatal(err)
	}
	pr, err = tn.Tekton.TektonV1().PipelineRuns(ns).Create(ctx, pr, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out, errOut, err := env.Tkn(ctx, t, tn.Kubeconfig, "pipelinerun", "logs", "-f", pr.Name, "-n", ns)
	t.Logf("tkn pipelinerun logs -f %s:\n%s%s", pr.Name, out, errOut)
	if err != nil {
		t.Fatalf("tkn pipelinerun logs -f: %v", err)
	}
	lines := []string{
		"[greet : greet] hello kcp: tekton in kcp",
		"[only-when-many : s] more than one word",
		"[report : s] pipeline said: HELLO KCP!",
	}
	last := -1
	for _, line := range lines {
		i := strings.Index(out, line)
		if i < 0 {
			t.Errorf("the follow did not print %q", line)
			continue
		}
		if i < last {
			t.Errorf("%q printed before the task that runs ahead of it", line)
		}
		last = i
	}

	done := tn.WaitPipelineRun(ctx, t, ns, pr.Name, time.Minute, "done", func(pr *v1.PipelineRun) bool { return pr.IsDone() })
	var greet string
	for _, child := range done.Status.ChildReferences {
		if child.PipelineTaskName == "greet" {
			greet = child.Name
		}
	}
	out, errOut, err = env.Tkn(ctx, t, tn.Kubeconfig, "taskrun", "logs", greet, "-n", ns)
	if err != nil || !strings.Contains(out, "[greet] hello kcp: tekton in kcp") {
		t.Errorf("tkn taskrun logs %s: %v\n%s%s", greet, err, out, errOut)
	}
}

// TestGatewayGoneMidFollow: a follow through a gateway that stops ends
// with an error; once the gateway is back, the next follow prints the
// rest and ends with the run.
func TestGatewayGoneMidFollow(t *testing.T) {
	ctx := context.Background()
	tn := env.NewTenant(ctx, t, "e2e-follow")
	tr := &v1.TaskRun{ObjectMeta: metav1.ObjectMeta{Name: "count"}, Spec: v1.TaskRunSpec{TaskSpec: &v1.TaskSpec{Steps: []v1.Step{{
		Name: "count", Image: "docker.io/library/busybox:1.36",
		Script: "#!/bin/sh\nfor i in $(seq 1 30); do echo line-$i; sleep 1; done\n",
	}}}}}
	if _, err := tn.Tekton.TektonV1().TaskRuns(ns).Create(ctx, tr, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tn.WaitTaskRunRunning(ctx, t, ns, "count", 3*time.Minute)
	t.Cleanup(func() {
		if err := env.Stack.StartGateway(context.Background()); err != nil {
			t.Errorf("restart the gateway: %v", err)
		}
	})

	cmd := exec.CommandContext(ctx, env.Stack.Config().TknBinary(), "taskrun", "logs", "-f", "count", "-n", ns)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+tn.Kubeconfig, "HOME="+t.TempDir())
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stdout)
	seen := 0
	for lines.Scan() {
		if strings.Contains(lines.Text(), "line-") {
			seen++
		}
		if seen == 3 {
			break
		}
	}
	if seen < 3 {
		t.Fatalf("the follow printed %d lines before it ended: %s", seen, stderr.String())
	}
	if err := env.Stack.StopGateway(); err != nil {
		t.Fatal(err)
	}
	var rest strings.Builder
	for lines.Scan() {
		rest.WriteString(lines.Text() + "\n")
	}
	waitErr := cmd.Wait()
	t.Logf("after the gateway stopped, tkn printed:\n%s(stderr) %s(exit) %v", rest.String(), stderr.String(), waitErr)
	if strings.Contains(rest.String(), "line-30") {
		t.Fatal("the follow went on to the end without the gateway")
	}
	if waitErr == nil && stderr.Len() == 0 {
		t.Error("the follow ended without an error when the gateway stopped")
	}

	if err := env.Stack.StartGateway(ctx); err != nil {
		t.Fatal(err)
	}
	out, errOut, err := env.Tkn(ctx, t, tn.Kubeconfig, "taskrun", "logs", "-f", "count", "-n", ns)
	if err != nil || !strings.Contains(out, "line-30") {
		t.Errorf("the follow after the restart: %v\n%s%s", err, out, errOut)
	}
	if status, reason := framework.Condition(tn.WaitTaskRunDone(ctx, t, ns, "count", time.Minute)); status != "True" {
		t.Errorf("count ended %s/%s", status, reason)
	}
}
