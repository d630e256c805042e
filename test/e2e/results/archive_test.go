//go:build e2e

package results

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/pipelines-service/pipelines-service/pkg/reconciler/recorder"
	"github.com/pipelines-service/pipelines-service/pkg/tenantconfig"
	"github.com/pipelines-service/pipelines-service/test/e2e/framework"
)

const ns = "default"

// pipelineRun has one task whose step prints "<name> says hello" and
// exits with code.
func pipelineRun(name string, code int) *v1.PipelineRun {
	script := fmt.Sprintf("#!/bin/sh\necho %s says hello\necho second line\nexit %d\n", name, code)
	return &v1.PipelineRun{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1.PipelineRunSpec{PipelineSpec: &v1.PipelineSpec{
		Tasks: []v1.PipelineTask{{Name: "speak", TaskSpec: &v1.EmbeddedTask{TaskSpec: v1.TaskSpec{Steps: []v1.Step{
			{Name: "hello", Image: "docker.io/library/busybox:1.36", Script: script},
		}}}}},
	}}}
}

// runAndWaitStored creates the PipelineRuns in the tenant and waits until
// each is done and marked stored by the recorder, with its TaskRuns.
func runAndWaitStored(ctx context.Context, t *testing.T, tn *framework.Tenant, prs ...*v1.PipelineRun) {
	t.Helper()
	for _, pr := range prs {
		if _, err := tn.Tekton.TektonV1().PipelineRuns(ns).Create(ctx, pr, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	framework.Eventually(t, 4*time.Minute, "every run of "+tn.Name+" stored in Results", func() (bool, string, error) {
		prList, trList, err := tenantRuns(ctx, tn)
		if err != nil {
			return false, "", err
		}
		var waiting []string
		for _, pr := range prList.Items {
			if pr.Annotations[recorder.AnnotationStored] != "true" {
				waiting = append(waiting, "pipelinerun/"+pr.Name)
			}
		}
		for _, tr := range trList.Items {
			if tr.Annotations[recorder.AnnotationStored] != "true" {
				waiting = append(waiting, "taskrun/"+tr.Name)
			}
		}
		if len(prList.Items) < len(prs) || len(trList.Items) < len(prs) {
			return false, "runs not all created yet", nil
		}
		return len(waiting) == 0, "not stored: " + strings.Join(waiting, ", "), nil
	})
}

// tenantRuns lists the tenant's PipelineRuns and TaskRuns in ns.
func tenantRuns(ctx context.Context, tn *framework.Tenant) (*v1.PipelineRunList, *v1.TaskRunList, error) {
	prs, err := tn.Tekton.TektonV1().PipelineRuns(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, nil, err
	}
	trs, err := tn.Tekton.TektonV1().TaskRuns(ns).List(ctx, metav1.ListOptions{})
	return prs, trs, err
}

// waitPruned waits until the tenant's workspace holds no PipelineRun or
// TaskRun any more, and the workload cluster none of its pods.
func waitPruned(ctx context.Context, t *testing.T, tn *framework.Tenant, workload kubernetes.Interface) {
	t.Helper()
	framework.Eventually(t, 3*time.Minute, tn.Name+"'s runs pruned", func() (bool, string, error) {
		prs, trs, err := tenantRuns(ctx, tn)
		if err != nil {
			return false, "", err
		}
		pods, err := framework.TenantPods(ctx, workload, tn)
		if err != nil {
			return false, "", err
		}
		return len(prs.Items)+len(trs.Items)+len(pods) == 0,
			fmt.Sprintf("%d PipelineRuns, %d TaskRuns, %d pods left", len(prs.Items), len(trs.Items), len(pods)), nil
	})
}

// resultsGET asks the gateway for a Results path as the tenant of rc (its
// host holds the workspace), with a query; it returns the status and body.
func resultsGET(ctx context.Context, t *testing.T, rc *rest.Config, path string, query url.Values) (int, []byte) {
	t.Helper()
	client, err := rest.HTTPClientFor(rc)
	if err != nil {
		t.Fatal(err)
	}
	u := rc.Host + "/apis/results.tekton.dev/v1alpha2/parents/" + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

type record struct {
	Name string `json:"name"`
	Data struct {
		Type  string `json:"type"`
		Value string `json:"value"`
	} `json:"data"`
}

// runName is the metadata.name of the run a record holds.
func (r record) runName(t *testing.T) string {
	raw, err := base64.StdEncoding.DecodeString(r.Data.Value)
	if err != nil {
		t.Fatalf("record %s: data: %v", r.Name, err)
	}
	var obj metav1.PartialObjectMetadata
	if err := json.Unmarshal(raw, &obj); err != nil {
		t.Fatalf("record %s: %v", r.Name, err)
	}
	return obj.Name
}

// listRecords lists the records of every Result of the namespace that
// match filter, as the tenant of rc; it returns the runs' names, sorted.
func listRecords(ctx context.Context, t *testing.T, rc *rest.Config, filter string) ([]string, []record) {
	t.Helper()
	code, body := resultsGET(ctx, t, rc, ns+"/results/-/records", url.Values{"filter": {filter}, "page_size": {"100"}})
	if code != http.StatusOK {
		t.Fatalf("list records (%s): %d %s", filter, code, body)
	}
	var list struct {
		Records []record `json:"records"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatalf("list records: %v: %s", err, body)
	}
	var names []string
	for _, r := range list.Records {
		if !strings.HasPrefix(r.Name, ns+"/results/") {
			t.Errorf("record name %q is not the tenant's (%s/results/...)", r.Name, ns)
		}
		names = append(names, r.runName(t))
	}
	sort.Strings(names)
	return names, list.Records
}

// TestRunsArchivedPerWorkspace: the runs of two tenants are archived, each
// with its record, its status and what its steps printed; each tenant
// lists its own runs only, a CEL filter finds the failed ones, and the
// other tenant is refused.
func TestRunsArchivedPerWorkspace(t *testing.T) {
	t.Parallel() // after the tests that restart Results, beside each other
	ctx := context.Background()
	a := env.NewTenant(ctx, t, "e2e-results-a")
	b := env.NewTenant(ctx, t, "e2e-results-b")
	// 21 PipelineRuns in two tenants: A has 8 that succeed and 2 that
	// fail, B 10 that succeed, under the same names as A's, and a silent
	// one.
	var aRuns, bRuns []*v1.PipelineRun
	var aNames, bNames, aFailed []string
	for i := 0; i < 10; i++ {
		name, code := fmt.Sprintf("ok-%d", i), 0
		if i >= 8 {
			name, code = fmt.Sprintf("broken-%d", i), 3
			aFailed = append(aFailed, name)
		}
		aRuns, aNames = append(aRuns, pipelineRun(name, code)), append(aNames, name)
		bRuns, bNames = append(bRuns, pipelineRun(fmt.Sprintf("ok-%d", i), 0)), append(bNames, fmt.Sprintf("ok-%d", i))
	}
	// And one that prints nothing: its empty Log is stored too (Results
	// serves no content for it), and the run marked stored.
	silent := pipelineRun("silent", 0)
	silent.Spec.PipelineSpec.Tasks[0].TaskSpec.Steps[0].Script = "#!/bin/sh\ntrue\n"
	bRuns, bNames = append(bRuns, silent), append(bNames, "silent")
	sort.Strings(aNames)
	sort.Strings(bNames)
	runAndWaitStored(ctx, t, a, aRuns...)
	runAndWaitStored(ctx, t, b, bRuns...)

	got, _ := listRecords(ctx, t, a.Rest, `data_type == "tekton.dev/v1.PipelineRun"`)
	if strings.Join(got, ",") != strings.Join(aNames, ",") {
		t.Errorf("tenant A's PipelineRun records: %v, want %v", got, aNames)
	}
	got, _ = listRecords(ctx, t, b.Rest, `data_type == "tekton.dev/v1.PipelineRun"`)
	if strings.Join(got, ",") != strings.Join(bNames, ",") {
		t.Errorf("tenant B's PipelineRun records: %v, want %v (a default namespace of its own)", got, bNames)
	}
	got, _ = listRecords(ctx, t, a.Rest, `data_type == "tekton.dev/v1.PipelineRun" && data.status.conditions[0].reason == "Failed"`)
	if strings.Join(got, ",") != strings.Join(aFailed, ",") {
		t.Errorf("tenant A's failed PipelineRuns by CEL filter: %v, want %v", got, aFailed)
	}

	// Logs: every TaskRun's log holds what its step printed.
	_, taskRecords := listRecords(ctx, t, a.Rest, `data_type == "tekton.dev/v1.TaskRun"`)
	if len(taskRecords) != len(aRuns) {
		t.Fatalf("tenant A has %d TaskRun records, want %d", len(taskRecords), len(aRuns))
	}
	for _, r := range taskRecords {
		// <ns>/results/<result>/records/<run uid>: GetLog finds the Log of
		// that run.
		logPath := strings.Replace(r.Name, "/records/", "/logs/", 1)
		code, body := resultsGET(ctx, t, a.Rest, logPath, nil)
		prName := strings.TrimSuffix(r.runName(t), "-speak")
		want := fmt.Sprintf("[hello] %s says hello\n[hello] second line\n", prName)
		// Results' REST gateway ends each streamed chunk with a newline.
		if code != http.StatusOK || strings.TrimRight(string(body), "\n") != strings.TrimRight(want, "\n") {
			t.Errorf("log of %s: %d %q, want %q", r.runName(t), code, body, want)
		}
	}

	// Tenant B on tenant A's workspace: refused by A's RBAC.
	bOnA := rest.CopyConfig(b.Rest)
	base, _, found := strings.Cut(b.Rest.Host, "/clusters/")
	if !found {
		t.Fatalf("tenant kubeconfig server %s names no workspace", b.Rest.Host)
	}
	bOnA.Host = base + "/clusters/" + a.Cluster.String()
	if code, body := resultsGET(ctx, t, bOnA, ns+"/results", nil); code != http.StatusForbidden {
		t.Errorf("tenant B listing tenant A's Results: %d %s, want 403", code, body)
	}

	// Pruning with a retention of 0 in tenant A: its runs leave the
	// workspace and their pods the workload cluster; the archive keeps
	// them. Tenant B keeps the platform's retention, and its runs.
	_, aTaskRuns, err := tenantRuns(ctx, a)
	if err != nil || len(aTaskRuns.Items) == 0 {
		t.Fatalf("tenant A's TaskRuns: %v, %d", err, len(aTaskRuns.Items))
	}
	okRun := aTaskRuns.Items[0]
	for _, tr := range aTaskRuns.Items {
		if strings.HasPrefix(tr.Name, "ok-") {
			okRun = tr
		}
	}
	a.SetConfigMap(ctx, t, tenantconfig.RetentionConfigName, map[string]string{"runAt": "* * * * *", "defaultRetention": "0"})
	workload := env.ClusterClient(t, "workload-1")
	waitPruned(ctx, t, a, workload)
	got, _ = listRecords(ctx, t, a.Rest, `data_type == "tekton.dev/v1.PipelineRun"`)
	if strings.Join(got, ",") != strings.Join(aNames, ",") {
		t.Errorf("tenant A's archive after pruning: %v, want %v", got, aNames)
	}
	for _, r := range taskRecords {
		code, body := resultsGET(ctx, t, a.Rest, strings.Replace(r.Name, "/records/", "/logs/", 1), nil)
		if code != http.StatusOK || !strings.Contains(string(body), "says hello") {
			t.Errorf("log of pruned %s: %d %q", r.runName(t), code, body)
		}
	}
	checkArchiveView(ctx, t, a, b, okRun)
	checkTknResults(ctx, t, a, b, aNames, okRun)
	if prs, err := b.Tekton.TektonV1().PipelineRuns(ns).List(ctx, metav1.ListOptions{}); err != nil || len(prs.Items) != len(bRuns) {
		t.Errorf("tenant B's runs under the platform's retention (upstream's 30 days): %v; want its %d PipelineRuns kept", err, len(bRuns))
	}
	// Then B's own retention of 0: the workspaces and the workload
	// cluster hold none of the 20 runs any more; B's archive has them all.
	b.SetConfigMap(ctx, t, tenantconfig.RetentionConfigName, map[string]string{"runAt": "* * * * *", "defaultRetention": "0"})
	waitPruned(ctx, t, b, workload)
	got, _ = listRecords(ctx, t, b.Rest, `data_type == "tekton.dev/v1.PipelineRun"`)
	if strings.Join(got, ",") != strings.Join(bNames, ",") {
		t.Errorf("tenant B's archive after pruning: %v, want %v", got, bNames)
	}

	// What would leave the tenant's parent is refused.
	for path, want := range map[string]int{
		"-/results":                             http.StatusBadRequest, // every parent
		a.Cluster.String() + "_default/results": http.StatusBadRequest, // an internal parent
		ns + "/results/../../x/results":         http.StatusBadRequest,
	} {
		if code, body := resultsGET(ctx, t, b.Rest, path, nil); code != want {
			t.Errorf("GET parents/%s as tenant B: %d %s, want %d", path, code, body, want)
		}
	}
}
