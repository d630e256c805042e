package gateway

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
)

// Workspaces serve no pods of their own; the gateway does. Discovery of
// the core group says so, for kubectl's REST mapper.
var (
	podVerbs = []string{"get", "list", "watch"}

	// legacyPods are the entries of GET /api/v1 (an APIResourceList).
	legacyPods = []map[string]any{
		{"name": "pods", "singularName": "pod", "namespaced": true, "kind": "Pod", "verbs": podVerbs, "shortNames": []string{"po"}, "categories": []string{"all"}},
		{"name": "pods/log", "singularName": "", "namespaced": true, "kind": "Pod", "verbs": []string{"get"}},
	}

	// aggregatedPods is the entry of the core v1 version in GET /api as an
	// APIGroupDiscoveryList (aggregated discovery, apidiscovery.k8s.io/v2).
	aggregatedPods = map[string]any{
		"resource": "pods", "singularResource": "pod", "scope": "Namespaced",
		"responseKind": map[string]any{"group": "", "version": "v1", "kind": "Pod"},
		"verbs":        podVerbs, "shortNames": []string{"po"}, "categories": []string{"all"},
		"subresources": []map[string]any{{"subresource": "log", "responseKind": map[string]any{"group": "", "version": "v1", "kind": "Pod"}, "verbs": []string{"get"}}},
	}
)

// isCoreDiscovery says whether a workspace-relative path is the core
// group's discovery.
func isCoreDiscovery(rest string) bool { return rest == "/api" || rest == "/api/v1" }

// prepareDiscovery asks kcp for a body the gateway can amend: JSON, not
// compressed, not answered from the client's cache (304).
func prepareDiscovery(out *http.Request) {
	out.Header.Set("Accept", jsonAccept(out.Header.Get("Accept")))
	out.Header.Del("Accept-Encoding")
	out.Header.Del("If-None-Match")
}

// amendDiscovery adds pods to kcp's answer for the core group.
func amendDiscovery(resp *http.Response) error {
	if resp.StatusCode != http.StatusOK {
		return nil
	}
	data, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return err
	}
	var obj map[string]any
	if json.Unmarshal(data, &obj) == nil && addPods(obj) {
		if amended, err := json.Marshal(obj); err == nil {
			data = amended
		}
	}
	resp.Body = io.NopCloser(bytes.NewReader(data))
	resp.ContentLength = int64(len(data))
	resp.Header.Set("Content-Length", strconv.Itoa(len(data)))
	resp.Header.Del("ETag")
	return nil
}

// addPods amends an APIResourceList of v1 or an aggregated discovery
// list; it reports whether it changed obj.
func addPods(obj map[string]any) bool {
	switch obj["kind"] {
	case "APIResourceList":
		if obj["groupVersion"] != "v1" {
			return false
		}
		resources := asSlice(obj["resources"])
		for _, r := range resources {
			if m, _ := r.(map[string]any); m["name"] == "pods" {
				return false
			}
		}
		for _, r := range legacyPods {
			resources = append(resources, r)
		}
		obj["resources"] = resources
		return true
	case "APIGroupDiscoveryList":
		for _, g := range asSlice(obj["items"]) {
			group, _ := g.(map[string]any)
			if metaString(group, "name") != "" {
				continue
			}
			for _, v := range asSlice(group["versions"]) {
				version, _ := v.(map[string]any)
				if version["version"] != "v1" {
					continue
				}
				resources := asSlice(version["resources"])
				for _, r := range resources {
					if m, _ := r.(map[string]any); m["resource"] == "pods" {
						return false
					}
				}
				version["resources"] = append(resources, aggregatedPods)
				return true
			}
		}
	}
	return false
}
