package gateway

import (
	"bytes"
	"io"
	"net/http"
	"testing"
)

func TestResultsPathAccess(t *testing.T) {
	cases := []struct {
		path               string
		verb, resource     string
		notFound, badInput bool
	}{
		{path: "/apis/results.tekton.dev/v1alpha2/parents/default/results", verb: "list", resource: "results"},
		{path: "/apis/results.tekton.dev/v1alpha2/parents/default/results/r1", verb: "get", resource: "results"},
		{path: "/apis/results.tekton.dev/v1alpha2/parents/default/results/-/records", verb: "list", resource: "records"},
		{path: "/apis/results.tekton.dev/v1alpha2/parents/default/results/r1/records/x", verb: "get", resource: "records"},
		{path: "/apis/results.tekton.dev/v1alpha2/parents/default/results/r1/records/summary", verb: "get", resource: "records"},
		{path: "/apis/results.tekton.dev/v1alpha2/parents/default/results/r1/logs", verb: "list", resource: "logs"},
		{path: "/apis/results.tekton.dev/v1alpha2/parents/default/results/r1/logs/x", verb: "get", resource: "logs"},
		{path: "/apis/results.tekton.dev/v1alpha2/parents/default/other", notFound: true},
		{path: "/apis/results.tekton.dev/v1alpha2/parents/-/results", badInput: true},
		{path: "/apis/results.tekton.dev/v1alpha2/parents/c1_default/results", badInput: true},
		{path: "/apis/results.tekton.dev/v1alpha2/parents/default/results/../../x_y/results", badInput: true},
		{path: "/apis/results.tekton.dev/v1alpha2/parents/default/results//records", badInput: true},
	}
	for _, tc := range cases {
		p, ok := parseResultsPath(tc.path)
		if !ok {
			t.Fatalf("%s: not recognised", tc.path)
		}
		err := p.validate()
		if tc.badInput {
			if err == nil {
				t.Errorf("%s: accepted", tc.path)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.path, err)
			continue
		}
		a, err := p.access()
		if tc.notFound {
			if err == nil {
				t.Errorf("%s: served as %+v", tc.path, a)
			}
			continue
		}
		if err != nil || a.verb != tc.verb || a.resource != tc.resource || a.group != resultsGroup || a.namespace != "default" {
			t.Errorf("%s: access %+v, %v; want %s %s", tc.path, a, err, tc.verb, tc.resource)
		}
	}
	if _, ok := parseResultsPath("/api/v1/pods"); ok {
		t.Error("a pods path parsed as Results")
	}
}

func TestRenameParent(t *testing.T) {
	body := `{"results":[{"name":"c1_default/results/r1","summary":{"record":"c1_default/results/r1/records/x"}},{"name":"c1_defaultx/results/r2"}]}`
	resp := &http.Response{Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(bytes.NewBufferString(body))}
	if err := renameParent(resp, "c1_default", "default"); err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	want := `{"results":[{"name":"default/results/r1","summary":{"record":"default/results/r1/records/x"}},{"name":"c1_defaultx/results/r2"}]}`
	if string(got) != want {
		t.Errorf("renamed:\n%s\nwant\n%s", got, want)
	}
	logs := &http.Response{Header: http.Header{"Content-Type": {"text/plain"}}, Body: io.NopCloser(bytes.NewBufferString(`"c1_default/x`))}
	_ = renameParent(logs, "c1_default", "default")
	if got, _ := io.ReadAll(logs.Body); string(got) != `"c1_default/x` {
		t.Errorf("log text changed: %s", got)
	}
}
