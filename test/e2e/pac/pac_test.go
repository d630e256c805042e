//go:build e2e

package pac

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	"knative.dev/pkg/apis"

	"github.com/pipelines-service/pipelines-service/test/e2e/framework"
)

func ci(event, script string) string {
	return pipelineRun(strings.ReplaceAll(event, "_", "-")+"-check", map[string]string{"on-event": "[" + event + "]", "on-target-branch": "[main]"}, script)
}

const showScript = `echo "revision={{ revision }} repo={{ repo_url }} branch={{ source_branch }}"`

// A pull request runs .tekton/pull-request.yaml and a push to main
// .tekton/push.yaml, with PaC's variables filled, and the forge shows a
// pending then a success status on the commit; a failing pipeline shows
// failure, with the failed step's last lines on the pull request and the
// values of the secrets the run reads masked.
func TestPullRequestAndPush(t *testing.T) {
	ctx := context.Background()
	p := newProject(ctx, t, "pac-pr", map[string]string{
		".tekton/pull-request.yaml": ci("pull_request", showScript),
		".tekton/push.yaml":         ci("push", showScript),
		"README.md":                 "an e2e repository\n",
	})
	co := p.owner.Clone(t, p.owner.Name, p.repo)

	head := co.Commit(t, "main", "feature", map[string]string{"src.txt": "one\n"})
	number := p.owner.OpenPullRequest(t, p.owner.Name, p.repo, "feature", "main", "a feature")
	run := p.waitRun(ctx, t, "pull-request-check", head, "succeeded", succeeded)
	script := run.Spec.PipelineSpec.Tasks[0].TaskSpec.Steps[0].Script
	if !strings.Contains(script, "revision="+head) || !strings.Contains(script, "repo="+p.url) || !strings.Contains(script, "branch=feature") {
		t.Errorf("PaC's variables are not filled in the run's script: %q", script)
	}
	if len(p.runs(ctx, t, "push-check", head)) != 0 {
		t.Errorf("the pull request ran the push pipeline")
	}
	p.waitStatus(t, head, "pull-request-check", "pending", "")
	success := p.waitStatus(t, head, "pull-request-check", "success", "")
	if !strings.Contains(success.TargetURL, "/clusters/"+p.tenant.Cluster.String()+"/apis/tekton.dev/v1/namespaces/"+p.ns+"/pipelineruns/"+run.Name) {
		t.Errorf("the status links %q, want the run at the front door", success.TargetURL)
	}

	p.waitRunRecorded(ctx, t, run.Name)

	pushed := co.Commit(t, "main", "main", map[string]string{"src.txt": "two\n"})
	p.waitRun(ctx, t, "push-check", pushed, "succeeded", succeeded)
	p.waitStatus(t, pushed, "push-check", "success", "")
	if len(p.runs(ctx, t, "pull-request-check", pushed)) != 0 {
		t.Errorf("the push ran the pull request pipeline")
	}

	failing := co.Commit(t, "feature", "feature", map[string]string{
		".tekton/pull-request.yaml": ci("pull_request", "echo \"token=$CI_TOKEN\"\necho the-build-broke-here\nexit 3"),
	})
	p.waitRun(ctx, t, "pull-request-check", failing, "failed", failed)
	p.waitStatus(t, failing, "pull-request-check", "failure", "")
	var snippet string
	framework.Eventually(t, time.Minute, "a comment on the pull request with the failed step's last lines", func() (bool, string, error) {
		for _, c := range p.owner.Comments(t, p.owner.Name, p.repo, number) {
			if strings.Contains(c, "the-build-broke-here") {
				snippet = c
				return true, "", nil
			}
		}
		return false, "no such comment yet", nil
	})
	if strings.Contains(snippet, ciToken) {
		t.Errorf("the snippet shows the value of a secret the run reads: %q", snippet)
	}
	if !strings.Contains(snippet, "token=*****") {
		t.Errorf("the snippet does not show the secret masked: %q", snippet)
	}
}

// A pull request from an outsider's fork runs nothing; /ok-to-test from
// the owner runs it, for that commit only: a new push waits for approval
// again. /retest runs the pull request's pipelines, a comment matching a
// pipeline's on-comment runs it, and /cancel cancels it.
func TestOutsiderAndComments(t *testing.T) {
	ctx := context.Background()
	p := newProject(ctx, t, "pac-acl", map[string]string{
		".tekton/pull-request.yaml": ci("pull_request", showScript),
		".tekton/slow.yaml":         pipelineRun("slow", map[string]string{"on-comment": "^/slow"}, "sleep 300"),
	})
	outsider := env.Forge(t).NewUser(t, "outsider")
	outsider.Fork(t, p.owner.Name, p.repo)
	fork := outsider.Clone(t, outsider.Name, p.repo)
	head := fork.Commit(t, "main", "fix", map[string]string{"src.txt": "from an outsider\n"})
	number := outsider.OpenPullRequest(t, p.owner.Name, p.repo, outsider.Name+":fix", "main", "an outsider's fix")

	// PaC answers an outsider's pull request with a status asking for
	// approval, and creates nothing.
	p.waitStatus(t, head, "", "pending", "approval")
	if runs := p.runs(ctx, t, "pull-request-check", head); len(runs) != 0 {
		t.Fatalf("an outsider's pull request ran %d PipelineRuns before approval", len(runs))
	}
	p.owner.Comment(t, p.owner.Name, p.repo, number, "/ok-to-test")
	p.waitRun(ctx, t, "pull-request-check", head, "succeeded", succeeded)
	p.waitStatus(t, head, "pull-request-check", "success", "")

	next := fork.Commit(t, "fix", "fix", map[string]string{"src.txt": "pushed after the approval\n"})
	p.waitStatus(t, next, "", "pending", "approval")
	if runs := p.runs(ctx, t, "pull-request-check", next); len(runs) != 0 {
		t.Fatalf("a push after /ok-to-test ran %d PipelineRuns without a new approval", len(runs))
	}
	p.owner.Comment(t, p.owner.Name, p.repo, number, "/retest")
	p.waitRun(ctx, t, "pull-request-check", next, "succeeded", succeeded)

	p.owner.Comment(t, p.owner.Name, p.repo, number, "/slow")
	slow := p.waitRun(ctx, t, "slow", next, "running", running)
	p.owner.Comment(t, p.owner.Name, p.repo, number, "/cancel slow")
	cancelled := p.waitRun(ctx, t, "slow", next, "cancelled", func(c *apis.Condition) bool {
		return c.IsFalse() && c.Reason == v1.PipelineRunReasonCancelled.String()
	})
	if cancelled.Name != slow.Name {
		t.Errorf("cancelled %s, want the running %s", cancelled.Name, slow.Name)
	}
}

