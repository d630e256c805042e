// Package sink is the shared sink of every tenant's EventListeners:
// Tekton Triggers' own sink (pkg/sink) run per request for the listener a
// path names, with that listener's workspace's objects, core interceptors
// bound to that workspace's secrets, and the listener's own
// workspace-scoped identity. An idle listener costs a few cached objects,
// not a pod.
package sink

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/kcp-dev/logicalcluster/v3"
	"github.com/tektoncd/triggers/pkg/apis/triggers/v1beta1"
	"github.com/tektoncd/triggers/pkg/interceptors"
	upstream "github.com/tektoncd/triggers/pkg/sink"
	"go.uber.org/zap"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/cache"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/rest"

	"github.com/pipelines-service/pipelines-service/pkg/kcp"
	"github.com/pipelines-service/pipelines-service/pkg/triggers"
)

// Options wire a Server.
type Options struct {
	// Listers are the tenant informers' listers of the Triggers
	// resources (triggers.ClusterListers).
	Listers triggers.ClusterListers
	// Workspaces read secrets of tenant workspaces through the
	// virtual workspace, with the sink's own (read-only) identity.
	Workspaces *kcp.WorkspaceClients
	// KCP is kcp's base URL and CA: listeners' identities act there.
	KCP *rest.Config
	// AllowedEgress are the networks tenant-defined interceptors may be
	// reached at (none: only the core interceptors run).
	AllowedEgress []*net.IPNet
	Log           *zap.SugaredLogger
}

// Server serves every listener's path.
type Server struct {
	log        *zap.SugaredLogger
	listers    triggers.ClusterListers
	workspaces *kcp.WorkspaceClients
	identities *identities
	egress     http.RoundTripper
	recorder   *upstream.Recorder
	processing *sync.WaitGroup
	// interceptors caches each workspace's interceptors.
	interceptors *cache.LRUExpireCache
}

// New makes a Server.
func New(opts Options) (*Server, error) {
	recorder, err := upstream.NewRecorder()
	if err != nil {
		return nil, err
	}
	return &Server{
		log:          opts.Log,
		listers:      opts.Listers,
		workspaces:   opts.Workspaces,
		identities:   newIdentities(opts.KCP, opts.Workspaces),
		egress:       newEgress(opts.AllowedEgress),
		recorder:     recorder,
		processing:   &sync.WaitGroup{},
		interceptors: cache.NewLRUExpireCache(4096),
	}, nil
}

// route is a listener's path.
type route struct {
	cluster         logicalcluster.Name
	namespace, name string
}

func parseRoute(path string) (route, bool) {
	rest, ok := strings.CutPrefix(path, triggers.PathPrefix)
	if !ok {
		return route{}, false
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 3 {
		return route{}, false
	}
	r := route{cluster: logicalcluster.Name(parts[0]), namespace: parts[1], name: parts[2]}
	if !r.cluster.IsValid() || len(validation.IsDNS1123Label(r.namespace)) > 0 || len(validation.IsDNS1123Subdomain(r.name)) > 0 {
		return route{}, false
	}
	return r, true
}

// ServeHTTP routes an event to its listener. In order: the route is looked
// up in memory (unknown: 404), the payload is verified with the secret of
// the listener's own forge interceptor (not signed: 403, nothing created),
// then Triggers' sink processes it (202) as upstream does: interceptors,
// bindings, templates, resources created by the listener's identity.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rt, ok := parseRoute(r.URL.Path)
	if !ok {
		writeStatus(w, http.StatusNotFound, "no EventListener at "+r.URL.Path)
		return
	}
	if r.Method != http.MethodPost {
		writeStatus(w, http.StatusMethodNotAllowed, "EventListeners accept POST")
		return
	}
	// Triggers' sink adds the listener's namespace and name itself.
	wsLog := s.log.With("workspace", rt.cluster.String())
	log := wsLog.With("namespace", rt.namespace, "name", rt.name)
	ws := s.listers.Workspace(rt.cluster, true)
	el, err := ws.EventListeners().EventListeners(rt.namespace).Get(rt.name)
	if apierrors.IsNotFound(err) {
		writeStatus(w, http.StatusNotFound, fmt.Sprintf("no EventListener %s/%s in workspace %s", rt.namespace, rt.name, rt.cluster))
		return
	}
	if err != nil {
		writeStatus(w, http.StatusNotFound, fmt.Sprintf("EventListener %s/%s in workspace %s cannot be read: %v", rt.namespace, rt.name, rt.cluster, err))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, triggers.MaxPayload))
	if err != nil {
		writeStatus(w, http.StatusRequestEntityTooLarge, err.Error())
		return
	}
	ctx := r.Context()
	wi, err := s.workspaceInterceptors(rt.cluster, log)
	if err != nil {
		log.Errorw("interceptors of the workspace", "error", err)
		writeStatus(w, http.StatusServiceUnavailable, "the listener's interceptors are not available")
		return
	}
	if ok, why := verify(ctx, wi, ws, el, r, body); !ok {
		log.Infow("event refused: not signed by the listener's forge", "reasons", why)
		writeStatus(w, http.StatusForbidden, "the payload's signature does not verify: "+strings.Join(why, "; "))
		return
	}
	own, err := s.identities.clientsFor(ctx, rt.cluster, triggers.Identity{Namespace: el.Namespace, ServiceAccount: triggers.ServiceAccountOf(el)}, listenerIdentityPatience)
	if err != nil {
		log.Infow("listener's identity is not ready", "error", err)
		writeStatus(w, http.StatusServiceUnavailable, "the EventListener's identity is not ready: "+err.Error())
		return
	}
	sink := upstream.Sink{
		DiscoveryClient:             own.discovery,
		DynamicClient:               own.dynamic,
		HTTPClient:                  wi.client,
		EventListenerName:           el.Name,
		EventListenerNamespace:      el.Namespace,
		Logger:                      wsLog,
		Recorder:                    s.recorder,
		Auth:                        authOverride{ctx: context.Background(), cluster: rt.cluster, identities: s.identities},
		WGProcessTriggers:           s.processing,
		EventListenerLister:         ws.EventListeners(),
		TriggerLister:               ws.Triggers(),
		TriggerBindingLister:        ws.TriggerBindings(),
		ClusterTriggerBindingLister: ws.ClusterTriggerBindings(),
		TriggerTemplateLister:       ws.TriggerTemplates(),
		ClusterInterceptorLister:    ws.ClusterInterceptors(),
		InterceptorLister:           ws.Interceptors(),
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	sink.HandleEvent(w, r)
}

