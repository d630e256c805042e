//go:build e2e

package examples

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
	"knative.dev/pkg/apis"
	duckv1 "knative.dev/pkg/apis/duck/v1"

	"github.com/pipelines-service/pipelines-service/pkg/devstack"
	"github.com/pipelines-service/pipelines-service/test/e2e/framework"
)

// parallel is how many examples run at once (go test -parallel must allow
// it: make e2e's is 8). Their steps are short; what they wait on is kcp
// and the pods' start.
const parallel = 6

// exampleDeadline is how long an example's runs may take in all. It only
// guards against a run that never ends: speed is measured in the
// benchmarks, not here. Three minutes failed examples of seven pods in a
// row on a slower machine of the same size (CI, 2026-12-06), where each
// pod's start took several times as long.
const exampleDeadline = 6 * time.Minute

type outcome struct {
	name, result, detail string
}

// alphaFlags are the feature flags of Tekton's own alpha e2e job
// (test/e2e-tests-kind-alpha.env), less those the service pins
// (keep-pod-on-cancel, native sidecars; see pkg/tenantconfig).
var alphaFlags = map[string]string{
	"enable-api-fields":              "alpha",
	"results-from":                   "sidecar-logs",
	"enable-cel-in-whenexpression":   "true",
	"enable-param-enum":              "true",
	"enable-artifacts":               "true",
	"enable-concise-resolver-syntax": "true",
}

// needsAlphaFlags tells the examples that Tekton runs only in its alpha
// job: the alpha ones, and the large result one (results from sidecar logs).
func needsAlphaFlags(rel string) bool {
	return strings.Contains(rel, "/alpha/") || rel == "taskruns/beta/large-task-result.yaml"
}

// TestTektonExamples applies every example of examples/v1 (taskruns,
// pipelineruns, beta and alpha) in its own namespace and expects its runs
// to succeed. Like Tekton's CI, the alpha examples run where alpha feature
// flags are on: a second tenant workspace that sets them in its
// tekton-pipelines/feature-flags ConfigMap; the first keeps the defaults.
func TestTektonExamples(t *testing.T) {
	ctx := context.Background()
	dir := tektonExamplesDir(t)
	stable := newExampleTenant(ctx, t, "e2e-examples", nil)
	alpha := newExampleTenant(ctx, t, "e2e-examples-alpha", alphaFlags)

	var files []string
	for _, sub := range []string{"taskruns", "pipelineruns", "taskruns/beta", "pipelineruns/beta", "taskruns/alpha", "pipelineruns/alpha"} {
		matches, _ := filepath.Glob(filepath.Join(dir, sub, "*.yaml"))
		for _, m := range matches {
			rel, _ := filepath.Rel(dir, m)
			files = append(files, rel)
		}
	}
	sort.Strings(files)
	if only := os.Getenv("EXAMPLES"); only != "" {
		// EXAMPLES=<regexp> runs the matching examples only (development).
		re := regexp.MustCompile(only)
		files = slices.DeleteFunc(files, func(f string) bool { return !re.MatchString(f) })
	}

	var mu sync.Mutex
	var outcomes []outcome
	record := func(o outcome) {
		mu.Lock()
		defer mu.Unlock()
		outcomes = append(outcomes, o)
	}
	sem := make(chan struct{}, parallel)
	t.Run("group", func(t *testing.T) {
		for i, rel := range files {
			rel, i := rel, i
			t.Run(rel, func(t *testing.T) {
				if reason, ok := skipReason(rel); ok {
					record(outcome{rel, "skipped", reason})
					t.Skip(reason)
				}
				t.Parallel()
				sem <- struct{}{}
				defer func() { <-sem }()
				ns := fmt.Sprintf("ex-%03d", i)
				et := stable
				if needsAlphaFlags(rel) {
					et = alpha
				}
				err := runExample(ctx, et, ns, filepath.Join(dir, rel))
				if err != nil {
					record(outcome{rel, "failed", err.Error()})
					t.Error(err)
					return
				}
				record(outcome{rel, "passed", ""})
				deleteNamespace(ctx, t, et, ns)
			})
		}
	})
	counts := map[string]int{}
	sort.Slice(outcomes, func(i, j int) bool { return outcomes[i].name < outcomes[j].name })
	for _, o := range outcomes {
		counts[o.result]++
		if o.result != "passed" {
			t.Logf("%s %s: %s", o.result, o.name, o.detail)
		}
	}
	fmt.Printf("tekton examples: %d passed, %d failed, %d skipped\n", counts["passed"], counts["failed"], counts["skipped"])
}

// exampleTenant is a tenant workspace with the clients the examples need.
type exampleTenant struct {
	*framework.Tenant
	client dynamic.Interface
	mapper meta.RESTMapper
}

