package kcp

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	kcpdynamic "github.com/kcp-dev/client-go/dynamic"
	"github.com/kcp-dev/logicalcluster/v3"
	"go.uber.org/zap"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
)

// Shards is the APIExport's virtual workspace on every kcp shard that
// serves it, as one cluster-aware dynamic client: what the reconcilers,
// informers and typed workspace clients are built on.
//
// kcp serves a workspace's objects only at the virtual workspace of the
// shard that holds it, and each shard lists only its own. So:
//   - a wildcard List or Watch (what an informer does) is made on every
//     shard and merged. A shard's resource versions mean nothing to
//     another's, so Shards keeps each shard's own, per resource, and
//     resumes every shard's watch where that shard was; the informer's
//     one resource version is not used;
//   - a request for one workspace goes to the shard whose virtual
//     workspace listed that workspace's objects (Route).
//
// When the endpoint slice adds or removes a shard (SetURLs), every merged
// watch ends with 410 Gone, so that each informer lists again, over the
// new set.
//
// A shard that does not answer holds back no other shard's events: its
// watch is started again from its last version until it answers. It does
// hold back an informer's list (after a 410 or a change of shards), which
// needs every shard: a list without a shard's objects would tell the
// informer they were deleted.
type Shards struct {
	base      *rest.Config
	newClient func(url string) (kcpdynamic.ClusterInterface, error)
	log       *zap.SugaredLogger

	mu      sync.RWMutex
	urls    []string // sorted
	clients map[string]kcpdynamic.ClusterInterface
	owner   map[logicalcluster.Name]string
	// versions is each shard's last resource version, per resource and
	// selector (what one informer lists and watches), as of its last list.
	versions map[string]*shardVersions
	// changed is closed (and replaced) when the set of shards changes.
	changed chan struct{}
}

// NewShards is Shards on urls (at least one) with clients on base (the
// controller's identity) pointed at each virtual workspace URL.
func NewShards(base *rest.Config, urls []string, log *zap.SugaredLogger) (*Shards, error) {
	return newShards(func(url string) (kcpdynamic.ClusterInterface, error) {
		return kcpdynamic.NewForConfig(ForVirtualWorkspace(base, url))
	}, base, urls, log)
}

func newShards(newClient func(string) (kcpdynamic.ClusterInterface, error), base *rest.Config, urls []string, log *zap.SugaredLogger) (*Shards, error) {
	s := &Shards{base: base, newClient: newClient, log: log, clients: map[string]kcpdynamic.ClusterInterface{},
		owner: map[logicalcluster.Name]string{}, versions: map[string]*shardVersions{}, changed: make(chan struct{})}
	if _, err := s.SetURLs(urls); err != nil {
		return nil, err
	}
	return s, nil
}

var _ kcpdynamic.ClusterInterface = &Shards{}

// SetURLs makes urls the shards' virtual workspaces. It reports whether
// the set changed.
func (s *Shards) SetURLs(urls []string) (bool, error) {
	urls = slices.Clone(urls)
	sort.Strings(urls)
	urls = slices.Compact(urls)
	if len(urls) == 0 {
		// kcp lists no shard once no workspace binds the export; the
		// last ones still serve (what was bound stays readable there).
		return false, fmt.Errorf("the export's endpoint slice lists no virtual workspace")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if slices.Equal(urls, s.urls) {
		return false, nil
	}
	clients := map[string]kcpdynamic.ClusterInterface{}
	for _, u := range urls {
		if c, ok := s.clients[u]; ok {
			clients[u] = c
			continue
		}
		c, err := s.newClient(u)
		if err != nil {
			return false, fmt.Errorf("virtual workspace %s: %w", u, err)
		}
		clients[u] = c
	}
	for cluster, u := range s.owner {
		if _, ok := clients[u]; !ok {
			delete(s.owner, cluster)
		}
	}
	s.log.Infow("virtual workspaces of the export changed", "urls", urls, "before", s.urls)
	s.urls, s.clients = urls, clients
	close(s.changed)
	s.changed = make(chan struct{})
	return true, nil
}

// URLs are the shards' virtual workspace URLs.
func (s *Shards) URLs() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return slices.Clone(s.urls)
}

// Route is the virtual workspace URL that serves cluster: the shard whose
// virtual workspace listed its objects, else the first (there is only one
// on a single shard; with more, a workspace the controller has seen
// nothing of yet is not one it acts on).
func (s *Shards) Route(cluster logicalcluster.Name) string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.routeLocked(cluster)
}

func (s *Shards) routeLocked(cluster logicalcluster.Name) string {
	if u, ok := s.owner[cluster]; ok {
		return u
	}
	if len(s.urls) == 0 {
		return ""
	}
	return s.urls[0]
}

// RestConfig is the controller's identity at the virtual workspace that
// serves cluster (not scoped to it).
func (s *Shards) RestConfig(cluster logicalcluster.Name) *rest.Config {
	return ForVirtualWorkspace(s.base, s.Route(cluster))
}

