//go:build e2e

package triggers

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tektoncd/triggers/pkg/apis/triggers/v1beta1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/pipelines-service/pipelines-service/pkg/reconciler/eventlistener"
	"github.com/pipelines-service/pipelines-service/pkg/triggers"
	"github.com/pipelines-service/pipelines-service/test/e2e/framework"
)

// githubListener is a listener on pull requests, as upstream's GitHub
// example has it: a GitHub interceptor with the tenant's webhook secret
// and a pull_request filter, a binding and a template creating a
// PipelineRun, and a ServiceAccount allowed to create runs and nothing
// else.
func githubListener(secret string) string {
	return fmt.Sprintf(`
apiVersion: v1
kind: Secret
metadata: {name: github-secret, namespace: default}
stringData: {secretToken: %q}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: listener, namespace: default}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: create-runs, namespace: default}
rules: [{apiGroups: [tekton.dev], resources: [pipelineruns, taskruns], verbs: [create]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: listener-creates-runs, namespace: default}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: create-runs}
subjects: [{kind: ServiceAccount, name: listener, namespace: default}]
---
apiVersion: triggers.tekton.dev/v1beta1
kind: TriggerBinding
metadata: {name: pull-request, namespace: default}
spec:
  params:
  - {name: revision, value: $(body.pull_request.head.sha)}
  - {name: repository, value: $(body.repository.full_name)}
---
apiVersion: triggers.tekton.dev/v1beta1
kind: TriggerTemplate
metadata: {name: check, namespace: default}
spec:
  params: [{name: revision}, {name: repository}]
  resourcetemplates:
  - apiVersion: tekton.dev/v1
    kind: PipelineRun
    metadata: {generateName: check-}
    spec:
      params:
      - {name: revision, value: $(tt.params.revision)}
      - {name: repository, value: $(tt.params.repository)}
      pipelineSpec:
        params: [{name: revision}, {name: repository}]
        tasks:
        - name: echo
          params: [{name: ref, value: $(params.repository)@$(params.revision)}]
          taskSpec:
            params: [{name: ref}]
            steps: [{name: echo, image: docker.io/library/busybox:1.36, script: 'echo "$(params.ref)"'}]
---
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {name: github, namespace: default}
spec:
  serviceAccountName: listener
  triggers:
  - name: pull-request
    interceptors:
    - ref: {name: github}
      params:
      - {name: secretRef, value: {secretName: github-secret, secretKey: secretToken}}
      - {name: eventTypes, value: [pull_request]}
    bindings: [{ref: pull-request}]
    template: {ref: check}
`, secret)
}

// unsignedListener names the GitHub interceptor without a secretRef:
// upstream accepts any payload then; here it is refused.
const unsignedListener = `
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {name: unsigned, namespace: default}
spec:
  serviceAccountName: listener
  triggers:
  - name: anything
    interceptors: [{ref: {name: github}, params: [{name: eventTypes, value: [pull_request]}]}]
    bindings: [{ref: pull-request}]
    template: {ref: check}
`

// stealingListener names a secret that exists only in another workspace.
const stealingListener = `
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {name: stealing, namespace: default}
spec:
  serviceAccountName: listener
  triggers:
  - name: pull-request
    interceptors:
    - ref: {name: github}
      params: [{name: secretRef, value: {secretName: only-in-a, secretKey: secretToken}}]
    bindings: [{ref: pull-request}]
    template: {ref: check}
`

func pullRequest(sha string) []byte {
	return []byte(fmt.Sprintf(`{"action":"opened","pull_request":{"head":{"sha":%q}},"repository":{"full_name":"org/repo"}}`, sha))
}

func githubHeaders(event, secret string, body []byte) map[string]string {
	return map[string]string{"Content-Type": "application/json", "X-GitHub-Event": event, "X-Hub-Signature-256": framework.GitHubSignature(secret, body)}
}