func newExampleTenant(ctx context.Context, t *testing.T, prefix string, flags map[string]string) *exampleTenant {
	tn := env.NewTenant(ctx, t, prefix)
	if flags != nil {
		tn.SetFeatureFlags(ctx, t, flags)
	}
	client, err := dynamic.NewForConfig(tn.Rest)
	if err != nil {
		t.Fatal(err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(tn.Kube.Discovery()))
	return &exampleTenant{Tenant: tn, client: client, mapper: mapper}
}

func skipReason(rel string) (string, bool) {
	reason, ok := skipped[rel]
	return reason, ok
}

func tektonExamplesDir(t *testing.T) string {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/tektoncd/pipeline").Output()
	if err != nil {
		t.Fatalf("locate tektoncd/pipeline: %v", err)
	}
	return filepath.Join(strings.TrimSpace(string(out)), "examples", "v1")
}

// runExample creates the example's objects in namespace ns and waits for
// its TaskRuns and PipelineRuns to finish.
func runExample(ctx context.Context, tn *exampleTenant, ns, path string) error {
	client, mapper := tn.client, tn.mapper
	if _, err := tn.Kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create namespace: %w", err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	data = toMirrors(data, env.Stack.Config().Mirrors())
	type runRef struct{ resource, name string }
	var runs []runRef
	decoder := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for {
		u := &unstructured.Unstructured{}
		if err := decoder.Decode(&u.Object); err != nil {
			if err.Error() == "EOF" {
				break
			}
			return fmt.Errorf("decode: %w", err)
		}
		if len(u.Object) == 0 {
			continue
		}
		gvk := u.GroupVersionKind()
		mapping, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			return fmt.Errorf("%s: %w", gvk, err)
		}
		resource := client.Resource(mapping.Resource)
		var created *unstructured.Unstructured
		if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
			u.SetNamespace(ns)
			created, err = resource.Namespace(ns).Create(ctx, u, metav1.CreateOptions{})
		} else {
			created, err = resource.Create(ctx, u, metav1.CreateOptions{})
		}
		if err != nil {
			return fmt.Errorf("create %s %s: %w", gvk.Kind, u.GetName()+u.GetGenerateName(), err)
		}
		if gvk.Kind == "TaskRun" || gvk.Kind == "PipelineRun" {
			runs = append(runs, runRef{mapping.Resource.Resource, created.GetName()})
		}
	}
	if len(runs) == 0 {
		return fmt.Errorf("no TaskRun or PipelineRun in the example")
	}
	deadline := time.Now().Add(exampleDeadline)
	for _, run := range runs {
		for {
			u, err := client.Resource(tektonGVR(run.resource)).Namespace(ns).Get(ctx, run.name, metav1.GetOptions{})
			if err == nil {
				if cond := succeeded(u); cond != nil && !cond.IsUnknown() {
					if !cond.IsTrue() {
						return fmt.Errorf("%s %s: %s: %s", run.resource, run.name, cond.Reason, cond.Message)
					}
					break
				}
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s %s did not finish in time", run.resource, run.name)
			}
			time.Sleep(time.Second)
		}
	}
	return nil
}

// deleteNamespace deletes a passed example's namespace, as Tekton's own
// e2e tests delete theirs, and does not wait for it to go; a failed one is
// kept to be looked at.
//
// Why: its workload namespace and NetworkPolicy go with it (the
// controller's collector), so the node's policy agents do not carry a
// hundred finished examples' chains and ipsets in every full sync. With
// them all kept, the agents took more CPU than kcp during this package.
func deleteNamespace(ctx context.Context, t *testing.T, tn *exampleTenant, ns string) {
	if err := tn.Kube.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil {
		t.Errorf("delete namespace %s of a passed example: %v", ns, err)
	}
}

func succeeded(u *unstructured.Unstructured) *apis.Condition {
	status := duckv1.Status{}
	raw, ok := u.Object["status"].(map[string]interface{})
	if !ok {
		return nil
	}
	conds, _, _ := unstructured.NestedSlice(raw, "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]interface{})
		if m["type"] == "Succeeded" {
			cond := apis.Condition{Type: "Succeeded"}
			cond.Status = corev1.ConditionStatus(fmt.Sprint(m["status"]))
			cond.Reason, _ = m["reason"].(string)
			cond.Message, _ = m["message"].(string)
			status.Conditions = append(status.Conditions, cond)
			return &status.Conditions[0]
		}
	}
	return nil
}

func tektonGVR(resource string) schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: "tekton.dev", Version: "v1", Resource: resource}
}

// toMirrors rewrites what an example fetches from the internet to the
// stack's mirrors (devstack.Config.Mirrors, the table of the README).
func toMirrors(data []byte, mirrors []devstack.Mirror) []byte {
	for _, m := range mirrors {
		data = bytes.ReplaceAll(data, []byte(m.Upstream), []byte(m.Local))
	}
	return data
}