// Cluster is a client of one workspace, at its shard's virtual workspace.
func (s *Shards) Cluster(path logicalcluster.Path) dynamic.Interface {
	return s.clientFor(logicalcluster.Name(path.String())).Cluster(path)
}

func (s *Shards) clientFor(cluster logicalcluster.Name) kcpdynamic.ClusterInterface {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.clients[s.routeLocked(cluster)] // SetURLs keeps at least one
}

// Resource is resource on every shard.
func (s *Shards) Resource(gvr schema.GroupVersionResource) kcpdynamic.ResourceClusterInterface {
	return &shardedResource{shards: s, gvr: gvr}
}

// learn records that url's virtual workspace serves obj's workspace.
func (s *Shards) learn(url string, obj metav1.Object) {
	cluster := logicalcluster.From(obj)
	if cluster.Empty() {
		return
	}
	s.mu.RLock()
	known := s.owner[cluster] == url
	s.mu.RUnlock()
	if known {
		return
	}
	s.mu.Lock()
	if _, ok := s.clients[url]; ok {
		s.owner[cluster] = url
	}
	s.mu.Unlock()
}

type shardedResource struct {
	shards *Shards
	gvr    schema.GroupVersionResource
}

func (r *shardedResource) Cluster(path logicalcluster.Path) dynamic.NamespaceableResourceInterface {
	return r.shards.clientFor(logicalcluster.Name(path.String())).Resource(r.gvr).Cluster(path)
}

// key names what one informer lists and watches.
func (r *shardedResource) key(opts metav1.ListOptions) string {
	return strings.Join([]string{r.gvr.String(), opts.LabelSelector, opts.FieldSelector}, "|")
}

// snapshot is the current shards, their clients and the channel closed
// when they change.
func (s *Shards) snapshot() ([]string, map[string]kcpdynamic.ClusterInterface, <-chan struct{}) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return slices.Clone(s.urls), s.clients, s.changed
}

// List lists every shard in full (no pages: the merged list has no
// continue token to give) and remembers each shard's resource version.
func (r *shardedResource) List(ctx context.Context, opts metav1.ListOptions) (*unstructured.UnstructuredList, error) {
	urls, clients, _ := r.shards.snapshot()
	opts.Limit, opts.Continue = 0, ""
	if opts.ResourceVersion != "0" {
		// The informer hands back the merged list's version, which no
		// shard knows: list the most recent state ("0", any cached state,
		// is every shard's own).
		opts.ResourceVersion, opts.ResourceVersionMatch = "", ""
	}
	merged := &unstructured.UnstructuredList{Object: map[string]any{"apiVersion": "v1", "kind": "List"}}
	versions := map[string]string{}
	for _, u := range urls {
		list, err := clients[u].Resource(r.gvr).List(ctx, opts)
		if err != nil {
			return nil, fmt.Errorf("list %s at %s: %w", r.gvr.Resource, u, err)
		}
		versions[u] = list.GetResourceVersion()
		for i := range list.Items {
			r.shards.learn(u, &list.Items[i])
		}
		merged.Items = append(merged.Items, list.Items...)
	}
	r.shards.mu.Lock()
	r.shards.versions[r.key(opts)] = &shardVersions{byURL: versions}
	r.shards.mu.Unlock()
	// Opaque to the informer, which hands it back to Watch; the shards'
	// own versions are kept above.
	merged.SetResourceVersion(strings.Join(sortedValues(versions), ","))
	return merged, nil
}

// Watch watches every shard from where its last list or event left it.
// It ends with 410 Gone (the informer lists again) when the set of
// shards changes, a shard has not been listed, or a shard no longer has
// the version it would resume from.
func (r *shardedResource) Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	urls, clients, changed := r.shards.snapshot()
	versions := r.shards.listed(r.key(opts))
	for _, u := range urls {
		if r.shards.version(versions, u) == "" {
			return nil, apierrors.NewResourceExpired(fmt.Sprintf("shard %s has not been listed", u))
		}
	}
	w := &mergedWatch{out: make(chan watch.Event), stop: make(chan struct{})}
	for _, u := range urls {
		w.wg.Add(1)
		go r.watchShard(ctx, w, versions, u, clients[u], opts)
	}
	go func() {
		select {
		case <-changed:
			w.expire("the set of kcp shards changed")
		case <-w.stop:
		}
	}()
	go w.closeWhenDone()
	return w, nil
}

// shardWatchBackoff spaces the restarts of a shard's watch that ended or
// could not start. The cap is short: a shard that comes back is watched
// again within seconds (its workspaces' events wait until then), and a
// refused connection per informer every few seconds costs nothing.
var shardWatchBackoff = wait.Backoff{Duration: 250 * time.Millisecond, Factor: 2, Jitter: 0.2, Steps: 6, Cap: 5 * time.Second}

