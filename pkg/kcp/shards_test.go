package kcp

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	kcpdynamic "github.com/kcp-dev/client-go/dynamic"
	kcpfakedynamic "github.com/kcp-dev/client-go/third_party/k8s.io/client-go/dynamic/fake"
	"github.com/kcp-dev/logicalcluster/v3"
	"go.uber.org/zap"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
)

var taskRuns = schema.GroupVersionResource{Group: "tekton.dev", Version: "v1", Resource: "taskruns"}

func taskRun(cluster, name, rv string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("tekton.dev/v1")
	u.SetKind("TaskRun")
	u.SetNamespace("default")
	u.SetName(name)
	u.SetResourceVersion(rv)
	u.SetAnnotations(map[string]string{logicalcluster.AnnotationKey: cluster})
	return u
}

// fakeShard is one shard's virtual workspace: kcp's fake dynamic client
// for requests to one workspace, a list at a resource version of its own,
// and watches the test drives and whose options it records.
type fakeShard struct {
	*kcpfakedynamic.FakeDynamicClusterClientset
	listRV string

	mu      sync.Mutex
	lists   []metav1.ListOptions
	watches []metav1.ListOptions
	current *watch.FakeWatcher
	// failWatches are the errors the next watches fail with, in turn.
	failWatches []error
}

func newFakeShard(listRV string, objects ...runtime.Object) *fakeShard {
	client := kcpfakedynamic.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{taskRuns: "TaskRunList"}, objects...)
	return &fakeShard{FakeDynamicClusterClientset: client, listRV: listRV}
}

func (f *fakeShard) Resource(gvr schema.GroupVersionResource) kcpdynamic.ResourceClusterInterface {
	return &fakeShardResource{ResourceClusterInterface: f.FakeDynamicClusterClientset.Resource(gvr), shard: f}
}

func (f *fakeShard) lastWatch() (metav1.ListOptions, *watch.FakeWatcher) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.watches[len(f.watches)-1], f.current
}

// waitWatches waits until the shard has been asked for n watches.
func (f *fakeShard) waitWatches(t *testing.T, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		f.mu.Lock()
		got := len(f.watches)
		f.mu.Unlock()
		if got >= n {
			return
		}
	}
	t.Fatalf("the shard was not asked for %d watches within 10 s", n)
}

type fakeShardResource struct {
	kcpdynamic.ResourceClusterInterface
	shard *fakeShard
}

func (r *fakeShardResource) List(ctx context.Context, opts metav1.ListOptions) (*unstructured.UnstructuredList, error) {
	r.shard.mu.Lock()
	r.shard.lists = append(r.shard.lists, opts)
	r.shard.mu.Unlock()
	list, err := r.ResourceClusterInterface.List(ctx, opts)
	if err == nil {
		list.SetResourceVersion(r.shard.listRV)
	}
	return list, err
}

func (r *fakeShardResource) Watch(_ context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	r.shard.mu.Lock()
	defer r.shard.mu.Unlock()
	r.shard.watches = append(r.shard.watches, opts)
	if len(r.shard.failWatches) > 0 {
		err := r.shard.failWatches[0]
		r.shard.failWatches = r.shard.failWatches[1:]
		return nil, err
	}
	r.shard.current = watch.NewFake()
	return r.shard.current, nil
}

const (
	rootVW  = "https://root:6443/services/apiexport/p/tekton.dev"
	shardVW = "https://shard-1:6444/services/apiexport/p/tekton.dev"
	thirdVW = "https://shard-2:6446/services/apiexport/p/tekton.dev"
)

