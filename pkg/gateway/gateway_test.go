package gateway

import (
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/kcp-dev/logicalcluster/v3"
	"k8s.io/apiserver/pkg/authentication/user"

	"github.com/pipelines-service/pipelines-service/pkg/workload"
)

func TestResourceVersionsRoundTrip(t *testing.T) {
	rvs := resourceVersions{"workload-1": "120", "workload-2": "7"}
	got, err := decodeResourceVersion(rvs.encode())
	if err != nil || !reflect.DeepEqual(got, rvs) {
		t.Fatalf("decode(encode(%v)) = %v, %v", rvs, got, err)
	}
	for _, tc := range []struct{ cluster, asked, want string }{
		{"workload-1", "", "120"},
		{"workload-3", "", "0"}, // joined since: everything it has, as additions
	} {
		if got := got.on(tc.cluster, tc.asked); got != tc.want {
			t.Errorf("on(%s) = %q, want %q", tc.cluster, got, tc.want)
		}
	}
	for _, asked := range []string{"", "0"} {
		none, err := decodeResourceVersion(asked)
		if err != nil || none.on("workload-1", asked) != asked {
			t.Errorf("%q: %v %v", asked, none, err)
		}
	}
	if _, err := decodeResourceVersion("12345"); err == nil {
		t.Error("a workload cluster's own resource version decoded")
	}
}

func workloadPod(cluster, namespace string) map[string]any {
	return map[string]any{
		"kind": "Pod", "apiVersion": "v1",
		"metadata": map[string]any{
			"name": "build-pod", "namespace": workload.Namespace(logicalcluster.Name(cluster), namespace), "resourceVersion": "41",
			"managedFields": []any{map[string]any{"manager": "kubelet"}},
			"labels": map[string]any{
				workload.LabelClusterName: cluster, workload.LabelTaskRunUID: "u", workload.LabelManagedBy: workload.ManagedByValue,
				"tekton.dev/taskRun": "build",
			},
			"annotations": map[string]any{workload.AnnotationClusterNS: cluster + "/" + namespace, workload.AnnotationTaskRun: namespace + "/build"},
		},
		"status": map[string]any{"hostIP": "10.244.0.2", "hostIPs": []any{"10.244.0.2"}, "podIP": "10.245.0.9"},
	}
}

func TestTenantView(t *testing.T) {
	pod := workloadPod("abc", "default")
	if !tenantView(pod, "abc", "opaque") {
		t.Fatal("the workspace's own pod was dropped")
	}
	want := map[string]any{
		"kind": "Pod", "apiVersion": "v1",
		"metadata": map[string]any{
			"name": "build-pod", "namespace": "default", "resourceVersion": "opaque",
			"labels": map[string]any{workload.LabelManagedBy: "tekton-pipelines", "tekton.dev/taskRun": "build"},
		},
		"status": map[string]any{"podIP": "10.245.0.9"},
	}
	if !reflect.DeepEqual(pod, want) {
		t.Errorf("tenant view\n got %v\nwant %v", pod, want)
	}
	if tenantView(workloadPod("other", "default"), "abc", "") {
		t.Error("another workspace's pod was kept")
	}
	if tenantView(map[string]any{"metadata": map[string]any{"name": "x"}}, "abc", "") {
		t.Error("a pod without the tenant annotation was kept")
	}
}

func TestTableView(t *testing.T) {
	table := map[string]any{"kind": "Table", "apiVersion": "meta.k8s.io/v1", "rows": []any{
		map[string]any{"cells": []any{"build-pod"}, "object": workloadPod("abc", "default")},
		map[string]any{"cells": []any{"theirs"}, "object": workloadPod("other", "default")},
		map[string]any{"cells": []any{"no object"}},
	}}
	tableView(table, "abc", "rv", false)
	rows := asSlice(table["rows"])
	if len(rows) != 1 || rows[0].(map[string]any)["object"] != nil {
		t.Fatalf("rows %v, want the workspace's row without its object", rows)
	}
}

func TestParsePodPath(t *testing.T) {
	for _, tc := range []struct {
		rest string
		want podPath
		ok   bool
	}{
		{"/api/v1/pods", podPath{}, true},
		{"/api/v1/namespaces/default/pods", podPath{namespace: "default"}, true},
		{"/api/v1/namespaces/default/pods/p", podPath{namespace: "default", name: "p"}, true},
		{"/api/v1/namespaces/default/pods/p/log", podPath{namespace: "default", name: "p", subresource: "log"}, true},
		{"/api/v1/namespaces/default/pods/p/exec", podPath{namespace: "default", name: "p", subresource: "exec"}, true},
		{"/api/v1/namespaces/default/configmaps", podPath{}, false},
		{"/api/v1/namespaces/default", podPath{}, false},
		{"/apis/tekton.dev/v1/namespaces/default/taskruns", podPath{}, false},
		{"/api/v1/namespaces//pods", podPath{}, false},
	} {
		got, ok := parsePodPath(tc.rest)
		if ok != tc.ok || got != tc.want {
			t.Errorf("parsePodPath(%q) = %+v, %v; want %+v, %v", tc.rest, got, ok, tc.want, tc.ok)
		}
	}
}

