package gateway

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"

	"github.com/kcp-dev/logicalcluster/v3"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apiserver/pkg/authentication/user"

	"github.com/pipelines-service/pipelines-service/pkg/results"
)

// Tekton Results' REST API, served to tenants in their workspace:
// /clusters/<workspace>/apis/results.tekton.dev/v1alpha2/parents/<namespace>/…
// The gateway authorises the caller in the workspace, with the
// SubjectAccessReview upstream's API server makes (group
// results.tekton.dev; results, records or logs; get or list; the
// namespace), then asks Results under the parent that files that
// namespace of that workspace, and gives names back as the tenant knows
// them (<namespace>/results/…). The parent comes from the workspace the
// caller was authorised in, never from the request, so no filter, name or
// page token reaches another tenant's runs.
const resultsAPIPrefix = "/apis/results.tekton.dev/v1alpha2/parents/"

// resultsGroup is the API group of upstream's authorisation checks.
const resultsGroup = "results.tekton.dev"

var resultsResource = schema.GroupResource{Group: resultsGroup, Resource: "results"}

// resultsPath is a parsed Results request: the namespace and what follows
// it (results, results/<r>, results/<r>/records[/<rec>], …/logs[/<rec>]).
type resultsPath struct {
	namespace string
	rest      []string
}

// parseResultsPath recognises a Results API path under a workspace.
func parseResultsPath(rest string) (resultsPath, bool) {
	after, ok := strings.CutPrefix(rest, resultsAPIPrefix)
	if !ok {
		return resultsPath{}, false
	}
	parts := strings.Split(after, "/")
	return resultsPath{namespace: parts[0], rest: parts[1:]}, true
}

// access is the check upstream's API server makes for the request: the
// resource is the last collection named, the verb get for one item and
// list for a collection (records/summary is a get of records).
func (p resultsPath) access() (access, error) {
	r := p.rest
	switch {
	case len(r) == 1 && r[0] == "results":
		return access{group: resultsGroup, verb: "list", resource: "results", namespace: p.namespace}, nil
	case len(r) == 2 && r[0] == "results":
		return access{group: resultsGroup, verb: "get", resource: "results", namespace: p.namespace}, nil
	case len(r) == 3 && r[0] == "results" && (r[2] == "records" || r[2] == "logs"):
		return access{group: resultsGroup, verb: "list", resource: r[2], namespace: p.namespace}, nil
	case len(r) == 4 && r[0] == "results" && r[2] == "records" && r[3] == "summary":
		return access{group: resultsGroup, verb: "get", resource: "records", namespace: p.namespace}, nil
	case len(r) == 4 && r[0] == "results" && (r[2] == "records" || r[2] == "logs"):
		return access{group: resultsGroup, verb: "get", resource: r[2], namespace: p.namespace}, nil
	}
	return access{}, apierrors.NewNotFound(resultsResource, strings.Join(r, "/"))
}

// validate refuses what would leave the tenant's parent: the namespace
// must be one (not "-", upstream's every-parent wildcard), and no segment
// may be empty, "." or "..".
func (p resultsPath) validate() error {
	if errs := validation.IsDNS1123Label(p.namespace); len(errs) > 0 {
		return apierrors.NewBadRequest(fmt.Sprintf("namespace %q: %s (Results are read one namespace at a time)", p.namespace, strings.Join(errs, "; ")))
	}
	for _, s := range p.rest {
		if s == "" || s == "." || s == ".." {
			return apierrors.NewBadRequest(fmt.Sprintf("invalid path segment %q", s))
		}
	}
	return nil
}

// serveResults answers a tenant's Results request.
func (s *Server) serveResults(ctx context.Context, w http.ResponseWriter, r *http.Request, u user.Info, workspace logicalcluster.Path, path resultsPath) {
	if s.results == nil {
		writeError(w, apierrors.NewServiceUnavailable("Tekton Results is not configured on this gateway"))
		return
	}
	if r.Method != http.MethodGet {
		writeError(w, statusFor(http.StatusMethodNotAllowed, fmt.Sprintf(
			"%s is not supported on Results in a workspace: the service records runs; tenants read them", r.Method)))
		return
	}
	if err := path.validate(); err != nil {
		writeError(w, err)
		return
	}
	what, err := path.access()
	if err != nil {
		writeError(w, err)
		return
	}
	cluster, ok := s.authorize(ctx, w, workspace, u, what)
	if !ok {
		return
	}
	parent := results.Parent(cluster, path.namespace)
	target := resultsAPIPrefix + parent + "/" + strings.Join(path.rest, "/")
	s.results.serve(w, r.WithContext(ctx), target, parent, path.namespace)
}

// resultsProxy passes requests on to the Results API's REST gateway and
// renames the parent in JSON answers.
type resultsProxy struct {
	proxy *httputil.ReverseProxy
}

type resultsTargetKey struct{}

type resultsRename struct{ parent, namespace string }

func newResultsProxy(base *url.URL) *resultsProxy {
	return &resultsProxy{proxy: &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(base)
			pr.Out.URL.Path = pr.In.Context().Value(resultsTargetKey{}).(string)
			pr.Out.URL.RawPath = ""
			pr.Out.URL.RawQuery = pr.In.URL.RawQuery
			// The tenant's credentials are the gateway's to check, not
			// something to hand on.
			pr.Out.Header.Del("Authorization")
			pr.Out.Header.Del("Impersonate-User")
			pr.Out.Header.Del("Impersonate-Group")
		},
		ModifyResponse: func(resp *http.Response) error {
			rename, _ := resp.Request.Context().Value(resultsRename{}).(resultsRename)
			return renameParent(resp, rename.parent, rename.namespace)
		},
		FlushInterval: -1, // logs stream as they come
	}}
}

func (p *resultsProxy) serve(w http.ResponseWriter, r *http.Request, target, parent, namespace string) {
	ctx := context.WithValue(r.Context(), resultsTargetKey{}, target)
	ctx = context.WithValue(ctx, resultsRename{}, resultsRename{parent: parent, namespace: namespace})
	p.proxy.ServeHTTP(w, r.WithContext(ctx))
}

// renameParent rewrites "<parent>/…" names in a JSON answer into
// "<namespace>/…", the names the tenant uses. Logs (text) pass as they are.
func renameParent(resp *http.Response, parent, namespace string) error {
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		return nil
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return err
	}
	body = bytes.ReplaceAll(body, []byte(`"`+parent+`/`), []byte(`"`+namespace+`/`))
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
	return nil
}
