package reconciler

import "testing"

func TestResourceOf(t *testing.T) {
	for path, want := range map[string]string{
		"/services/apiexport/abc/tekton.dev/clusters/ws1/apis/tekton.dev/v1/namespaces/default/taskruns/tr-1":        "taskruns",
		"/services/apiexport/abc/tekton.dev/clusters/ws1/apis/tekton.dev/v1/namespaces/default/taskruns/tr-1/status": "taskruns/status",
		"/clusters/ws1/api/v1/namespaces/default/events":                                                             "events",
		"/api/v1/namespaces/ps-x/pods/p/log":                                                                         "pods/log",
		"/api/v1/namespaces/ps-x":                                                                                    "namespaces",
		"/apis/tekton.dev/v1/taskruns":                                                                               "taskruns",
		"/apis/tekton.dev":                                                                                           "",
		"/version":                                                                                                   "",
	} {
		if got := resourceOf(path); got != want {
			t.Errorf("resourceOf(%q) = %q, want %q", path, got, want)
		}
	}
}
