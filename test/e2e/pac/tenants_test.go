//go:build e2e

package pac

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/openshift-pipelines/pipelines-as-code/pkg/apis/pipelinesascode/keys"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pipelines-service/pipelines-service/pkg/reconciler/repository"
	"github.com/pipelines-service/pipelines-service/test/e2e/framework"
)

// Two tenants with a repository each never see each other's events; a
// third workspace claiming tenant A's URL is refused (URLClaimed) and runs
// nothing, and cannot inject events for it with a secret of its own. A
// webhook with a bad or no signature gets 4xx and changes nothing, and a
// Repository whose forge is a private address of the platform is refused.
func TestTenantsAndConflicts(t *testing.T) {
	ctx := context.Background()
	files := map[string]string{".tekton/push.yaml": ci("push", showScript)}
	a := newProject(ctx, t, "pac-a", files)
	b := newProject(ctx, t, "pac-b", files)

	// A third workspace claims A's URL, with a webhook secret of its own.
	c := &project{tenant: env.NewTenant(ctx, t, "pac-c"), secret: "the-claimants-own-secret"}
	c.ns = framework.CreateNamespace(ctx, t, c.tenant.Kube, "pac")
	c.createSecrets(ctx, t, c.tenant, c.ns, b.owner.Token, c.secret)
	applyRepository(ctx, t, c.tenant, c.ns, "stolen", a.url, env.Forge(t).URL, "")
	msg := waitAccepted(ctx, t, c.tenant, c.ns, "stolen", metav1.ConditionFalse, repository.ReasonURLClaimed)
	if want := "another workspace"; !strings.Contains(msg, want) || strings.Contains(msg, a.tenant.Cluster.String()) {
		t.Errorf("the conflict says %q: want it to say %q and not name the holder's workspace", msg, want)
	}

	coA := a.owner.Clone(t, a.owner.Name, a.repo)
	shaA := coA.Commit(t, "main", "main", map[string]string{"a.txt": "a\n"})
	coB := b.owner.Clone(t, b.owner.Name, b.repo)
	shaB := coB.Commit(t, "main", "main", map[string]string{"b.txt": "b\n"})
	a.waitRun(ctx, t, "push-check", shaA, "succeeded", succeeded)
	b.waitRun(ctx, t, "push-check", shaB, "succeeded", succeeded)
	for _, p := range []*project{a, b, c} {
		runs, err := p.tenant.Tekton.TektonV1().PipelineRuns(p.ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range runs.Items {
			if p == c || r.Annotations[keys.RepoURL] != p.url {
				t.Errorf("workspace %s has run %s of %s", p.tenant.Name, r.Name, r.Annotations[keys.RepoURL])
			}
		}
	}

	// A push event for A's repository, as the forge would send it.
	payload, _ := json.Marshal(map[string]any{
		"ref": "refs/heads/main", "before": shaA, "after": shaA,
		"head_commit": map[string]any{"id": shaA, "message": "forged", "url": a.url + "/commit/" + shaA},
		"repository":  map[string]any{"html_url": a.url, "name": a.repo, "full_name": a.owner.Name + "/" + a.repo, "default_branch": "main", "owner": map[string]any{"login": a.owner.Name}},
		"pusher":      map[string]any{"login": a.owner.Name}, "sender": map[string]any{"login": a.owner.Name},
	})
	before := len(a.runs(ctx, t, "push-check", ""))
	for _, tc := range []struct {
		name, signature string
		body            []byte
		want            int
	}{
		{"no signature", "", payload, http.StatusUnauthorized},
		{"a wrong signature", framework.GiteaSignature("not-the-secret", payload), payload, http.StatusUnauthorized},
		{"signed with the claimant's secret", framework.GiteaSignature(c.secret, payload), payload, http.StatusUnauthorized},
		{"a signature of another body", framework.GiteaSignature(a.secret, []byte("{}")), payload, http.StatusUnauthorized},
		{"not JSON", framework.GiteaSignature(a.secret, []byte("push")), []byte("push"), http.StatusBadRequest},
		{"an unclaimed repository", framework.GiteaSignature(a.secret, []byte(`{"repository":{"html_url":"http://forge.invalid/x/y"}}`)), []byte(`{"repository":{"html_url":"http://forge.invalid/x/y"}}`), http.StatusNotFound},
	} {
		if got := post(t, a.tenant, "push", tc.signature, tc.body); got.Code != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.name, got.Code, got.Body, tc.want)
		}
	}
	// The intake answers after its checks, before anything is queued: a
	// refused event can have no effect later.
	if after := len(a.runs(ctx, t, "push-check", "")); after != before {
		t.Errorf("refused events changed A's runs: %d before, %d after", before, after)
	}
	if got := post(t, a.tenant, "push", framework.GiteaSignature(a.secret, payload), payload); got.Code != http.StatusAccepted {
		t.Errorf("a correctly signed event: %d %s, want 202", got.Code, got.Body)
	}

	// A forge on a private address of the platform (kcp) is refused.
	c.tenant.Apply(ctx, t, `apiVersion: pipelinesascode.tekton.dev/v1alpha1
kind: Repository
metadata: {name: inward, namespace: `+c.ns+`}
spec:
  url: https://forge.invalid/c/inward
  git_provider:
    url: https://`+env.Stack.Config().HostIP.String()+`:6443
    secret: {name: forge}
    webhook_secret: {name: forge}
`)
	waitAccepted(ctx, t, c.tenant, c.ns, "inward", metav1.ConditionFalse, repository.ReasonForgeNotAllowed)
}