// TestGitHubListener: a signed pull_request POSTed with no credentials to
// a listener's status.address.url (the gateway, no port-forward) creates a
// PipelineRun in the tenant's workspace, which succeeds. A bad signature
// gets 403 and creates nothing; a filtered-out event creates nothing; an
// unknown path is 404. A second tenant with a listener of the same name
// and namespace never sees the first one's events, cannot borrow its
// secrets, and the first listener's identity gets 403 in its workspace and
// 401 on the workload cluster. Deleting the listener removes its route
// and its identity.
func TestGitHubListener(t *testing.T) {
	ctx := context.Background()
	a := env.NewTenant(ctx, t, "e2e-github-a")
	b := env.NewTenant(ctx, t, "e2e-github-b")
	a.Apply(ctx, t, githubListener("secret-of-a")+"---\napiVersion: v1\nkind: Secret\nmetadata: {name: only-in-a, namespace: default}\nstringData: {secretToken: secret-of-a}\n")
	b.Apply(ctx, t, githubListener("secret-of-b")+"---\n"+stealingListener+"---\n"+unsignedListener)

	urlA := address(t, a.WaitEventListener(ctx, t, "default", "github", "True", eventlistener.ReasonReady))
	urlB := address(t, b.WaitEventListener(ctx, t, "default", "github", "True", eventlistener.ReasonReady))
	if urlA == urlB || !strings.Contains(urlA, a.Cluster.String()) {
		t.Fatalf("listeners of the same name in two workspaces share an address or name the wrong workspace: %s, %s (A is %s)", urlA, urlB, a.Cluster)
	}
	unsigned := b.WaitEventListener(ctx, t, "default", "unsigned", "False", eventlistener.ReasonUnsigned)
	t.Logf("listener without secretRef: %s", unsigned.Status.GetCondition("Ready").Message)

	body := pullRequest("0123abcd")
	expect := func(what string, got framework.Event, code int) framework.Event {
		t.Helper()
		if got.Code != code {
			t.Fatalf("%s: HTTP %d %s, want %d", what, got.Code, got.Body, code)
		}
		return got
	}
	expect("bad signature", a.PostEvent(t, urlA, githubHeaders("pull_request", "not-the-secret", body), body), http.StatusForbidden)
	expect("A's event at B's listener", b.PostEvent(t, urlB, githubHeaders("pull_request", "secret-of-a", body), body), http.StatusForbidden)
	expect("B's listener naming a secret only A has", b.PostEvent(t, address(t, b.WaitEventListener(ctx, t, "default", "stealing", "True", "")), githubHeaders("pull_request", "secret-of-a", body), body), http.StatusForbidden)
	expect("unknown listener", a.PostEvent(t, urlA+"-none", githubHeaders("pull_request", "secret-of-a", body), body), http.StatusNotFound)
	unsignedEvent := expect("unsigned listener", b.PostEvent(t, address(t, unsigned), map[string]string{"X-GitHub-Event": "pull_request"}, body), http.StatusAccepted)
	filtered := expect("push to a pull_request listener", a.PostEvent(t, urlA, githubHeaders("push", "secret-of-a", body), body), http.StatusAccepted)
	accepted := expect("signed pull request", a.PostEvent(t, urlA, githubHeaders("pull_request", "secret-of-a", body), body), http.StatusAccepted)

	run := waitRunOfEvent(ctx, t, a, accepted.ID)
	done := a.WaitPipelineRun(ctx, t, "default", run, 3*time.Minute, "done", framework.PipelineRunDone)
	if status, reason := framework.PipelineRunCondition(done); status != "True" {
		t.Fatalf("PipelineRun %s of the event: %s %s", run, status, reason)
	}
	if got := done.Spec.Params[0].Value.StringVal; got != "0123abcd" {
		t.Errorf("PipelineRun's revision %q, want the pull request's head 0123abcd", got)
	}
	if done.Labels["triggers.tekton.dev/eventlistener"] != "github" {
		t.Errorf("PipelineRun labels %v: not from the listener", done.Labels)
	}
	for _, ev := range []struct {
		tn   *framework.Tenant
		what string
		id   string
	}{{a, "filtered-out push", filtered.ID}, {b, "event at the unsigned listener", unsignedEvent.ID}} {
		if runs := runsOfEvent(ctx, t, ev.tn, ev.id); len(runs) != 0 {
			t.Errorf("%s created %v", ev.what, runs)
		}
	}
	if all, err := b.Tekton.TektonV1().PipelineRuns("default").List(ctx, metav1.ListOptions{}); err != nil || len(all.Items) != 0 {
		t.Errorf("tenant B has PipelineRuns (%v): it saw events it should not have", err)
	}

	checkIdentity(ctx, t, a, b)

	if err := dynamicDelete(ctx, t, a, "github"); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, time.Minute, "deleted listener's route", func() (bool, string, error) {
		got := a.PostEvent(t, urlA, githubHeaders("pull_request", "secret-of-a", body), body)
		return got.Code == http.StatusNotFound, fmt.Sprintf("HTTP %d %s", got.Code, got.Body), nil
	})
	framework.Eventually(t, 2*time.Minute, "deleted listener's token Secret collected", func() (bool, string, error) {
		_, err := a.Kube.CoreV1().Secrets("default").Get(ctx, triggers.TokenSecretName("listener"), metav1.GetOptions{})
		return apierrors.IsNotFound(err), fmt.Sprint(err), nil
	})
}

