//go:build e2e

package pac

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"knative.dev/pkg/apis"

	"github.com/pipelines-service/pipelines-service/pkg/pac"
	"github.com/pipelines-service/pipelines-service/pkg/reconciler/repository"
	"github.com/pipelines-service/pipelines-service/test/e2e/framework"
)

// project is a tenant's repository on the forge with its Repository in
// the tenant's workspace and the forge's webhook to the service.
type project struct {
	tenant *framework.Tenant
	owner  *framework.ForgeUser
	repo   string
	url    string
	ns     string
	secret string
}

// pipelineRun is a .tekton/ file: a PipelineRun named name for the
// annotations, whose one step runs script (PaC's variables filled).
func pipelineRun(name string, annotations map[string]string, script string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: tekton.dev/v1\nkind: PipelineRun\nmetadata:\n  name: %s\n  annotations:\n", name)
	for k, v := range annotations {
		fmt.Fprintf(&b, "    pipelinesascode.tekton.dev/%s: %q\n", k, v)
	}
	fmt.Fprintf(&b, `spec:
  pipelineSpec:
    tasks:
      - name: check
        taskSpec:
          steps:
            - name: run
              image: docker.io/library/busybox:1.36
              env:
                - name: CI_TOKEN
                  valueFrom:
                    secretKeyRef: {name: ci-secret, key: token}
              script: |
%s
`, indent(script, "                "))
	return b.String()
}

func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i := range lines {
		lines[i] = prefix + lines[i]
	}
	return strings.Join(lines, "\n")
}

const ciToken = "ci-token-value-93b1f"

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// newProject pushes files to a new repository of a new forge user, and
// gives a new tenant a Repository for it, accepted, with the forge's
// webhook posting to the service's intake.
func newProject(ctx context.Context, t *testing.T, prefix string, files map[string]string) *project {
	t.Helper()
	return newProjectWith(ctx, t, prefix, "", files)
}

// newProjectWith is newProject with more of the Repository's spec (YAML
// lines at the spec's indentation).
func newProjectWith(ctx context.Context, t *testing.T, prefix, spec string, files map[string]string) *project {
	t.Helper()
	forge := env.Forge(t)
	p := &project{tenant: env.NewTenant(ctx, t, prefix), owner: forge.NewUser(t, prefix), repo: "app", secret: randomHex(16)}
	p.owner.Push(t, p.repo, false, files)
	p.url = forge.URL + "/" + p.owner.Name + "/" + p.repo
	p.ns = framework.CreateNamespace(ctx, t, p.tenant.Kube, "pac")
	p.createSecrets(ctx, t, p.tenant, p.ns, p.owner.Token, p.secret)
	applyRepository(ctx, t, p.tenant, p.ns, "app", p.url, forge.URL, spec)
	waitAccepted(ctx, t, p.tenant, p.ns, "app", metav1.ConditionTrue, repository.ReasonAccepted)
	p.owner.AddWebhook(t, p.owner.Name, p.repo, env.Stack.Config().PipelinesAsCodeURL(), p.secret)
	return p
}

// createSecrets makes the forge token and webhook secret ("forge") and the
// secret the pipelines read ("ci-secret") in namespace ns.
func (p *project) createSecrets(ctx context.Context, t *testing.T, tn *framework.Tenant, ns, token, webhookSecret string) {
	t.Helper()
	for name, data := range map[string]map[string]string{
		"forge":     {"provider.token": token, "webhook.secret": webhookSecret},
		"ci-secret": {"token": ciToken},
	} {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name}, StringData: data}
		if _, err := tn.Kube.CoreV1().Secrets(ns).Create(ctx, s, metav1.CreateOptions{}); err != nil {
			t.Fatalf("secret %s: %v", name, err)
		}
	}
}

func applyRepository(ctx context.Context, t *testing.T, tn *framework.Tenant, ns, name, url, forgeURL, spec string) {
	t.Helper()
	tn.Apply(ctx, t, fmt.Sprintf(`apiVersion: pipelinesascode.tekton.dev/v1alpha1
kind: Repository
metadata: {name: %s, namespace: %s}
spec:
  url: %s
  git_provider:
    url: %s
    secret: {name: forge, key: provider.token}
    webhook_secret: {name: forge, key: webhook.secret}
%s
`, name, ns, url, forgeURL, spec))
}

