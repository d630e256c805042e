// Package gateway is the tenants' front door to the service: it
// authenticates a client as kcp would, passes every request on to kcp
// under the client's identity (request-header authentication), and serves
// itself what a workspace does not hold: the pods of the tenant's runs,
// and their logs, read from the workload clusters where the runs were
// placed. Tenant RBAC in the workspace decides who may read them.
package gateway

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"

	kcpkubernetes "github.com/kcp-dev/client-go/kubernetes"
	kcpclientset "github.com/kcp-dev/kcp/sdk/client/clientset/versioned/cluster"
	"github.com/kcp-dev/logicalcluster/v3"
	"go.uber.org/zap"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/client-go/rest"

	"github.com/pipelines-service/pipelines-service/pkg/pac"
	"github.com/pipelines-service/pipelines-service/pkg/results"
	"github.com/pipelines-service/pipelines-service/pkg/triggers"
)

// Options wire a gateway.
type Options struct {
	// KCP is kcp's URL (a shard or kcp's own front proxy); KCPCAs verify
	// its serving certificate.
	KCP    *url.URL
	KCPCAs *x509.CertPool
	// ProxyCert is the gateway's front-proxy client certificate, signed by
	// the CA kcp trusts for request headers.
	ProxyCert tls.Certificate
	// ClientCAs are kcp's client CAs: a client certificate they signed
	// authenticates its holder, as at kcp.
	ClientCAs *x509.CertPool
	// Identity is the gateway's own identity in kcp (base URL): it
	// reviews tokens and access, and resolves workspaces.
	Identity *rest.Config
	// Provider is a rest config on the provider workspace: the registered
	// workload clusters and their kubeconfigs.
	Provider *rest.Config
	// Results is the Tekton Results API's REST base URL (nil: not
	// served).
	Results *url.URL
	// TriggersSink is the triggers sink's URL; EventListeners' paths
	// (/hooks/…) go there (nil: not served).
	TriggersSink *url.URL
	// PipelinesAsCode is the Pipelines as Code intake's URL; forges'
	// events posted to /pac go there (nil: not served).
	PipelinesAsCode *url.URL
	Log             *zap.SugaredLogger
}

// Server is the gateway's HTTP handler.
type Server struct {
	log        *zap.SugaredLogger
	authn      *authn
	authz      *authz
	workspaces *workspaces
	clusters   *workloadClusters
	kcp        *httputil.ReverseProxy
	results    *resultsProxy
	// archive serves pruned runs, their pods and logs (nil: no Results).
	archive *archive
	// hooks passes events on to the triggers sink (nil: none).
	hooks http.Handler
	// pac passes forges' events on to the Pipelines as Code intake (nil:
	// none).
	pac http.Handler
}

// New wires a gateway; Start starts its informers on the provider
// workspace.
func New(opts Options) (*Server, error) {
	kube, err := kcpkubernetes.NewForConfig(opts.Identity)
	if err != nil {
		return nil, err
	}
	kcp, err := kcpclientset.NewForConfig(opts.Identity)
	if err != nil {
		return nil, err
	}
	clusters, err := newWorkloadClusters(opts.Provider, opts.Log)
	if err != nil {
		return nil, err
	}
	var resultsAPI *resultsProxy
	var archived *archive
	if opts.Results != nil {
		resultsAPI = newResultsProxy(opts.Results)
		// The API serves gRPC beside REST, on the same port.
		clients, err := results.Dial(opts.Results.Host)
		if err != nil {
			return nil, err
		}
		archived = &archive{results: clients.Results, logs: clients.Logs}
	}
	var hooks http.Handler
	if opts.TriggersSink != nil {
		hooks = newHooksProxy(opts.TriggersSink)
	}
	var pacIntake http.Handler
	if opts.PipelinesAsCode != nil {
		pacIntake = newWebhookProxy(opts.PipelinesAsCode, pac.MaxPayload, "the Pipelines as Code intake")
	}
	return &Server{
		hooks:      hooks,
		pac:        pacIntake,
		results:    resultsAPI,
		archive:    archived,
		log:        opts.Log,
		authn:      newAuthn(opts.ClientCAs, kube),
		authz:      newAuthz(kube),
		workspaces: newWorkspaces(kcp),
		clusters:   clusters,
		kcp:        newKCPProxy(opts.KCP, opts.KCPCAs, opts.ProxyCert),
	}, nil
}

// Start starts the informers on the provider workspace and waits for them.
func (s *Server) Start(ctx context.Context) error { return s.clusters.run(ctx) }

// archivePrefix, before /clusters/<workspace>, is the archive view of a
// workspace: the same API, where the GET of a run, a pod or a pod's log
// that is gone is answered from Tekton Results. A kubeconfig whose server
// is https://<gateway>/archive/clusters/<workspace> lets tkn and kubectl
// read pruned runs as live ones. The plain view keeps Kubernetes'
// semantics: what was deleted is 404 (clients wait for that).
const archivePrefix = "/archive"

