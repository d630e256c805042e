//go:build e2e

// Package resolution tests remote resolution on the real stack: Tasks,
// Pipelines and StepActions referenced through the git (the stack's
// forge), bundles (the stack's registry), http and cluster resolvers,
// each tenant with its own credentials and configuration, and what a
// hostile tenant may try through them.
package resolution

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"knative.dev/pkg/apis"

	"github.com/pipelines-service/pipelines-service/test/e2e/framework"
)

var env *framework.Env

func TestMain(m *testing.M) { framework.Main(m, &env) }

const ns = "default"

// greetTask is a Task that prints its param and a result.
func greetTask(name string) string {
	return `apiVersion: tekton.dev/v1
kind: Task
metadata:
  name: ` + name + `
spec:
  params:
  - name: who
    default: world
  results:
  - name: greeting
  steps:
  - name: greet
    image: busybox
    script: |
      echo "hello $(params.who)" | tee $(results.greeting.path)
`
}

// ref is a resolver reference with string params.
func ref(resolver string, params ...string) v1.ResolverRef {
	r := v1.ResolverRef{Resolver: v1.ResolverName(resolver)}
	for i := 0; i+1 < len(params); i += 2 {
		r.Params = append(r.Params, v1.Param{Name: params[i], Value: *v1.NewStructuredValues(params[i+1])})
	}
	return r
}

// runTask creates a TaskRun of a resolved Task and waits until it is done.
func runTask(ctx context.Context, t *testing.T, tn *framework.Tenant, prefix string, r v1.ResolverRef) *v1.TaskRun {
	t.Helper()
	tr := &v1.TaskRun{
		ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"},
		Spec: v1.TaskRunSpec{
			TaskRef: &v1.TaskRef{ResolverRef: r},
			Params:  v1.Params{{Name: "who", Value: *v1.NewStructuredValues(prefix)}},
		},
	}
	created, err := tn.Tekton.TektonV1().TaskRuns(ns).Create(ctx, tr, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create TaskRun %s: %v", prefix, err)
	}
	return tn.WaitTaskRunDone(ctx, t, ns, created.Name, 3*time.Minute)
}

// wantSucceeded fails unless tr succeeded with its greeting.
func wantSucceeded(t *testing.T, tr *v1.TaskRun) {
	t.Helper()
	cond := tr.Status.GetCondition(apis.ConditionSucceeded)
	if !cond.IsTrue() {
		t.Fatalf("TaskRun %s: %s %s: %s", tr.Name, cond.Status, cond.Reason, cond.Message)
	}
	for _, r := range tr.Status.Results {
		if r.Name == "greeting" && strings.Contains(r.Value.StringVal, "hello") {
			return
		}
	}
	t.Fatalf("TaskRun %s: results %v, want a greeting", tr.Name, tr.Status.Results)
}

// wantFailed fails unless tr failed with reason and a message holding
// every one of parts.
func wantFailed(t *testing.T, tr *v1.TaskRun, reason string, parts ...string) {
	t.Helper()
	cond := tr.Status.GetCondition(apis.ConditionSucceeded)
	if !cond.IsFalse() || cond.Reason != reason {
		t.Fatalf("TaskRun %s: %s %s: %s; want False %s", tr.Name, cond.Status, cond.Reason, cond.Message, reason)
	}
	for _, p := range parts {
		if !strings.Contains(cond.Message, p) {
			t.Errorf("TaskRun %s: message %q does not name %q", tr.Name, cond.Message, p)
		}
	}
	if tr.Status.PodName != "" {
		t.Errorf("TaskRun %s: a pod %s was made for a run whose Task did not resolve", tr.Name, tr.Status.PodName)
	}
}

// secret writes a secret of the tenant's namespace.
func secret(ctx context.Context, t *testing.T, tn *framework.Tenant, namespace, name string, data map[string]string) {
	t.Helper()
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace}, StringData: data}
	if _, err := tn.Kube.CoreV1().Secrets(namespace).Create(ctx, s, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create secret %s/%s: %v", namespace, name, err)
	}
}

// namespace creates a namespace of the tenant's workspace.
func namespace(ctx context.Context, t *testing.T, tn *framework.Tenant, name string) {
	t.Helper()
	n := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if _, err := tn.Kube.CoreV1().Namespaces().Create(ctx, n, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create namespace %s: %v", name, err)
	}
}

// resolverConfig writes one of the tenant's resolver ConfigMaps in
// tekton-pipelines-resolvers, as on any Tekton cluster.
func resolverConfig(ctx context.Context, t *testing.T, tn *framework.Tenant, name string, data map[string]string) {
	t.Helper()
	namespace(ctx, t, tn, "tekton-pipelines-resolvers")
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "tekton-pipelines-resolvers"}, Data: data}
	_, err := tn.Kube.CoreV1().ConfigMaps(cm.Namespace).Create(ctx, cm, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		_, err = tn.Kube.CoreV1().ConfigMaps(cm.Namespace).Update(ctx, cm, metav1.UpdateOptions{})
	}
	if err != nil {
		t.Fatalf("resolver ConfigMap %s: %v", name, err)
	}
}

func describe(tr *v1.TaskRun) string {
	c := tr.Status.GetCondition(apis.ConditionSucceeded)
	return fmt.Sprintf("%s %s: %s", c.Status, c.Reason, c.Message)
}