// TestValidNames: a name that would change the workload cluster's
// request path (".." leads from the pod to its namespace) is refused.
func TestValidNames(t *testing.T) {
	for _, tc := range []struct {
		path podPath
		ok   bool
	}{
		{podPath{namespace: "default", name: "build-pod"}, true},
		{podPath{}, true},
		{podPath{namespace: "default", name: ".."}, false},
		{podPath{namespace: "default", name: "."}, false},
		{podPath{namespace: "..", name: "p"}, false},
		{podPath{namespace: "Default"}, false},
		{podPath{namespace: "default", name: "a?b"}, false},
	} {
		if err := validNames(tc.path); (err == nil) != tc.ok {
			t.Errorf("validNames(%+v) = %v, want ok %v", tc.path, err, tc.ok)
		}
	}
}

func TestSplitWorkspace(t *testing.T) {
	ws, rest := splitWorkspace("/clusters/root:demo/api/v1/namespaces/default/pods")
	if ws.String() != "root:demo" || rest != "/api/v1/namespaces/default/pods" {
		t.Errorf("got %s %s", ws, rest)
	}
	if ws, rest := splitWorkspace("/version"); !ws.Empty() || rest != "/version" {
		t.Errorf("got %s %s", ws, rest)
	}
}

func TestListQuery(t *testing.T) {
	p := podRequest{workspace: "abc", query: url.Values{
		"labelSelector": {"tekton.dev/taskRun=build"}, "fieldSelector": {"metadata.namespace=default,metadata.name=p"},
		"resourceVersion": {resourceVersions{"w1": "5"}.encode()}, "limit": {"500"}, "watch": {"true"},
	}, accept: "application/json;as=Table;v=v1;g=meta.k8s.io"}
	asked, _ := decodeResourceVersion(p.query.Get("resourceVersion"))
	q, err := p.listQuery("w1", asked)
	if err != nil {
		t.Fatal(err)
	}
	wantFields := "metadata.name=p,metadata.namespace=" + workload.Namespace("abc", "default")
	if q.Get("resourceVersion") != "5" || q.Get("watch") != "true" || q.Get("limit") != "" || q.Get("includeObject") != "Metadata" {
		t.Errorf("query %v", q)
	}
	if q.Get("fieldSelector") != wantFields {
		t.Errorf("fieldSelector %q, want %q", q.Get("fieldSelector"), wantFields)
	}
	if ls := q.Get("labelSelector"); !strings.Contains(ls, workload.LabelClusterName+"=abc") || !strings.Contains(ls, "tekton.dev/taskRun=build") {
		t.Errorf("an all-namespace list selects %q, want the workspace's pods only", ls)
	}
	p.query.Set("labelSelector", "a in (")
	if _, err := p.listQuery("w1", asked); err == nil {
		t.Error("a bad label selector was passed on")
	}
}

func TestLogQuery(t *testing.T) {
	q, opts, err := logQuery(url.Values{"container": {"step-x"}, "follow": {"true"}, "tailLines": {"10"}, "insecureSkipTLSVerifyBackend": {"true"}})
	if err != nil || !opts.Follow || opts.Container != "step-x" || q.Get("insecureSkipTLSVerifyBackend") != "" || q.Get("tailLines") != "10" {
		t.Errorf("got %v %+v %v", q, opts, err)
	}
	for _, bad := range []url.Values{{"follow": {"maybe"}}, {"tailLines": {"-1"}}, {"sinceSeconds": {"0"}}, {"sinceTime": {"yesterday"}}, {"limitBytes": {"x"}}} {
		if _, _, err := logQuery(bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

func TestSetCallerReplacesClientIdentity(t *testing.T) {
	h := http.Header{}
	h.Set("Authorization", "Bearer theirs")
	h.Set("X-Remote-User", "system:admin")
	h.Add("X-Remote-Group", "system:masters")
	h.Set("X-Remote-Extra-Scopes", "cluster:root")
	h.Set("Accept", "application/json")
	setCaller(h, &user.DefaultInfo{Name: "tenant-a", Groups: []string{"system:authenticated"},
		Extra: map[string][]string{"authentication.kcp.io/scopes": {"cluster:abc"}}})
	want := http.Header{}
	want.Set("Accept", "application/json")
	want.Set("X-Remote-User", "tenant-a")
	want.Set("X-Remote-Group", "system:authenticated")
	// The extra's key is escaped (kcp unescapes it).
	want.Set("X-Remote-Extra-Authentication.kcp.io%2Fscopes", "cluster:abc")
	if !reflect.DeepEqual(h, want) {
		t.Errorf("headers\n got %v\nwant %v", h, want)
	}
}

func TestAddPods(t *testing.T) {
	legacy := map[string]any{"kind": "APIResourceList", "groupVersion": "v1", "resources": []any{map[string]any{"name": "configmaps"}}}
	if !addPods(legacy) || len(asSlice(legacy["resources"])) != 3 || addPods(legacy) {
		t.Errorf("legacy discovery: %v", legacy)
	}
	aggregated := map[string]any{"kind": "APIGroupDiscoveryList", "items": []any{map[string]any{
		"metadata": map[string]any{"name": ""},
		"versions": []any{map[string]any{"version": "v1", "resources": []any{}}},
	}}}
	if !addPods(aggregated) || addPods(aggregated) {
		t.Errorf("aggregated discovery: %v", aggregated)
	}
}
