package bench

import (
	"context"
	"testing"
	"time"

	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	tektonclient "github.com/tektoncd/pipeline/pkg/client/clientset/versioned"
	faketekton "github.com/tektoncd/pipeline/pkg/client/clientset/versioned/fake"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"knative.dev/pkg/apis"
)

func pipelineRun(name string, done bool) *v1.PipelineRun {
	pr := &v1.PipelineRun{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "bench-0", UID: types.UID("uid-" + name)}}
	if done {
		pr.Status.SetCondition(&apis.Condition{Type: apis.ConditionSucceeded, Status: corev1.ConditionTrue, Reason: "Succeeded"})
	}
	return pr
}

// TestRunTrackingCountsEveryRun: a run done before the informer started
// (its event came before any watch), a run done while it watches, a run
// seen done before its Create returned, and a run done after the watch
// ended (found by the list at the deadline) all count.
func TestRunTrackingCountsEveryRun(t *testing.T) {
	ctx := context.Background()
	early, watched, racing, late := pipelineRun("early", true), pipelineRun("watched", false), pipelineRun("racing", true), pipelineRun("late", false)
	client := faketekton.NewSimpleClientset(early, watched, racing, late)
	target := runTarget{name: "test", clients: []tektonclient.Interface{client}, ns: func(int) string { return "bench-0" }}
	tracker := newRunTracker()
	stop := trackRuns(ctx, target, tracker)

	now := time.Now()
	tracker.see(racing, now) // seen done before its creation is recorded
	for _, pr := range []*v1.PipelineRun{early, watched, racing, late} {
		tracker.create(pr.UID, now)
	}
	waitTally(t, tracker, 2) // early (listed) and racing
	watched = pipelineRun("watched", true)
	if _, err := client.TektonV1().PipelineRuns("bench-0").UpdateStatus(ctx, watched, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitTally(t, tracker, 3)

	stop() // the watch ends; late finishes unseen
	if _, err := client.TektonV1().PipelineRuns("bench-0").UpdateStatus(ctx, pipelineRun("late", true), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if done, _, _ := tracker.tally(); done != 3 {
		t.Fatalf("a stopped informer still counted: %d done", done)
	}
	if err := listRuns(ctx, target, tracker); err != nil {
		t.Fatal(err)
	}
	if done, succeeded, _ := tracker.tally(); done != 4 || succeeded != 4 {
		t.Fatalf("tally %d done, %d succeeded; want 4, 4", done, succeeded)
	}
}

// TestRunTrackingIgnoresOthers: runs the measurement did not create
// (leftovers, the other controller's) do not count.
func TestRunTrackingIgnoresOthers(t *testing.T) {
	tracker := newRunTracker()
	tracker.create("mine", time.Now())
	other := pipelineRun("other", true)
	tracker.see(other, time.Now())
	if done, _, _ := tracker.tally(); done != 0 {
		t.Fatalf("%d done, want 0", done)
	}
}

func waitTally(t *testing.T, tracker *runTracker, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if done, _, _ := tracker.tally(); done == want {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	done, _, _ := tracker.tally()
	t.Fatalf("%d runs done, want %d", done, want)
}
