//go:build e2e

package triggers

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/pipelines-service/pipelines-service/test/e2e/framework"
)

// objects are one of each Triggers type, as a tenant writes them: the
// namespaced ones in default, ClusterTriggerBinding and ClusterInterceptor
// at the workspace's cluster scope.
const objects = `
apiVersion: triggers.tekton.dev/v1beta1
kind: TriggerTemplate
metadata: {name: build, namespace: default}
spec:
  params: [{name: revision}]
  resourcetemplates:
  - apiVersion: tekton.dev/v1
    kind: PipelineRun
    metadata: {generateName: build-}
    spec:
      pipelineSpec:
        tasks:
        - name: echo
          taskSpec:
            steps: [{name: echo, image: docker.io/library/busybox:1.36, script: 'echo $(tt.params.revision)'}]
---
apiVersion: triggers.tekton.dev/v1beta1
kind: TriggerBinding
metadata: {name: push, namespace: default}
spec:
  params: [{name: revision, value: $(body.head_commit.id)}]
---
apiVersion: triggers.tekton.dev/v1beta1
kind: ClusterTriggerBinding
metadata: {name: shared}
spec:
  params: [{name: repository, value: $(body.repository.url)}]
---
apiVersion: triggers.tekton.dev/v1beta1
kind: Trigger
metadata: {name: on-push, namespace: default}
spec:
  interceptors:
  - ref: {name: cel}
    params: [{name: filter, value: "header.match('X-GitHub-Event', 'push')"}]
  bindings: [{ref: push}, {ref: shared, kind: ClusterTriggerBinding}]
  template: {ref: build}
---
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {name: listener, namespace: default}
spec:
  serviceAccountName: default
  triggers: [{triggerRef: on-push}]
---
apiVersion: triggers.tekton.dev/v1alpha1
kind: Interceptor
metadata: {name: own, namespace: default}
spec:
  clientConfig: {url: "http://interceptor.example/"}
---
apiVersion: triggers.tekton.dev/v1alpha1
kind: ClusterInterceptor
metadata: {name: own-cluster}
spec:
  clientConfig: {url: "http://interceptor.example/"}
`

// TestTriggersTypesPerWorkspace: the Triggers types are served in a tenant
// workspace as upstream serves them (v1beta1, Interceptor and
// ClusterInterceptor v1alpha1), kubectl applies and lists them, and a
// second tenant, with the same names, sees only its own: cluster-scoped
// types are per workspace.
func TestTriggersTypesPerWorkspace(t *testing.T) {
	ctx := context.Background()
	a := env.NewTenant(ctx, t, "e2e-triggers-a")
	b := env.NewTenant(ctx, t, "e2e-triggers-b")

	out, errOut, err := framework.Kubectl(ctx, t, a.Kubeconfig, "api-resources", "--api-group=triggers.tekton.dev", "-o", "name")
	if err != nil {
		t.Fatalf("kubectl api-resources: %v %s", err, errOut)
	}
	want := "clusterinterceptors.triggers.tekton.dev clustertriggerbindings.triggers.tekton.dev eventlisteners.triggers.tekton.dev " +
		"interceptors.triggers.tekton.dev triggerbindings.triggers.tekton.dev triggers.triggers.tekton.dev triggertemplates.triggers.tekton.dev"
	if got := sortedFields(out); got != want {
		t.Errorf("Triggers resources in the workspace: %s, want %s", got, want)
	}
	for resource, version := range map[string]string{"eventlisteners": "v1beta1", "triggers": "v1beta1", "interceptors": "v1alpha1"} {
		out, errOut, err := framework.Kubectl(ctx, t, a.Kubeconfig, "explain", resource, "--api-version=triggers.tekton.dev/"+version)
		if err != nil {
			t.Errorf("kubectl explain %s (triggers.tekton.dev/%s): %v %s%s", resource, version, err, out, errOut)
		}
	}

	file := filepath.Join(t.TempDir(), "triggers.yaml")
	if err := os.WriteFile(file, []byte(objects), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, errOut, err := framework.Kubectl(ctx, t, a.Kubeconfig, "apply", "-f", file); err != nil {
		t.Fatalf("kubectl apply (tenant A): %v\n%s%s", err, out, errOut)
	}
	namespaced := "eventlisteners.triggers.tekton.dev,triggers.triggers.tekton.dev,triggerbindings.triggers.tekton.dev,triggertemplates.triggers.tekton.dev,interceptors.triggers.tekton.dev"
	clusterScoped := "clustertriggerbindings.triggers.tekton.dev,clusterinterceptors.triggers.tekton.dev"
	wantA := "clusterinterceptor.triggers.tekton.dev/own-cluster clustertriggerbinding.triggers.tekton.dev/shared eventlistener.triggers.tekton.dev/listener " +
		"interceptor.triggers.tekton.dev/own trigger.triggers.tekton.dev/on-push triggerbinding.triggers.tekton.dev/push triggertemplate.triggers.tekton.dev/build"
	if got := listed(ctx, t, a, namespaced, clusterScoped); got != wantA {
		t.Errorf("tenant A's Triggers objects: %s, want %s", got, wantA)
	}
	if got := listed(ctx, t, b, namespaced, clusterScoped); got != "" {
		t.Errorf("tenant B sees Triggers objects it did not create: %s", got)
	}

	// Tenant B's ClusterTriggerBinding of the same name is its own.
	other := strings.Replace(objects, "$(body.repository.url)", "$(body.repository.clone_url)", 1)
	if err := os.WriteFile(file, []byte(other), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, errOut, err := framework.Kubectl(ctx, t, b.Kubeconfig, "apply", "-f", file); err != nil {
		t.Fatalf("kubectl apply (tenant B): %v\n%s%s", err, out, errOut)
	}
	jsonpath := "-o=jsonpath={.spec.params[0].value}"
	if out, _, err := framework.Kubectl(ctx, t, a.Kubeconfig, "get", "clustertriggerbinding", "shared", jsonpath); err != nil || out != "$(body.repository.url)" {
		t.Errorf("tenant A's ClusterTriggerBinding after B wrote its own: %v %q", err, out)
	}
	if out, _, err := framework.Kubectl(ctx, t, b.Kubeconfig, "get", "clustertriggerbinding", "shared", jsonpath); err != nil || out != "$(body.repository.clone_url)" {
		t.Errorf("tenant B's ClusterTriggerBinding: %v %q", err, out)
	}
}

// listed is what kubectl lists of the tenant's Triggers objects, by name,
// sorted.
func listed(ctx context.Context, t *testing.T, tn *framework.Tenant, namespaced, clusterScoped string) string {
	t.Helper()
	ns, errOut, err := framework.Kubectl(ctx, t, tn.Kubeconfig, "get", namespaced, "-A", "-o", "name")
	if err != nil {
		t.Fatalf("kubectl get %s: %v %s", namespaced, err, errOut)
	}
	cl, errOut, err := framework.Kubectl(ctx, t, tn.Kubeconfig, "get", clusterScoped, "-o", "name")
	if err != nil {
		t.Fatalf("kubectl get %s: %v %s", clusterScoped, err, errOut)
	}
	return sortedFields(ns + " " + cl)
}

func sortedFields(s string) string {
	f := strings.Fields(s)
	sort.Strings(f)
	return strings.Join(f, " ")
}