// waitAccepted waits for the Repository's Accepted condition.
func waitAccepted(ctx context.Context, t *testing.T, tn *framework.Tenant, ns, name string, status metav1.ConditionStatus, reason string) string {
	t.Helper()
	client, err := dynamic.NewForConfig(tn.Rest)
	if err != nil {
		t.Fatal(err)
	}
	var message string
	framework.Eventually(t, time.Minute, fmt.Sprintf("Repository %s/%s Accepted=%s (%s)", ns, name, status, reason), func() (bool, string, error) {
		u, err := client.Resource(pac.Repositories).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error(), nil
		}
		conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
		for _, c := range conds {
			m, _ := c.(map[string]any)
			if m["type"] == repository.ConditionAccepted {
				message, _ = m["message"].(string)
				return m["status"] == string(status) && m["reason"] == reason, fmt.Sprintf("%v %v: %v", m["status"], m["reason"], m["message"]), nil
			}
		}
		return false, "no Accepted condition", nil
	})
	return message
}

// waitRunRecorded waits until the Repository's pipelinerun_status (what
// `kubectl get repository` prints) holds the run.
func (p *project) waitRunRecorded(ctx context.Context, t *testing.T, name string) {
	t.Helper()
	client, err := dynamic.NewForConfig(p.tenant.Rest)
	if err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, time.Minute, "run "+name+" in the Repository's pipelinerun_status", func() (bool, string, error) {
		u, err := client.Resource(pac.Repositories).Namespace(p.ns).Get(ctx, "app", metav1.GetOptions{})
		if err != nil {
			return false, err.Error(), nil
		}
		runs, _, _ := unstructured.NestedSlice(u.Object, "pipelinerun_status")
		for _, r := range runs {
			if m, _ := r.(map[string]any); m["pipelineRunName"] == name {
				return true, "", nil
			}
		}
		return false, fmt.Sprintf("%d runs recorded", len(runs)), nil
	})
}

// runs are the PipelineRuns PaC created in the project's namespace for
// the pipeline named name (its .tekton/ name) and commit sha.
func (p *project) runs(ctx context.Context, t *testing.T, name, sha string) []v1.PipelineRun {
	t.Helper()
	sel := "pipelinesascode.tekton.dev/original-prname=" + name
	if sha != "" {
		sel += ",pipelinesascode.tekton.dev/sha=" + sha
	}
	list, err := p.tenant.Tekton.TektonV1().PipelineRuns(p.ns).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		t.Fatalf("list PipelineRuns: %v", err)
	}
	return list.Items
}

// waitRun waits until a PipelineRun of the pipeline for sha satisfies ok
// and returns it.
func (p *project) waitRun(ctx context.Context, t *testing.T, name, sha, what string, ok func(*apis.Condition) bool) v1.PipelineRun {
	t.Helper()
	var found v1.PipelineRun
	framework.Eventually(t, 3*time.Minute, fmt.Sprintf("a PipelineRun of %s for %.8s %s", name, sha, what), func() (bool, string, error) {
		runs := p.runs(ctx, t, name, sha)
		var seen []string
		for _, r := range runs {
			c := r.Status.GetCondition(apis.ConditionSucceeded)
			if c != nil && ok(c) {
				found = r
				return true, "", nil
			}
			seen = append(seen, fmt.Sprintf("%s: %v", r.Name, c))
		}
		return false, fmt.Sprintf("runs: %v", seen), nil
	})
	return found
}

func succeeded(c *apis.Condition) bool { return c.IsTrue() }
func failed(c *apis.Condition) bool    { return c.IsFalse() }
func running(c *apis.Condition) bool   { return c.IsUnknown() && c.Reason == "Running" }

// waitStatus waits until the forge shows, for sha, a status of the
// pipeline name (any context if "") in state whose description contains
// text.
func (p *project) waitStatus(t *testing.T, sha, name, state, text string) framework.CommitStatus {
	t.Helper()
	var found framework.CommitStatus
	framework.Eventually(t, 2*time.Minute, fmt.Sprintf("a %s status of %s on %.8s", state, name, sha), func() (bool, string, error) {
		statuses := p.owner.Statuses(t, p.owner.Name, p.repo, sha)
		for _, s := range statuses {
			if s.State == state && (name == "" || strings.HasSuffix(s.Context, "/ "+name)) && strings.Contains(s.Description, text) {
				found = s
				return true, "", nil
			}
		}
		return false, fmt.Sprintf("statuses: %+v", statuses), nil
	})
	return found
}

// post sends an event to the intake as a forge would, through the
// gateway, and returns the answer.
func post(t *testing.T, tn *framework.Tenant, eventType, signature string, body []byte) framework.Event {
	t.Helper()
	headers := map[string]string{"Content-Type": "application/json", "X-Gitea-Event-Type": eventType, "X-Gitea-Delivery": randomHex(8)}
	if signature != "" {
		headers["X-Gitea-Signature"] = signature
	}
	return tn.PostEvent(t, env.Stack.Config().PipelinesAsCodeURL(), headers, body)
}
