//go:build e2e

package triggers

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"knative.dev/pkg/apis"
	"sigs.k8s.io/yaml"

	"github.com/pipelines-service/pipelines-service/pkg/reconciler/eventlistener"
	"github.com/pipelines-service/pipelines-service/test/e2e/framework"
)

// triggersExample is one of Triggers' v1beta1 examples, run as upstream's
// test/e2e-tests-examples.sh runs it: apply its files (and examples/
// rbac.yaml), wait for its EventListener to be Ready, send its curl.sh
// request to the listener's address, and expect a TaskRun, PipelineRun or
// ConfigMap labelled with the event's ID. Here each example has a tenant
// workspace of its own, and the request goes to status.address.url, with
// no port-forward.
type triggersExample struct {
	name string
	// files are globs under examples/v1beta1.
	files []string
	// request: "curl" sends the example's curl.sh; "" sends nothing (as
	// upstream for trigger-ref and triggergroups: Ready is the check);
	// anything else is a JSON body sent as a GitHub push (examples
	// upstream ships without a curl.sh).
	request string
	// contains are strings the created object must hold (what bindings
	// and CEL overlays computed).
	contains []string
	// resources: a condition the listener must carry, "type=status".
	condition string
	// refused: the listener must be refused with this Ready reason (a
	// deliberate difference from upstream), and is reported as skipped.
	refused string
	skip    string
}

var triggersExamples = []triggersExample{
	{name: "bitbucket-server", files: []string{"bitbucket-server/*.yaml"}, request: "curl"},
	{name: "embedded-trigger", files: []string{"embedded-trigger/*.yaml"}, request: "curl"},
	{name: "github", files: []string{"github/*.yaml"}, request: "curl", contains: []string{"28911bbb5a3e2ea034daf1f6be0a822d50e31e73"},
		condition: string(eventlistener.ConditionResourcesApplied) + "=False"},
	{name: "gitlab", files: []string{"gitlab/*.yaml"}, request: "curl"},
	{name: "label-selector", files: []string{"label-selector/*.yaml"}, request: "curl"},
	{name: "namespace-selector", files: []string{"namespace-selector/*.yaml"}, request: "curl"},
	{name: "trigger-ref", files: []string{"trigger-ref/*.yaml"}},
	{name: "slack", files: []string{"slack/*.yaml"}, request: "curl"},
	{name: "triggergroups", files: []string{"triggergroups/*.yaml"}},
	{name: "create-configmap", files: []string{"create-configmap/*.yaml"}, request: "curl"},
	{name: "cel-overlays", files: []string{"eventlisteners/cel-eventlistener-multiple-overlays.yaml"},
		request:  `{"ref":"refs/heads/main","pull_request":{"head":{"sha":"28911bbb5a3e2ea034daf1f6be0a822d50e31e73"}}}`,
		contains: []string{"SHA is : 28911bb. Branch is main"}},
	{name: "clustertriggerbinding", files: []string{"eventlisteners/eventlistener-clustertriggerbinding.yaml", "clustertriggerbindings/*.yaml", "triggertemplates/*.yaml"},
		request:  `{"head_commit":{"id":"6f2c1a7"},"repository":{"url":"https://forge.example/org/repo.git"}}`,
		contains: []string{"6f2c1a7", "https://forge.example/org/repo.git"}},
	{name: "kubernetesresource-replicas", files: []string{"eventlisteners/eventlistener-replicas.yaml", "triggerbindings/*.yaml", "triggertemplates/*.yaml"},
		request: `{"head_commit":{"id":"9e8d7c6"},"repository":{"url":"https://forge.example/r.git"}}`, contains: []string{"9e8d7c6"},
		condition: string(eventlistener.ConditionResourcesApplied) + "=False"},
	{name: "bitbucket-cloud", files: []string{"bitbucket-cloud/*.yaml"}, refused: eventlistener.ReasonUnsigned},
	{name: "cron", skip: "its events come from a CronJob in the listener's cluster: tenants have no cluster of their own to run one"},
	{name: "github-add-changed-files-pr", skip: "the interceptor asks api.github.com for the changed files: no internet here"},
	{name: "github-add-changed-files-push-cel", skip: "the interceptor asks api.github.com for the changed files: no internet here"},
	{name: "github-owners", skip: "the interceptor asks api.github.com for the repository's owners: no internet here"},
	{name: "custom-resource", skip: "the listener is a Knative Service (resources.customResource): one shared sink serves every listener here, and such a listener gets ResourcesApplied=False"},
}

// TestTriggersExamples runs Triggers' examples that need no internet and
// prints "triggers examples: N passed, M failed, K skipped", with a reason
// for each skip.
func TestTriggersExamples(t *testing.T) {
	ctx := context.Background()
	root := triggersModuleDir(t)
	var mu sync.Mutex
	outcomes := map[string][2]string{}
	record := func(name, result, detail string) {
		mu.Lock()
		defer mu.Unlock()
		outcomes[name] = [2]string{result, detail}
	}
	sem := make(chan struct{}, 3)
	t.Run("group", func(t *testing.T) {
		for _, ex := range triggersExamples {
			t.Run(ex.name, func(t *testing.T) {
				if ex.skip != "" {
					record(ex.name, "skipped", ex.skip)
					t.Skip(ex.skip)
				}
				t.Parallel()
				sem <- struct{}{}
				defer func() { <-sem }()
				detail, err := runTriggersExample(ctx, t, root, ex)
				switch {
				case err != nil:
					record(ex.name, "failed", err.Error())
					t.Error(err)
				case ex.refused != "":
					record(ex.name, "skipped", detail)
				default:
					record(ex.name, "passed", detail)
				}
			})
		}
	})
	counts := map[string]int{}
	names := make([]string, 0, len(outcomes))
	for name := range outcomes {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		o := outcomes[name]
		counts[o[0]]++
		t.Logf("%s %s: %s", o[0], name, o[1])
	}
	fmt.Printf("triggers examples: %d passed, %d failed, %d skipped\n", counts["passed"], counts["failed"], counts["skipped"])
}

