package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/kcp-dev/logicalcluster/v3"
	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	"go.uber.org/zap"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/selection"

	"github.com/pipelines-service/pipelines-service/pkg/results"
	"github.com/pipelines-service/pipelines-service/pkg/workload"
)

var podsResource = schema.GroupResource{Resource: "pods"}

// podRequest is a request for the pods of a workspace.
type podRequest struct {
	workspace   logicalcluster.Name
	namespace   string // "" for all namespaces
	name        string
	subresource string // "log"
	query       url.Values
	accept      string
	archived    bool // the archive view: a pod that is gone is read from the archive
}

// wantsTable says whether the client asked for a Table (kubectl get).
func (p podRequest) wantsTable() bool { return strings.Contains(p.accept, "as=Table") }

// workloadPath is the path of the request's pods on a workload cluster.
func (p podRequest) workloadPath() string {
	if p.namespace == "" {
		return "/api/v1/pods"
	}
	path := "/api/v1/namespaces/" + workload.Namespace(p.workspace, p.namespace) + "/pods"
	if p.name != "" {
		path += "/" + p.name
	}
	if p.subresource != "" {
		path += "/" + p.subresource
	}
	return path
}

// listQuery is the query sent to a workload cluster for a list or watch:
// the client's selectors (an all-namespace request also selects the
// workspace's pods by label), its resource version on that cluster, no
// paging (the lists of all clusters are merged whole).
func (p podRequest) listQuery(cluster string, rvs resourceVersions) (url.Values, error) {
	q := url.Values{}
	for _, k := range []string{"watch", "timeoutSeconds", "allowWatchBookmarks", "resourceVersionMatch"} {
		if v := p.query.Get(k); v != "" {
			q.Set(k, v)
		}
	}
	if rv := rvs.on(cluster, p.query.Get("resourceVersion")); rv != "" {
		q.Set("resourceVersion", rv)
	}
	if include := p.query.Get("includeObject"); p.wantsTable() {
		// Rows need their object's metadata: it says whose pod it is.
		if include != "Object" {
			include = "Metadata"
		}
		q.Set("includeObject", include)
	}
	selector, err := labels.Parse(p.query.Get("labelSelector"))
	if err != nil {
		return nil, apierrors.NewBadRequest("labelSelector: " + err.Error())
	}
	if p.namespace == "" {
		req, err := labels.NewRequirement(workload.LabelClusterName, selection.Equals, []string{p.workspace.String()})
		if err != nil {
			return nil, apierrors.NewBadRequest(err.Error())
		}
		selector = selector.Add(*req)
	}
	if s := selector.String(); s != "" {
		q.Set("labelSelector", s)
	}
	fs, err := p.fieldSelector()
	if err != nil {
		return nil, err
	}
	if fs != "" {
		q.Set("fieldSelector", fs)
	}
	return q, nil
}

// fieldSelector translates metadata.namespace to the workload namespace.
func (p podRequest) fieldSelector() (string, error) {
	raw := p.query.Get("fieldSelector")
	if raw == "" {
		return "", nil
	}
	sel, err := fields.ParseSelector(raw)
	if err != nil {
		return "", apierrors.NewBadRequest("fieldSelector: " + err.Error())
	}
	sel, err = sel.Transform(func(field, value string) (string, string, error) {
		if field == "metadata.namespace" {
			return field, workload.Namespace(p.workspace, value), nil
		}
		return field, value, nil
	})
	if err != nil {
		return "", apierrors.NewBadRequest("fieldSelector: " + err.Error())
	}
	return sel.String(), nil
}

// scrub replaces workload namespace names in an error from a workload
// cluster with the tenant's.
func (p podRequest) scrub(err error) error {
	var st *apierrors.StatusError
	if p.namespace == "" || !errors.As(err, &st) {
		return err
	}
	out := *st
	out.ErrStatus.Message = strings.ReplaceAll(out.ErrStatus.Message, workload.Namespace(p.workspace, p.namespace), p.namespace)
	out.ErrStatus.Details = nil
	return &out
}

