package bench

import (
	"context"
	"sync"
	"time"

	"github.com/tektoncd/pipeline/pkg/apis/pipeline"
	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	tektoninformers "github.com/tektoncd/pipeline/pkg/client/informers/externalversions"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
	"knative.dev/pkg/apis"
)

// runTracker counts the PipelineRuns one measurement created as they are
// seen done, whatever order it learns creations and completions in: a run
// may be seen done before its Create call returns, or (after a missed
// event) only by the list at the deadline.
type runTracker struct {
	mu      sync.Mutex
	created map[types.UID]time.Time
	done    map[types.UID]runDone
	// stored is when each run was first seen marked stored in Tekton
	// Results by the recorder.
	stored map[types.UID]time.Time
	// firstTaskRun is when the first TaskRun of each PipelineRun (by the
	// PipelineRun's UID) was seen.
	firstTaskRun map[types.UID]time.Time
}

// runDone is a PipelineRun seen done.
type runDone struct {
	succeeded bool
	at        time.Time
}

func newRunTracker() *runTracker {
	return &runTracker{created: map[types.UID]time.Time{}, done: map[types.UID]runDone{}, stored: map[types.UID]time.Time{}, firstTaskRun: map[types.UID]time.Time{}}
}

func (t *runTracker) create(uid types.UID, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.created[uid] = at
}

// see records pr if it is done, and if it is stored; the first sighting
// counts.
func (t *runTracker) see(pr *v1.PipelineRun, at time.Time) {
	if !pr.IsDone() {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.stored[pr.UID]; !ok && pr.Annotations[storedAnnotation] == "true" {
		t.stored[pr.UID] = at
	}
	if _, ok := t.done[pr.UID]; !ok {
		t.done[pr.UID] = runDone{succeeded: pr.Status.GetCondition(apis.ConditionSucceeded).IsTrue(), at: at}
	}
}

// seeTaskRun records when the first TaskRun of a PipelineRun was seen.
func (t *runTracker) seeTaskRun(tr *v1.TaskRun, at time.Time) {
	uid := types.UID(tr.Labels[pipeline.PipelineRunUIDLabelKey])
	if uid == "" {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.firstTaskRun[uid]; !ok {
		t.firstTaskRun[uid] = at
	}
}

func (t *runTracker) firstTaskRunOf(uid types.UID) (time.Time, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	at, ok := t.firstTaskRun[uid]
	return at, ok
}

// tally is what is known of the created runs: how many are done, how
// many succeeded, and when the last one was seen done.
func (t *runTracker) tally() (done, succeeded int, last time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for uid := range t.created {
		d, ok := t.done[uid]
		if !ok {
			continue
		}
		done++
		if d.succeeded {
			succeeded++
		}
		if d.at.After(last) {
			last = d.at
		}
	}
	return done, succeeded, last
}

// storedAfterDone is, for each created run seen stored, how long after it
// was seen done; and how many created runs are not stored yet.
func (t *runTracker) storedAfterDone() (latencies []float64, missing int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for uid := range t.created {
		s, ok := t.stored[uid]
		d, done := t.done[uid]
		if !ok || !done {
			missing++
			continue
		}
		latencies = append(latencies, s.Sub(d.at).Seconds())
	}
	return latencies, missing
}

// storedAnnotation is what the recorder marks an archived run with
// (recorder.AnnotationStored, upstream watcher's).
const storedAnnotation = "results.tekton.dev/stored"

func (t *runTracker) createdAt() map[types.UID]time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[types.UID]time.Time, len(t.created))
	for k, v := range t.created {
		out[k] = v
	}
	return out
}

// trackRuns feeds the tracker from an informer on the PipelineRuns of
// every workspace or namespace of target: informers list before they
// watch, and list again after a watch error or an expired resource
// version, so a run is not missed because a watch began before its
// resource was served (upstream's CRDs) or ended early.
func trackRuns(ctx context.Context, target runTarget, t *runTracker) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	for i, client := range target.clients {
		factory := tektoninformers.NewSharedInformerFactoryWithOptions(client, 0, tektoninformers.WithNamespace(target.ns(i)))
		inf := factory.Tekton().V1().PipelineRuns().Informer()
		record := func(obj any) {
			if pr, ok := obj.(*v1.PipelineRun); ok {
				t.see(pr, time.Now())
			}
		}
		_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: record, UpdateFunc: func(_, obj any) { record(obj) }})
		_, _ = factory.Tekton().V1().TaskRuns().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: func(obj any) {
			if tr, ok := obj.(*v1.TaskRun); ok {
				t.seeTaskRun(tr, time.Now())
			}
		}})
		factory.Start(ctx.Done())
	}
	return cancel
}

// listRuns lists the PipelineRuns of target once, into the tracker: the
// final word at the deadline.
func listRuns(ctx context.Context, target runTarget, t *runTracker) error {
	now := time.Now()
	for i, client := range target.clients {
		list, err := client.TektonV1().PipelineRuns(target.ns(i)).List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		for j := range list.Items {
			t.see(&list.Items[j], now)
		}
	}
	return nil
}