func triggersModuleDir(t *testing.T) string {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/tektoncd/triggers").Output()
	if err != nil {
		t.Fatalf("locate tektoncd/triggers: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// runTriggersExample runs one example in a workspace of its own.
func runTriggersExample(ctx context.Context, t *testing.T, root string, ex triggersExample) (string, error) {
	tn := env.NewTenant(ctx, t, "e2e-trex")
	files := []string{filepath.Join(root, "examples", "rbac.yaml")}
	for _, g := range ex.files {
		matches, _ := filepath.Glob(filepath.Join(root, "examples", "v1beta1", g))
		sort.Strings(matches)
		files = append(files, matches...)
	}
	listener := ""
	for _, f := range files {
		out, errOut, err := framework.Kubectl(ctx, t, tn.Kubeconfig, "apply", "-f", f)
		if err != nil {
			return "", fmt.Errorf("kubectl apply %s: %v\n%s%s", f, err, out, errOut)
		}
		if name := eventListenerIn(f); name != "" {
			listener = name
		}
	}
	if listener == "" {
		return "", fmt.Errorf("no EventListener in %v", ex.files)
	}
	if ex.refused != "" {
		el := tn.WaitEventListener(ctx, t, "default", listener, "False", ex.refused)
		return "refused by design, upstream accepts it: " + el.Status.GetCondition(apis.ConditionReady).Message, nil
	}
	el := tn.WaitEventListener(ctx, t, "default", listener, "True", "")
	if ex.condition != "" {
		typ, status, _ := strings.Cut(ex.condition, "=")
		c := el.Status.GetCondition(apis.ConditionType(typ))
		if c == nil || string(c.Status) != status {
			return "", fmt.Errorf("listener %s: condition %s is %v, want %s", listener, typ, c, status)
		}
	}
	if ex.request == "" {
		return "listener Ready (no request, as upstream)", nil
	}
	headers, body := map[string]string{"Content-Type": "application/json", "X-GitHub-Event": "push"}, []byte(ex.request)
	if ex.request == "curl" {
		var err error
		if headers, body, err = curlRequest(root, filepath.Join(root, "examples", "v1beta1", ex.name, "curl.sh")); err != nil {
			return "", err
		}
	}
	ev := tn.PostEvent(t, address(t, el), headers, body)
	if ev.Code != http.StatusAccepted || ev.ID == "" {
		return "", fmt.Errorf("request to %s: HTTP %d %s, want 202 with an event ID", listener, ev.Code, ev.Body)
	}
	created, err := createdByEvent(ctx, t, tn, ev.ID)
	if err != nil {
		return "", err
	}
	for _, want := range ex.contains {
		if !strings.Contains(created.content, want) {
			return "", fmt.Errorf("%s made by the event does not hold %q: %s", created.name, want, created.content)
		}
	}
	return "created " + created.name, nil
}

// eventListenerIn is the name of the first EventListener in a YAML file.
func eventListenerIn(file string) string {
	data, err := os.ReadFile(file)
	if err != nil {
		return ""
	}
	for _, doc := range strings.Split(string(data), "\n---") {
		var obj struct {
			Kind     string
			Metadata struct{ Name string }
		}
		if yaml.Unmarshal([]byte(doc), &obj) == nil && obj.Kind == "EventListener" {
			return obj.Metadata.Name
		}
	}
	return ""
}

type created struct{ name, content string }

// createdByEvent waits for what the event created: a TaskRun, PipelineRun
// or ConfigMap in any namespace labelled with the event's ID, as
// upstream's example test looks for.
func createdByEvent(ctx context.Context, t *testing.T, tn *framework.Tenant, id string) (created, error) {
	client, err := dynamic.NewForConfig(tn.Rest)
	if err != nil {
		return created{}, err
	}
	resources := []schema.GroupVersionResource{
		{Group: "tekton.dev", Version: "v1", Resource: "taskruns"},
		{Group: "tekton.dev", Version: "v1", Resource: "pipelineruns"},
		{Version: "v1", Resource: "configmaps"},
	}
	deadline := time.Now().Add(time.Minute)
	for {
		for _, gvr := range resources {
			list, err := client.Resource(gvr).List(ctx, metav1.ListOptions{LabelSelector: "triggers.tekton.dev/triggers-eventid=" + id})
			if err != nil {
				return created{}, err
			}
			if len(list.Items) > 0 {
				return describe(gvr, &list.Items[0]), nil
			}
		}
		if time.Now().After(deadline) {
			return created{}, fmt.Errorf("nothing labelled with event %s after 1m", id)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func describe(gvr schema.GroupVersionResource, u *unstructured.Unstructured) created {
	data, _ := json.Marshal(u.Object)
	return created{name: gvr.Resource + " " + u.GetNamespace() + "/" + u.GetName(), content: string(data)}
}

func metav1ListByEvent(id string) metav1.ListOptions {
	return metav1.ListOptions{LabelSelector: "triggers.tekton.dev/triggers-eventid=" + id}
}