// ServeHTTP authenticates the client, then serves pods itself, Tekton
// Results from the Results API, and passes everything else on to kcp.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if strings.HasPrefix(r.URL.Path, triggers.PathPrefix) {
		s.serveHooks(w, r, s.hooks)
		return
	}
	if r.URL.Path == pac.PathPrefix {
		s.serveHooks(w, r, s.pac)
		return
	}
	r, archiveView, err := s.view(r)
	if err != nil {
		writeError(w, err)
		return
	}
	workspace, rest := splitWorkspace(r.URL.Path)
	u, err := s.authn.authenticate(ctx, r, workspace)
	if err != nil {
		writeError(w, statusFor(http.StatusUnauthorized, "Unauthorized: "+err.Error()))
		return
	}
	if !workspace.Empty() {
		if p, ok := parsePodPath(rest); ok {
			p.archived = archiveView
			s.servePods(ctx, w, r, u, workspace, p)
			return
		}
		if p, ok := parseResultsPath(rest); ok {
			s.serveResults(ctx, w, r, u, workspace, p)
			return
		}
	}
	ctx = context.WithValue(ctx, callerKey{}, u)
	ctx = context.WithValue(ctx, restKey{}, rest)
	if archiveView {
		ctx = s.withArchivedRun(ctx, r, u, workspace, rest)
	}
	s.kcp.ServeHTTP(w, r.WithContext(ctx))
}

// serveHooks passes a forge's event on to where it is served (the
// triggers sink, the Pipelines as Code intake), before authentication:
// forges post without credentials, the target checks each payload's
// signature.
func (s *Server) serveHooks(w http.ResponseWriter, r *http.Request, target http.Handler) {
	if target == nil {
		writeError(w, apierrors.NewNotFound(schema.GroupResource{}, r.URL.Path))
		return
	}
	target.ServeHTTP(w, r)
}

// view takes the archive view's prefix off a request for it.
func (s *Server) view(r *http.Request) (*http.Request, bool, error) {
	path, ok := strings.CutPrefix(r.URL.Path, archivePrefix+"/")
	if !ok {
		return r, false, nil
	}
	if !strings.HasPrefix(path, "clusters/") {
		return nil, false, apierrors.NewNotFound(schema.GroupResource{}, r.URL.Path)
	}
	if s.archive == nil {
		return nil, false, apierrors.NewServiceUnavailable("Tekton Results is not configured on this gateway: there is no archive view")
	}
	r = r.Clone(r.Context())
	r.URL.Path, r.URL.RawPath = "/"+path, ""
	return r, true, nil
}

// splitWorkspace splits /clusters/<workspace>/<rest>.
func splitWorkspace(path string) (logicalcluster.Path, string) {
	after, ok := strings.CutPrefix(path, "/clusters/")
	if !ok {
		return logicalcluster.Path{}, path
	}
	ws, rest, _ := strings.Cut(after, "/")
	return logicalcluster.NewPath(ws), "/" + rest
}

// podPath is a parsed request path under /api/v1 for pods.
type podPath struct {
	namespace, name, subresource string
	// archived: in the archive view, a pod that is gone is read from
	// the archive.
	archived bool
}

// parsePodPath recognises /api/v1/pods, /api/v1/namespaces/<ns>/pods,
// …/pods/<name> and …/pods/<name>/<subresource>.
func parsePodPath(rest string) (podPath, bool) {
	if rest == "/api/v1/pods" {
		return podPath{}, true
	}
	after, ok := strings.CutPrefix(rest, "/api/v1/namespaces/")
	if !ok {
		return podPath{}, false
	}
	parts := strings.Split(after, "/")
	if len(parts) < 2 || parts[1] != "pods" || parts[0] == "" || len(parts) > 4 {
		return podPath{}, false
	}
	p := podPath{namespace: parts[0]}
	if len(parts) > 2 {
		p.name = parts[2]
	}
	if len(parts) > 3 {
		p.subresource = parts[3]
	}
	if len(parts) > 2 && p.name == "" {
		return podPath{}, false
	}
	return p, true
}

