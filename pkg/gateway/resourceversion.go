package gateway

import (
	"encoding/base64"
	"fmt"
	"sort"
	"strings"
)

// resourceVersions is where a list or watch of pods stands on each
// workload cluster. Pods of one tenant namespace may lie on several
// clusters (each run is placed on its own), whose resource versions are
// unrelated, so what a client sees is all of them in one opaque string:
// a client that lists, then watches from the list's version (an informer,
// tkn's pod wait) resumes on every cluster where it left off.
type resourceVersions map[string]string

// encode is the opaque form: base64url of "cluster=rv,…", sorted.
func (v resourceVersions) encode() string {
	parts := make([]string, 0, len(v))
	for cluster, rv := range v {
		parts = append(parts, cluster+"="+rv)
	}
	sort.Strings(parts)
	return base64.RawURLEncoding.EncodeToString([]byte(strings.Join(parts, ",")))
}

func (v resourceVersions) with(cluster, rv string) resourceVersions {
	out := make(resourceVersions, len(v)+1)
	for k, x := range v {
		out[k] = x
	}
	out[cluster] = rv
	return out
}

// decodeResourceVersion reads what encode wrote. "" and "0" keep their
// meaning (most recent; any) on every cluster and decode to nil.
func decodeResourceVersion(s string) (resourceVersions, error) {
	if s == "" || s == "0" {
		return nil, nil
	}
	data, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("resource version %q was not issued by this gateway", s)
	}
	out := resourceVersions{}
	for _, part := range strings.Split(string(data), ",") {
		cluster, rv, ok := strings.Cut(part, "=")
		if !ok || cluster == "" || rv == "" {
			return nil, fmt.Errorf("resource version %q was not issued by this gateway", s)
		}
		out[cluster] = rv
	}
	return out, nil
}

// on is the resource version to ask cluster for: the one the client last
// saw there, else what it asked for everywhere ("" or "0"). A cluster the
// client has not seen yet (it joined the fleet since) starts from "0": its
// current pods arrive as additions.
func (v resourceVersions) on(cluster, asked string) string {
	if v == nil {
		return asked
	}
	if rv, ok := v[cluster]; ok {
		return rv
	}
	return "0"
}