// getPod answers a GET of one pod: the first cluster that has it.
func (s *Server) getPod(ctx context.Context, w http.ResponseWriter, p podRequest) error {
	cl, obj, err := s.findPod(ctx, p, p.accept)
	if apierrors.IsNotFound(err) && p.archived {
		tr, record, aerr := s.archivedTaskRun(ctx, p)
		if aerr != nil {
			return aerr
		}
		parent := results.Parent(p.workspace, p.namespace)
		return writeJSON(w, http.StatusOK, archivedPod(tr, tenantName(record, parent, p.namespace)))
	}
	if err != nil {
		return err
	}
	rv := resourceVersions{cl.name: metaString(obj, "resourceVersion")}.encode()
	if isTable(obj) {
		tableView(obj, p.workspace.String(), rv, p.query.Get("includeObject") != "None")
		if rows, _ := obj["rows"].([]any); len(rows) == 0 {
			return apierrors.NewNotFound(podsResource, p.name)
		}
	} else if !tenantView(obj, p.workspace.String(), rv) {
		return apierrors.NewNotFound(podsResource, p.name)
	}
	return writeJSON(w, http.StatusOK, obj)
}

// archivedTaskRun is the archived TaskRun of a pod the workload clusters
// no longer hold, and its record's name; NotFound when the archive has
// none either.
func (s *Server) archivedTaskRun(ctx context.Context, p podRequest) (*v1.TaskRun, string, error) {
	parent := results.Parent(p.workspace, p.namespace)
	tr, record, err := s.archive.taskRunOfPod(ctx, parent, p.name)
	if errors.Is(err, errNotArchived) {
		return nil, "", apierrors.NewNotFound(podsResource, p.name)
	}
	if err != nil {
		s.logger(p).Infow("archive unreadable", "error", err)
		return nil, "", apierrors.NewServiceUnavailable("the pod is gone and the archive does not answer")
	}
	return tr, record, nil
}

// findPod gets the named pod from the first workload cluster that has it.
func (s *Server) findPod(ctx context.Context, p podRequest, accept string) (workloadCluster, map[string]any, error) {
	path := podRequest{workspace: p.workspace, namespace: p.namespace, name: p.name}.workloadPath()
	for _, cl := range s.clusters.all() {
		ctx, cancel := context.WithTimeout(ctx, requestTimeout)
		resp, err := cl.get(ctx, path, nil, accept)
		if err != nil {
			cancel()
			s.log.Warnw("workload cluster unreachable", "cluster", cl.name, "error", err)
			continue
		}
		obj, err := decodeBody(resp)
		cancel()
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return cl, nil, p.scrub(err)
		}
		return cl, obj, nil
	}
	return workloadCluster{}, nil, apierrors.NewNotFound(podsResource, p.name)
}

// listPods merges the lists of every workload cluster. Its resource
// version holds each cluster's, for a watch to resume from. Pages are not
// served: each cluster's list is merged whole.
func (s *Server) listPods(ctx context.Context, w http.ResponseWriter, p podRequest) error {
	asked, err := decodeResourceVersion(p.query.Get("resourceVersion"))
	if err != nil {
		return apierrors.NewResourceExpired(err.Error())
	}
	rvs := resourceVersions{}
	var lists []map[string]any
	for _, cl := range s.clusters.all() {
		q, err := p.listQuery(cl.name, asked)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(ctx, requestTimeout)
		resp, err := cl.get(ctx, p.workloadPath(), q, p.accept)
		if err != nil {
			cancel()
			s.log.Warnw("workload cluster unreachable; its pods are left out", "cluster", cl.name, "error", err)
			w.Header().Add("Warning", `299 - "a workload cluster is unreachable: pods running there are not listed"`)
			continue
		}
		obj, err := decodeBody(resp)
		cancel()
		if err != nil {
			return p.scrub(err)
		}
		rvs[cl.name] = metaString(obj, "resourceVersion")
		lists = append(lists, obj)
	}
	rv := rvs.encode()
	merged := mergeLists(lists)
	withObjects := p.query.Get("includeObject") != "None"
	out := []any{}
	for _, list := range lists {
		if isTable(list) {
			tableView(list, p.workspace.String(), rv, withObjects)
			out = append(out, asSlice(list["rows"])...)
			continue
		}
		for _, it := range asSlice(list["items"]) {
			if obj, _ := it.(map[string]any); obj != nil && tenantView(obj, p.workspace.String(), rv) {
				out = append(out, obj)
			}
		}
	}
	if isTable(merged) {
		merged["rows"] = out
	} else {
		merged["items"] = out
	}
	meta, _ := merged["metadata"].(map[string]any)
	if meta == nil {
		meta = map[string]any{}
		merged["metadata"] = meta
	}
	meta["resourceVersion"] = rv
	delete(meta, "continue")
	delete(meta, "remainingItemCount")
	delete(meta, "selfLink")
	return writeJSON(w, http.StatusOK, merged)
}