// servePods answers a request for pods: read-only, authorised in the
// workspace.
func (s *Server) servePods(ctx context.Context, w http.ResponseWriter, r *http.Request, u user.Info, workspace logicalcluster.Path, path podPath) {
	if r.Method != http.MethodGet {
		writeError(w, statusFor(http.StatusMethodNotAllowed, fmt.Sprintf(
			"%s is not supported on pods in a workspace: they are read-only views of the pods of its runs, which the service manages", r.Method)))
		return
	}
	if path.subresource != "" && path.subresource != "log" {
		writeError(w, statusFor(http.StatusMethodNotAllowed, fmt.Sprintf("pods/%s is not served in a workspace; pods/log is", path.subresource)))
		return
	}
	// The names go into the workload cluster's request path: a name such
	// as ".." would lead out of the pod (to the workload namespace).
	if err := validNames(path); err != nil {
		writeError(w, err)
		return
	}
	watch := r.URL.Query().Get("watch") == "true" || r.URL.Query().Get("watch") == "1"
	what := access{verb: "list", resource: "pods", namespace: path.namespace, name: path.name, subresource: path.subresource}
	switch {
	case path.subresource == "log", path.name != "":
		what.verb = "get"
	case watch:
		what.verb = "watch"
	}
	cluster, ok := s.authorize(ctx, w, workspace, u, what)
	if !ok {
		return
	}
	p := podRequest{workspace: cluster, namespace: path.namespace, name: path.name, subresource: path.subresource, archived: path.archived,
		query: r.URL.Query(), accept: jsonAccept(r.Header.Get("Accept"))}
	var err error
	switch {
	case p.subresource == "log":
		err = s.streamLog(ctx, w, p)
	case p.name != "":
		err = s.getPod(ctx, w, p)
	case watch:
		err = s.watchPods(ctx, w, p)
	default:
		err = s.listPods(ctx, w, p)
	}
	if err != nil {
		if ctx.Err() == nil {
			s.logger(p).Debugw("pods request failed", "error", err)
		}
		writeError(w, err)
	}
}

// authorize asks the workspace whether u may do what (a
// SubjectAccessReview there) and resolves the workspace's logical cluster.
// When the request may not go on, it has written the answer (403, 503).
func (s *Server) authorize(ctx context.Context, w http.ResponseWriter, workspace logicalcluster.Path, u user.Info, what access) (logicalcluster.Name, bool) {
	allowed, reason, err := s.authz.allowed(ctx, workspace, u, what)
	if err != nil {
		s.log.Warnw("access review failed", "workspace", workspace.String(), "user", u.GetName(), "error", err)
		writeError(w, apierrors.NewServiceUnavailable("cannot review access in the workspace"))
		return "", false
	}
	if !allowed {
		writeError(w, forbidden(u, workspace, what, reason))
		return "", false
	}
	cluster, err := s.workspaces.resolve(ctx, workspace)
	if err != nil {
		s.log.Warnw("workspace not resolved", "workspace", workspace.String(), "error", err)
		writeError(w, apierrors.NewServiceUnavailable("cannot resolve the workspace"))
		return "", false
	}
	return cluster, true
}

// forbidden is the 403 the apiserver would give, naming the workspace.
func forbidden(u user.Info, workspace logicalcluster.Path, what access, reason string) error {
	res := what.resource
	if what.subresource != "" {
		res += "/" + what.subresource
	}
	msg := fmt.Sprintf("user %q cannot %s resource %q", u.GetName(), what.verb, res)
	if what.group != "" {
		msg += fmt.Sprintf(" in API group %q", what.group)
	}
	msg += fmt.Sprintf(" in workspace %q", workspace)
	if what.namespace != "" {
		msg += fmt.Sprintf(" in the namespace %q", what.namespace)
	}
	if reason != "" {
		msg += ": " + reason
	}
	return apierrors.NewForbidden(schema.GroupResource{Group: what.group, Resource: what.resource}, what.name, errors.New(msg))
}

// validNames checks the namespace and pod name of a request as the
// apiserver validates them.
func validNames(p podPath) error {
	if p.namespace != "" {
		if errs := validation.IsDNS1123Label(p.namespace); len(errs) > 0 {
			return apierrors.NewBadRequest(fmt.Sprintf("namespace %q: %s", p.namespace, strings.Join(errs, "; ")))
		}
	}
	if p.name != "" {
		if errs := validation.IsDNS1123Subdomain(p.name); len(errs) > 0 {
			return apierrors.NewBadRequest(fmt.Sprintf("pod name %q: %s", p.name, strings.Join(errs, "; ")))
		}
	}
	return nil
}

// writeError writes an API error as the apiserver does: a Status.
func writeError(w http.ResponseWriter, err error) {
	var st apierrors.APIStatus
	if !errors.As(err, &st) {
		st = apierrors.NewInternalError(err)
	}
	status := st.Status()
	status.Kind, status.APIVersion = "Status", "v1"
	code := int(status.Code)
	if code == 0 {
		code = http.StatusInternalServerError
	}
	_ = writeJSON(w, code, status)
}

func statusFor(code int, msg string) error {
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure, Code: int32(code), Message: msg, Reason: reasonFor(code),
	}}
}

func reasonFor(code int) metav1.StatusReason {
	switch code {
	case http.StatusUnauthorized:
		return metav1.StatusReasonUnauthorized
	case http.StatusMethodNotAllowed:
		return metav1.StatusReasonMethodNotAllowed
	case http.StatusBadGateway:
		return metav1.StatusReasonServiceUnavailable
	}
	return metav1.StatusReasonUnknown
}

func writeJSON(w http.ResponseWriter, code int, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, err = w.Write(data)
	return err
}