func address(t *testing.T, el *v1beta1.EventListener) string {
	t.Helper()
	if el.Status.Address == nil || el.Status.Address.URL == nil {
		t.Fatalf("EventListener %s has no address", el.Name)
	}
	return el.Status.Address.URL.String()
}

func runsOfEvent(ctx context.Context, t *testing.T, tn *framework.Tenant, id string) []string {
	t.Helper()
	list, err := tn.Tekton.TektonV1().PipelineRuns("default").List(ctx, metav1.ListOptions{LabelSelector: "triggers.tekton.dev/triggers-eventid=" + id})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, pr := range list.Items {
		names = append(names, pr.Name)
	}
	return names
}

func waitRunOfEvent(ctx context.Context, t *testing.T, tn *framework.Tenant, id string) string {
	t.Helper()
	var name string
	framework.Eventually(t, time.Minute, "PipelineRun of event "+id, func() (bool, string, error) {
		runs := runsOfEvent(ctx, t, tn, id)
		if len(runs) > 1 {
			return false, "", fmt.Errorf("event %s created %d PipelineRuns: %v", id, len(runs), runs)
		}
		if len(runs) == 1 {
			name = runs[0]
		}
		return name != "", "none yet", nil
	})
	return name
}

// checkIdentity: the token the controller minted for A's listener acts in
// A (a dry-run create of a PipelineRun is allowed), is refused in B's
// workspace, and is unknown to the workload cluster.
func checkIdentity(ctx context.Context, t *testing.T, a, b *framework.Tenant) {
	t.Helper()
	secret, err := a.Kube.CoreV1().Secrets("default").Get(ctx, triggers.TokenSecretName("listener"), metav1.GetOptions{})
	if err != nil {
		t.Fatalf("listener's token Secret: %v", err)
	}
	if secret.Type != corev1.SecretTypeServiceAccountToken || len(secret.OwnerReferences) != 1 || secret.OwnerReferences[0].Name != "github" {
		t.Errorf("token Secret: type %s, owners %v; want a ServiceAccount token owned by the listener", secret.Type, secret.OwnerReferences)
	}
	token := string(secret.Data[corev1.ServiceAccountTokenKey])
	run := []byte(`{"apiVersion":"tekton.dev/v1","kind":"PipelineRun","metadata":{"generateName":"identity-"},"spec":{"pipelineSpec":{"tasks":[{"name":"t","taskSpec":{"steps":[{"name":"s","image":"docker.io/library/busybox:1.36","script":"true"}]}}]}}}`)
	create := func(tn *framework.Tenant) int {
		path := "/apis/tekton.dev/v1/namespaces/default/pipelineruns?dryRun=All"
		return tn.Request(t, http.MethodPost, path, token, run).Code
	}
	if code := create(a); code != http.StatusCreated {
		t.Errorf("listener's identity creating a PipelineRun in its own workspace: HTTP %d, want 201", code)
	}
	if code := create(b); code != http.StatusForbidden {
		t.Errorf("A's listener identity creating a PipelineRun in B's workspace: HTTP %d, want 403", code)
	}
	workload, err := clientcmd.BuildConfigFromFlags("", env.Stack.Config().WorkloadAdminKubeconfig())
	if err != nil {
		t.Fatal(err)
	}
	if code := framework.RequestTo(t, workload, http.MethodGet, "/api/v1/namespaces", token, nil).Code; code != http.StatusUnauthorized {
		t.Errorf("A's listener identity at the workload cluster: HTTP %d, want 401", code)
	}
}

func dynamicDelete(ctx context.Context, t *testing.T, tn *framework.Tenant, name string) error {
	out, errOut, err := framework.Kubectl(ctx, t, tn.Kubeconfig, "delete", "eventlistener", name, "-n", "default")
	if err != nil {
		return fmt.Errorf("kubectl delete eventlistener %s: %v %s%s", name, err, out, errOut)
	}
	return nil
}
