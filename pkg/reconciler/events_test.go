package reconciler

import (
	"context"
	"testing"
	"time"

	"github.com/kcp-dev/logicalcluster/v3"
	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
)

// Events go to the workspace's own client, one recorder per workspace,
// and a repeated event is one Event with a count, as client-go's
// correlator makes it.
func TestEventsGoToTheirWorkspaceAggregated(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	clients := map[logicalcluster.Name]*fake.Clientset{"ws1": fake.NewSimpleClientset(), "ws2": fake.NewSimpleClientset()}
	made := map[logicalcluster.Name]int{}
	events := NewEvents(ctx, zap.NewNop().Sugar(), func(c logicalcluster.Name) (kubernetes.Interface, error) {
		made[c]++
		return clients[c], nil
	})
	tr := &v1.TaskRun{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "run", UID: "u1"}}
	for range 3 {
		events.Warn("ws1", "taskrun", tr, "Oops", "something went wrong")
	}
	if made["ws1"] != 1 {
		t.Errorf("workspace client made %d times, want once", made["ws1"])
	}
	var got []corev1.Event
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		list, err := clients["ws1"].CoreV1().Events("default").List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		got = list.Items
		return len(got) == 1 && got[0].Count == 3, nil
	})
	if err != nil {
		t.Fatalf("events in ws1: %+v (%v), want one with count 3", got, err)
	}
	e := got[0]
	if e.InvolvedObject.Kind != "TaskRun" || e.InvolvedObject.APIVersion != "tekton.dev/v1" || e.Reason != "Oops" || e.Type != corev1.EventTypeWarning || e.Source.Component != "taskrun" {
		t.Errorf("event %+v does not name the TaskRun, reason and component", e)
	}
	if list, _ := clients["ws2"].CoreV1().Events("").List(ctx, metav1.ListOptions{}); len(list.Items) != 0 {
		t.Errorf("ws2 got %d events of ws1", len(list.Items))
	}
	var none *Events
	none.Warn("ws1", "taskrun", tr, "Oops", "nil Events records nothing")
}