func testShards(t *testing.T, shards map[string]*fakeShard, urls ...string) *Shards {
	t.Helper()
	s, err := newShards(func(url string) (kcpdynamic.ClusterInterface, error) { return shards[url], nil },
		&rest.Config{}, urls, zap.NewNop().Sugar())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// listAndWatch lists the TaskRuns of every shard, as an informer does
// first, and watches them.
func listAndWatch(t *testing.T, s *Shards) watch.Interface {
	t.Helper()
	if _, err := s.Resource(taskRuns).List(context.Background(), metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	w, err := s.Resource(taskRuns).Watch(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func receive(t *testing.T, w watch.Interface) (watch.Event, bool) {
	t.Helper()
	select {
	case ev, ok := <-w.ResultChan():
		return ev, ok
	case <-time.After(5 * time.Second):
		t.Fatal("no event from the merged watch within 5 s")
		return watch.Event{}, false
	}
}

func TestShardsListMergesAndRoutes(t *testing.T) {
	ctx := context.Background()
	fakes := map[string]*fakeShard{
		rootVW:  newFakeShard("10", taskRun("tenant-a", "on-root", "7")),
		shardVW: newFakeShard("20", taskRun("tenant-b", "on-shard", "3")),
	}
	s := testShards(t, fakes, shardVW, rootVW)

	list, err := s.Resource(taskRuns).List(ctx, metav1.ListOptions{Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 2 {
		t.Fatalf("merged list has %d items, want 2 (one per shard)", len(list.Items))
	}
	for cluster, want := range map[logicalcluster.Name]string{"tenant-a": rootVW, "tenant-b": shardVW, "never-seen": rootVW} {
		if got := s.Route(cluster); got != want {
			t.Errorf("Route(%s) = %s, want %s", cluster, got, want)
		}
	}
	// A workspace's requests go to its own shard only.
	if _, err := s.Cluster(logicalcluster.NewPath("tenant-b")).Resource(taskRuns).Namespace("default").Get(ctx, "on-shard", metav1.GetOptions{}); err != nil {
		t.Errorf("get tenant-b's TaskRun: %v", err)
	}
	if _, err := s.Resource(taskRuns).Cluster(logicalcluster.NewPath("tenant-a")).Namespace("default").Get(ctx, "on-shard", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("tenant-a's request reached tenant-b's shard: err = %v, want NotFound", err)
	}
}

func TestShardsWatchResumesEachShardWhereItWas(t *testing.T) {
	ctx := context.Background()
	fakes := map[string]*fakeShard{rootVW: newFakeShard("10"), shardVW: newFakeShard("20")}
	s := testShards(t, fakes, rootVW, shardVW)
	opts := metav1.ListOptions{LabelSelector: "a=b"}
	if _, err := s.Resource(taskRuns).List(ctx, opts); err != nil {
		t.Fatal(err)
	}
	w, err := s.Resource(taskRuns).Watch(ctx, metav1.ListOptions{LabelSelector: "a=b", ResourceVersion: "whatever the informer says"})
	if err != nil {
		t.Fatal(err)
	}
	for url, want := range map[string]string{rootVW: "10", shardVW: "20"} {
		fakes[url].waitWatches(t, 1)
		if got, _ := fakes[url].lastWatch(); got.ResourceVersion != want || got.LabelSelector != "a=b" {
			t.Errorf("watch at %s from %q (selector %q), want %q (a=b)", url, got.ResourceVersion, got.LabelSelector, want)
		}
	}
	_, shardWatch := fakes[shardVW].lastWatch()
	go shardWatch.Add(taskRun("tenant-c", "new", "25"))
	ev, _ := receive(t, w)
	if obj := ev.Object.(*unstructured.Unstructured); ev.Type != watch.Added || obj.GetName() != "new" {
		t.Fatalf("got %s %v, want the Added TaskRun", ev.Type, ev.Object)
	}
	if got := s.Route("tenant-c"); got != shardVW {
		t.Errorf("a workspace first seen in a watch event routes to %s, want %s", got, shardVW)
	}
	// The shard's watch ends (its server's timeout, a restart): it resumes
	// where it was, and the merged watch goes on.
	shardWatch.Stop()
	fakes[shardVW].waitWatches(t, 2)
	if got, _ := fakes[shardVW].lastWatch(); got.ResourceVersion != "25" {
		t.Errorf("the shard's watch resumed from %q, want 25 (its last event)", got.ResourceVersion)
	}
	_, rootWatch := fakes[rootVW].lastWatch()
	go rootWatch.Modify(taskRun("tenant-a", "old", "11"))
	if ev, ok := receive(t, w); !ok || ev.Type != watch.Modified {
		t.Fatalf("after one shard's watch ended: got %v (open %v), want the other shard's event", ev.Type, ok)
	}
	w.Stop()
	for {
		if _, ok := receive(t, w); !ok {
			break
		}
	}
	// The informer's next watch resumes each shard where it was.
	if _, err := s.Resource(taskRuns).Watch(ctx, opts); err != nil {
		t.Fatal(err)
	}
	fakes[shardVW].waitWatches(t, 3)
	fakes[rootVW].waitWatches(t, 2)
	for url, want := range map[string]string{rootVW: "11", shardVW: "25"} {
		if got, _ := fakes[url].lastWatch(); got.ResourceVersion != want {
			t.Errorf("second watch at %s from %q, want %q", url, got.ResourceVersion, want)
		}
	}
}

// TestShardsWatchResumesBeforeAnEventNotDelivered: an event a shard sent
// as the merged watch stopped never reached the informer; the next watch
// must resume before it, or the informer never sees it (a TaskRun's last
// update, say, and its cache stays behind until the next list).
func TestShardsWatchResumesBeforeAnEventNotDelivered(t *testing.T) {
	ctx := context.Background()
	fakes := map[string]*fakeShard{rootVW: newFakeShard("10")}
	s := testShards(t, fakes, rootVW)
	w := listAndWatch(t, s)
	fakes[rootVW].waitWatches(t, 1)
	_, rootWatch := fakes[rootVW].lastWatch()
	// The shard's event is taken from its watch, but nobody reads the
	// merged one: the informer is stopping it.
	rootWatch.Add(taskRun("tenant-a", "last-update", "12"))
	time.Sleep(50 * time.Millisecond)
	w.Stop()
	for {
		if _, ok := receive(t, w); !ok {
			break
		}
	}
	if _, err := s.Resource(taskRuns).Watch(ctx, metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	fakes[rootVW].waitWatches(t, 2)
	if got, _ := fakes[rootVW].lastWatch(); got.ResourceVersion != "10" {
		t.Errorf("the next watch resumes from %q, want 10: the event at 12 never reached the informer", got.ResourceVersion)
	}
}

// TestShardsOutageOfOneShard: a shard whose watch cannot start does not
// hold back the other's events, and is watched again once it answers;
// a shard that no longer has the version to resume from makes the
// informer list again.
func TestShardsOutageOfOneShard(t *testing.T) {
	ctx := context.Background()
	fakes := map[string]*fakeShard{rootVW: newFakeShard("10"), shardVW: newFakeShard("20")}
	fakes[shardVW].failWatches = []error{errors.New("connection refused"), errors.New("connection refused")}
	s := testShards(t, fakes, rootVW, shardVW)
	if _, err := s.Resource(taskRuns).List(ctx, metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	w, err := s.Resource(taskRuns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("a watch with one shard down: %v, want the other shard watched", err)
	}
	fakes[rootVW].waitWatches(t, 1)
	_, rootWatch := fakes[rootVW].lastWatch()
	go rootWatch.Add(taskRun("tenant-a", "during-outage", "12"))
	if ev, ok := receive(t, w); !ok || ev.Type != watch.Added {
		t.Fatalf("with one shard down: got %v (open %v), want the other shard's event", ev.Type, ok)
	}
	fakes[shardVW].waitWatches(t, 3) // two failed, the third started
	if got, _ := fakes[shardVW].lastWatch(); got.ResourceVersion != "20" {
		t.Errorf("the shard, back, is watched from %q, want 20 (its list)", got.ResourceVersion)
	}
	// The shard's stream breaks (it shuts down: client-go reports an error
	// event): only its watch restarts, from its own version; nothing
	// reaches the informer, which would list every shard again.
	_, shardWatch := fakes[shardVW].lastWatch()
	go shardWatch.Error(&apierrors.NewInternalError(errors.New("unable to decode an event from the watch stream: context canceled")).ErrStatus)
	fakes[shardVW].waitWatches(t, 4)
	if got, _ := fakes[shardVW].lastWatch(); got.ResourceVersion != "20" {
		t.Errorf("after its stream broke the shard is watched from %q, want 20", got.ResourceVersion)
	}
	go rootWatch.Add(taskRun("tenant-a", "after-break", "13"))
	if ev, ok := receive(t, w); !ok || ev.Type != watch.Added {
		t.Fatalf("after a shard's stream broke: got %v %v (open %v), want the other shard's event, no error", ev.Type, ev.Object, ok)
	}
	// The shard lost the version (it was down too long): list again.
	fakes[shardVW].mu.Lock()
	fakes[shardVW].failWatches = []error{apierrors.NewResourceExpired("too old resource version: 20")}
	fakes[shardVW].mu.Unlock()
	_, shardWatch = fakes[shardVW].lastWatch()
	shardWatch.Stop()
	ev, _ := receive(t, w)
	if status, ok := ev.Object.(*metav1.Status); ev.Type != watch.Error || !ok || status.Code != 410 {
		t.Fatalf("got %s %v, want a 410 error event", ev.Type, ev.Object)
	}
	if _, ok := receive(t, w); ok {
		t.Fatal("the merged watch goes on after a shard's 410")
	}
}

func TestShardsChangeMakesInformersListAgain(t *testing.T) {
	ctx := context.Background()
	fakes := map[string]*fakeShard{rootVW: newFakeShard("10"), shardVW: newFakeShard("20", taskRun("tenant-b", "on-shard", "3"))}
	s := testShards(t, fakes, rootVW)
	w := listAndWatch(t, s)
	if changed, err := s.SetURLs([]string{shardVW, rootVW}); !changed || err != nil {
		t.Fatalf("SetURLs with a new shard: changed=%v, err=%v", changed, err)
	}
	ev, _ := receive(t, w)
	status, ok := ev.Object.(*metav1.Status)
	if ev.Type != watch.Error || !ok || !apierrors.IsResourceExpired(&apierrors.StatusError{ErrStatus: *status}) {
		t.Fatalf("got %s %v, want a 410 Expired error event", ev.Type, ev.Object)
	}
	if _, ok := receive(t, w); ok {
		t.Fatal("the merged watch goes on after the shards changed")
	}
	if _, err := s.Resource(taskRuns).Watch(ctx, metav1.ListOptions{}); !apierrors.IsResourceExpired(err) {
		t.Fatalf("a watch before the new shard is listed: err = %v, want 410 Expired", err)
	}
	list, err := s.Resource(taskRuns).List(ctx, metav1.ListOptions{})
	if err != nil || len(list.Items) != 1 {
		t.Fatalf("list after the change: %v items, err %v; want the new shard's TaskRun", len(list.Items), err)
	}
	// The informer lists again with the merged list's version, which no
	// shard knows: each shard lists its most recent state.
	if _, err := s.Resource(taskRuns).List(ctx, metav1.ListOptions{ResourceVersion: list.GetResourceVersion(), ResourceVersionMatch: metav1.ResourceVersionMatchNotOlderThan}); err != nil {
		t.Fatal(err)
	}
	for _, url := range []string{rootVW, shardVW} {
		f := fakes[url]
		if got := f.lists[len(f.lists)-1]; got.ResourceVersion != "" || got.ResourceVersionMatch != "" {
			t.Errorf("relist at %s with version %q (match %q), want the most recent state", url, got.ResourceVersion, got.ResourceVersionMatch)
		}
	}
	if changed, _ := s.SetURLs([]string{rootVW, shardVW}); changed {
		t.Error("the same shards in another order count as a change")
	}
	if _, err := s.SetURLs(nil); err == nil {
		t.Error("SetURLs(nil) accepted: the controller would have no virtual workspace")
	}
	if got := s.URLs(); len(got) != 2 {
		t.Errorf("after an empty endpoint slice the shards are %v, want both kept", got)
	}
	if changed, _ := s.SetURLs([]string{thirdVW}); !changed {
		t.Error("replacing every shard is not a change")
	}
	if got := s.Route("tenant-b"); got != thirdVW {
		t.Errorf("a workspace of a removed shard routes to %s, want the remaining %s", got, thirdVW)
	}
}
