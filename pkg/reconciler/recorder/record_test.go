package recorder

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/tektoncd/results/pkg/apis/v1alpha3"
	pb "github.com/tektoncd/results/proto/v1alpha2/results_go_proto"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestSetForRecording(t *testing.T) {
	standalone := &v1.TaskRun{ObjectMeta: metav1.ObjectMeta{Name: "tr", UID: "tr-uid"}}
	setForRecording(standalone, "TaskRun", "c1_default")
	if got := standalone.Annotations[AnnotationResult]; got != "c1_default/results/tr-uid" {
		t.Errorf("standalone TaskRun's result %q", got)
	}
	if standalone.APIVersion != "tekton.dev/v1" || standalone.Kind != "TaskRun" {
		t.Errorf("type %s %s", standalone.APIVersion, standalone.Kind)
	}
	child := &v1.TaskRun{ObjectMeta: metav1.ObjectMeta{Name: "pr-t", UID: "tr2", OwnerReferences: []metav1.OwnerReference{
		{APIVersion: "tekton.dev/v1", Kind: "PipelineRun", Name: "pr", UID: "pr-uid"},
	}}}
	setForRecording(child, "TaskRun", "c1_default")
	if got := child.Annotations[AnnotationResult]; got != "c1_default/results/pr-uid" {
		t.Errorf("a PipelineRun's TaskRun goes to the PipelineRun's result, got %q", got)
	}
}

func TestNeedsRecording(t *testing.T) {
	mk := func(status string, stored bool) *unstructured.Unstructured {
		u := &unstructured.Unstructured{Object: map[string]any{"status": map[string]any{
			"conditions": []any{map[string]any{"type": "Succeeded", "status": status}}}}}
		if stored {
			u.SetAnnotations(map[string]string{AnnotationStored: "true"})
		}
		return u
	}
	for _, tc := range []struct {
		u    *unstructured.Unstructured
		want bool
	}{
		{mk("Unknown", false), false},
		{mk("True", false), true},
		{mk("False", false), true},
		{mk("True", true), false},
		{&unstructured.Unstructured{Object: map[string]any{}}, false},
	} {
		if got := needsRecording(tc.u); got != tc.want {
			t.Errorf("needsRecording(%v) = %v, want %v", tc.u.Object, got, tc.want)
		}
	}
}

// logsAnswering is the Logs API answering every GetLog with err (nil: an
// empty stream) and counting the calls.
type logsAnswering struct {
	pb.LogsClient
	err   error
	calls int
}

func (l *logsAnswering) GetLog(context.Context, *pb.GetLogRequest, ...grpc.CallOption) (pb.Logs_GetLogClient, error) {
	l.calls++
	return nil, l.err
}

func logRecord(t *testing.T, stored bool, size int64) *pb.Record {
	t.Helper()
	data, err := json.Marshal(v1alpha3.Log{Status: v1alpha3.LogStatus{IsStored: stored, Size: size}})
	if err != nil {
		t.Fatal(err)
	}
	return &pb.Record{Name: "ns/results/r/records/uid", Data: &pb.Any{Value: data}}
}

// TestLogInResults: a Log is in Results when it is stored and, unless it
// is empty, reads back; an empty one is not read (Results answers
// NotFound for it: the recorder retried such runs for ever).
func TestLogInResults(t *testing.T) {
	notFound := status.Error(codes.NotFound, "Log doesn't exist")
	for _, tc := range []struct {
		name      string
		stored    bool
		size      int64
		getLogErr error
		want      bool
		reads     int
	}{
		{name: "not stored", stored: false, size: 10, want: false},
		{name: "empty, stored", stored: true, size: 0, getLogErr: notFound, want: true},
		{name: "stored, not readable", stored: true, size: 10, getLogErr: notFound, want: false, reads: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs := &logsAnswering{err: tc.getLogErr}
			c := &Controller{logReader: logs}
			if got := c.logInResults(context.Background(), logRecord(t, tc.stored, tc.size)); got != tc.want {
				t.Errorf("logInResults = %v, want %v", got, tc.want)
			}
			if logs.calls != tc.reads {
				t.Errorf("GetLog called %d times, want %d", logs.calls, tc.reads)
			}
		})
	}
}