// watchShard forwards one shard's events until the merged watch stops.
// A shard's watch that ends or cannot start (the shard restarts or does
// not answer; its server ends every watch after a while) starts again
// from that shard's last resource version, with backoff, while the other
// shards' events flow on: one shard's outage does not hold back the
// others'. Its events missed meanwhile come with the resumed watch.
func (r *shardedResource) watchShard(ctx context.Context, w *mergedWatch, versions *shardVersions, url string, client kcpdynamic.ClusterInterface, opts metav1.ListOptions) {
	defer w.wg.Done()
	backoff := shardWatchBackoff
	for {
		shardOpts := opts
		shardOpts.ResourceVersion = r.shards.version(versions, url)
		started := time.Now()
		sw, err := client.Resource(r.gvr).Watch(ctx, shardOpts)
		switch {
		case apierrors.IsResourceExpired(err) || apierrors.IsGone(err):
			w.expire(fmt.Sprintf("shard %s: %v", url, err))
			return
		case err != nil:
			r.shards.log.Infow("watch of a shard's virtual workspace did not start; retrying", "resource", r.gvr.Resource, "url", url, "error", err)
		default:
			broken := func(err error) {
				r.shards.log.Infow("watch of a shard's virtual workspace broke; resuming it", "resource", r.gvr.Resource, "url", url, "error", err)
			}
			learn := func(ev watch.Event) { r.learn(url, ev) }
			delivered := func(ev watch.Event) { r.shards.advance(versions, url, ev) }
			if !w.consume(sw, learn, delivered, broken) {
				return
			}
			if time.Since(started) > shardWatchBackoff.Cap {
				backoff = shardWatchBackoff // it ran long: a normal end
			}
		}
		select {
		case <-w.stop:
			return
		case <-time.After(backoff.Step()):
		}
	}
}

// shardVersions are the shards' resource versions that one list of an
// informer's resource and selectors started from, advanced by the events
// its watches delivered. A list makes a new one: watches of an earlier
// list, still ending, cannot move the versions a later one resumes from.
type shardVersions struct {
	byURL map[string]string
}

// listed is the versions of the last list of what key names (nil if
// none).
func (s *Shards) listed(key string) *shardVersions {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.versions[key]
}

// version is a shard's resource version to resume from ("" if the shard
// has not been listed).
func (s *Shards) version(v *shardVersions, url string) string {
	if v == nil {
		return ""
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return v.byURL[url]
}

// advance records the version of an event the informer received: a watch
// resumed later starts after it. Only delivered events count: an event
// the shard sent as the merged watch stopped never reached the informer,
// and the next watch must send it again.
func (s *Shards) advance(v *shardVersions, url string, ev watch.Event) {
	if ev.Type == watch.Error {
		return
	}
	obj, err := meta.Accessor(ev.Object)
	if err != nil {
		return
	}
	if rv := obj.GetResourceVersion(); rv != "" {
		s.mu.Lock()
		v.byURL[url] = rv
		s.mu.Unlock()
	}
}

// learn learns the workspace of an event's object: requests for it go to
// its shard from now on, also those its handlers make on receiving it.
func (r *shardedResource) learn(url string, ev watch.Event) {
	if ev.Type == watch.Error || ev.Type == watch.Bookmark {
		return
	}
	if obj, err := meta.Accessor(ev.Object); err == nil {
		r.shards.learn(url, obj)
	}
}

func sortedValues(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	values := make([]string, len(keys))
	for i, k := range keys {
		values[i] = m[k]
	}
	return values
}

// mergedWatch forwards the events of one watch per shard until it is
// stopped.
type mergedWatch struct {
	out      chan watch.Event
	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
}

// consume forwards sw's events until sw ends or breaks (true: the shard's
// watch starts again) or the merged watch stops (false). A shard's error
// event is not forwarded: a broken stream (the shard went away, "unable
// to decode an event") only restarts that shard's watch, where the
// informer would list every shard again, and so wait for the broken one.
// A 410 is forwarded, as the informer must list again, and ends the
// merged watch (false).
func (w *mergedWatch) consume(sw watch.Interface, learn, delivered func(watch.Event), log func(error)) bool {
	defer sw.Stop()
	for {
		select {
		case ev, ok := <-sw.ResultChan():
			if !ok {
				return true
			}
			if ev.Type == watch.Error {
				err := apierrors.FromObject(ev.Object)
				if !apierrors.IsResourceExpired(err) && !apierrors.IsGone(err) {
					log(err)
					return true
				}
				w.send(ev)
				w.Stop()
				return false
			}
			learn(ev)
			if !w.send(ev) {
				return false
			}
			delivered(ev)
		case <-w.stop:
			return false
		}
	}
}

// expire ends the merged watch with 410 Gone: the informer lists again.
func (w *mergedWatch) expire(why string) {
	w.send(watch.Event{Type: watch.Error, Object: &apierrors.NewResourceExpired(why).ErrStatus})
	w.Stop()
}

func (w *mergedWatch) send(ev watch.Event) bool {
	select {
	case w.out <- ev:
		return true
	case <-w.stop:
		return false
	}
}

func (w *mergedWatch) closeWhenDone() {
	<-w.stop
	w.wg.Wait()
	close(w.out)
}

func (w *mergedWatch) Stop() { w.stopOnce.Do(func() { close(w.stop) }) }

func (w *mergedWatch) ResultChan() <-chan watch.Event { return w.out }