// mergeLists picks the envelope of the merged list: a Table with column
// definitions (an empty Table may have none), else the first list.
func mergeLists(lists []map[string]any) map[string]any {
	for _, l := range lists {
		if isTable(l) && len(columns(l)) > 0 {
			return shallowCopy(l)
		}
	}
	if len(lists) > 0 {
		return shallowCopy(lists[0])
	}
	return map[string]any{"kind": "PodList", "apiVersion": "v1", "metadata": map[string]any{}}
}

func shallowCopy(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	if meta, _ := m["metadata"].(map[string]any); meta != nil {
		out["metadata"] = shallowCopy(meta)
	}
	return out
}

func columns(table map[string]any) []any { return asSlice(table["columnDefinitions"]) }

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}

func metaString(obj map[string]any, key string) string {
	meta, _ := obj["metadata"].(map[string]any)
	s, _ := meta[key].(string)
	return s
}

// watchPods merges the watches of every workload cluster into one stream.
// Each event's object carries the resource versions of all clusters as
// seen so far, so that a client resuming from it misses nothing anywhere.
// The stream ends when any cluster's ends (a client watches again).
func (s *Server) watchPods(ctx context.Context, w http.ResponseWriter, p podRequest) error {
	asked, err := decodeResourceVersion(p.query.Get("resourceVersion"))
	if err != nil {
		return apierrors.NewResourceExpired(err.Error())
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type stream struct {
		cluster string
		dec     *json.Decoder
		close   func() error
	}
	var streams []stream
	contentType := "application/json"
	for _, cl := range s.clusters.all() {
		q, err := p.listQuery(cl.name, asked)
		if err != nil {
			return err
		}
		resp, err := cl.get(ctx, p.workloadPath(), q, p.accept)
		if err != nil {
			s.log.Warnw("workload cluster unreachable; its pods are not watched", "cluster", cl.name, "error", err)
			continue
		}
		if resp.StatusCode/100 != 2 {
			_, err := decodeBody(resp)
			for _, st := range streams {
				_ = st.close()
			}
			return p.scrub(err)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "" && len(streams) == 0 {
			contentType = ct
		}
		streams = append(streams, stream{cluster: cl.name, dec: json.NewDecoder(resp.Body), close: resp.Body.Close})
	}
	defer func() {
		for _, st := range streams {
			_ = st.close()
		}
	}()
	if len(streams) == 0 {
		return apierrors.NewServiceUnavailable("no workload cluster answers: the workspace's pods cannot be watched")
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Transfer-Encoding", "chunked")
	w.WriteHeader(http.StatusOK)
	flush(w)

	out := &eventWriter{w: w, rvs: resourceVersions{}, workspace: p.workspace.String(), withObjects: p.query.Get("includeObject") != "None"}
	for cluster, rv := range asked {
		out.rvs[cluster] = rv
	}
	var wg sync.WaitGroup
	for _, st := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer cancel()
			for {
				var ev map[string]any
				if err := st.dec.Decode(&ev); err != nil {
					if ctx.Err() == nil {
						s.log.Debugw("workload watch ended", "cluster", st.cluster, "error", err)
					}
					return
				}
				if err := out.write(st.cluster, ev); err != nil {
					return
				}
			}
		}()
	}
	<-ctx.Done()
	for _, st := range streams {
		_ = st.close()
	}
	wg.Wait()
	return nil
}

// eventWriter writes the merged watch events, one at a time.
type eventWriter struct {
	mu          sync.Mutex
	w           http.ResponseWriter
	rvs         resourceVersions
	workspace   string
	withObjects bool
}

func (e *eventWriter) write(cluster string, ev map[string]any) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	obj, _ := ev["object"].(map[string]any)
	if obj == nil {
		return nil
	}
	typ, _ := ev["type"].(string)
	if typ != "ERROR" {
		if rv := metaString(obj, "resourceVersion"); rv != "" {
			e.rvs[cluster] = rv
		}
	}
	rv := e.rvs.encode()
	switch {
	case typ == "ERROR":
	case typ == "BOOKMARK":
		if meta, _ := obj["metadata"].(map[string]any); meta != nil {
			meta["resourceVersion"] = rv
		}
	case isTable(obj):
		tableView(obj, e.workspace, rv, e.withObjects)
		if len(asSlice(obj["rows"])) == 0 {
			return nil
		}
	case !tenantView(obj, e.workspace, rv):
		return nil
	}
	data, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	if _, err := e.w.Write(append(data, '\n')); err != nil {
		return err
	}
	flush(e.w)
	return nil
}

func flush(w http.ResponseWriter) {
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
}

// logger is the request's log, keyed by workspace, namespace and name.
func (s *Server) logger(p podRequest) *zap.SugaredLogger {
	return s.log.With("workspace", p.workspace.String(), "namespace", p.namespace, "name", p.name)
}