// A Repository's concurrency_limit holds its runs in PaC's queue (pending,
// state queued) until the admission gives them a slot: with a limit of
// one, the two pipelines a push matches never run at once, and both end.
func TestConcurrencyLimit(t *testing.T) {
	ctx := context.Background()
	push := map[string]string{"on-event": "[push]", "on-target-branch": "[main]"}
	p := newProjectWith(ctx, t, "pac-limit", "  concurrency_limit: 1", map[string]string{
		".tekton/first.yaml":  pipelineRun("first", push, "sleep 6"),
		".tekton/second.yaml": pipelineRun("second", push, "sleep 6"),
	})
	co := p.owner.Clone(t, p.owner.Name, p.repo)
	sha := co.Commit(t, "main", "main", map[string]string{"src.txt": "go\n"})
	queued, most := false, 0
	framework.Eventually(t, 4*time.Minute, "both runs of the push succeeded", func() (bool, string, error) {
		runs := append(p.runs(ctx, t, "first", sha), p.runs(ctx, t, "second", sha)...)
		done, active := 0, 0
		var seen []string
		for _, r := range runs {
			c := r.Status.GetCondition(apis.ConditionSucceeded)
			if r.Spec.Status == v1.PipelineRunSpecStatusPending {
				queued = true
			}
			switch {
			case c != nil && c.IsTrue():
				done++
			case c != nil && c.IsFalse():
				return false, "", fmt.Errorf("run %s failed: %s", r.Name, c.Message)
			case r.Spec.Status != v1.PipelineRunSpecStatusPending && r.Status.StartTime != nil:
				active++
			}
			seen = append(seen, fmt.Sprintf("%s %s %v", r.Name, r.Spec.Status, c))
		}
		most = max(most, active)
		return len(runs) == 2 && done == 2, fmt.Sprintf("%v", seen), nil
	})
	if most > 1 {
		t.Errorf("%d runs of a Repository limited to 1 ran at once", most)
	}
	if !queued {
		t.Errorf("no run was ever queued (pending)")
	}
	p.waitStatus(t, sha, "first", "success", "")
	p.waitStatus(t, sha, "second", "success", "")
}

// remoteTaskRun is a .tekton/ PipelineRun on push whose one task is a
// remote task PaC fetches from url (its task annotation) and inlines.
func remoteTaskRun(url string) string {
	return `apiVersion: tekton.dev/v1
kind: PipelineRun
metadata:
  name: remote
  annotations:
    pipelinesascode.tekton.dev/on-event: "[push]"
    pipelinesascode.tekton.dev/on-target-branch: "[main]"
    pipelinesascode.tekton.dev/task: "[` + url + `]"
spec:
  pipelineSpec:
    tasks:
      - name: greet
        taskRef: {name: greet}
`
}

const greetTask = `apiVersion: tekton.dev/v1
kind: Task
metadata: {name: greet}
spec:
  steps:
    - name: greet
      image: docker.io/library/busybox:1.36
      script: echo hello from a remote task
`

// PaC's remote-task annotation fetches a task from the forge (an allowed
// host) and inlines it; one naming a platform address (kcp) is refused by
// the egress check: no run, a failure status on the commit.
func TestRemoteTasks(t *testing.T) {
	ctx := context.Background()
	forge := env.Forge(t)
	p := newProject(ctx, t, "pac-remote", map[string]string{"tasks/greet.yaml": greetTask})
	co := p.owner.Clone(t, p.owner.Name, p.repo)
	raw := forge.URL + "/" + p.owner.Name + "/" + p.repo + "/raw/branch/main/tasks/greet.yaml"
	sha := co.Commit(t, "main", "main", map[string]string{".tekton/remote.yaml": remoteTaskRun(raw)})
	run := p.waitRun(ctx, t, "remote", sha, "succeeded", succeeded)
	if ts := run.Spec.PipelineSpec.Tasks[0].TaskSpec; ts == nil || len(ts.Steps) != 1 || !strings.Contains(ts.Steps[0].Script, "remote task") {
		t.Errorf("the remote task is not inlined in the run: %+v", run.Spec.PipelineSpec.Tasks[0])
	}

	inward := "https://" + env.Stack.Config().HostIP.String() + ":6443/version"
	refused := co.Commit(t, "main", "main", map[string]string{".tekton/remote.yaml": remoteTaskRun(inward)})
	p.waitStatus(t, refused, "", "failure", "")
	if runs := p.runs(ctx, t, "remote", refused); len(runs) != 0 {
		t.Errorf("a remote task on a platform address ran %d PipelineRuns", len(runs))
	}
}