// Wait waits until the events being processed are done (for shutdown).
func (s *Server) Wait() { s.processing.Wait() }

// workspaceInterceptors are cluster's interceptors, made once per
// workspace for a while.
func (s *Server) workspaceInterceptors(cluster logicalcluster.Name, log *zap.SugaredLogger) (*workspaceInterceptors, error) {
	if wi, ok := s.interceptors.Get(cluster); ok {
		return wi.(*workspaceInterceptors), nil
	}
	kube, err := s.workspaces.Kube(cluster)
	if err != nil {
		return nil, err
	}
	wi, err := newWorkspaceInterceptors(interceptors.DefaultSecretGetter(kube.CoreV1()), s.egress, log)
	if err != nil {
		return nil, err
	}
	s.interceptors.Add(cluster, wi, 10*time.Minute)
	return wi, nil
}

// verify checks the payload's signature before Triggers' sink runs, which
// answers 202 before any interceptor has run and so never refuses a
// forged event. Each chain the listener runs is checked with its first
// forge interceptor and only its secretRef (event types, filters and CEL
// come later, in the sink, as upstream): the event goes on when one chain
// accepts it, or when a chain verifies no signature at all (CEL, Slack
// or custom interceptors, as upstream). Chains whose forge interceptor has
// no secretRef never run (triggers.Unsigned), so they do not count.
func verify(ctx context.Context, wi *workspaceInterceptors, ws *triggers.Workspace, el *v1beta1.EventListener, r *http.Request, body []byte) (bool, []string) {
	units, err := triggers.Units(el, ws.Triggers())
	if err != nil {
		return false, []string{err.Error()}
	}
	if len(units) == 0 {
		return true, nil
	}
	var why []string
	for _, u := range units {
		v := u.Verifier()
		if v == nil {
			return true, nil
		}
		resp, err := callCore(ctx, wi, v, u, r, body)
		if err != nil {
			why = append(why, fmt.Sprintf("%s: %v", u.ID, err))
			continue
		}
		if resp.Continue {
			return true, nil
		}
		why = append(why, fmt.Sprintf("%s: %s", u.ID, resp.Status.Message))
	}
	return false, why
}

// callCore runs the forge interceptor v of unit u on the payload with only
// its secretRef.
func callCore(ctx context.Context, wi *workspaceInterceptors, v *v1beta1.TriggerInterceptor, u triggers.Unit, r *http.Request, body []byte) (*v1beta1.InterceptorResponse, error) {
	params := map[string]any{}
	for _, p := range v.Params {
		if p.Name == "secretRef" {
			params[p.Name] = p.Value
		}
	}
	req := v1beta1.InterceptorRequest{
		Body: string(body), Header: r.Header.Clone(), InterceptorParams: params,
		Context: &v1beta1.TriggerContext{EventURL: r.URL.String(), TriggerID: u.ID},
	}
	return interceptors.Execute(ctx, wi.client, &req, triggers.CoreInterceptorURL(v.Ref.Name))
}

func writeStatus(w http.ResponseWriter, code int, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]any{"code": code, "message": message})
}
