package recorder

import (
	"context"
	"errors"
	"fmt"
	"testing"

	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	pb "github.com/tektoncd/results/proto/v1alpha2/results_go_proto"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// records is a Results API holding records by name; down answers
// Unavailable.
type records struct {
	byName map[string]string // name -> data JSON
	down   bool
}

func (r records) GetRecord(_ context.Context, in *pb.GetRecordRequest, _ ...grpc.CallOption) (*pb.Record, error) {
	if r.down {
		return nil, status.Error(codes.Unavailable, "connection refused")
	}
	data, ok := r.byName[in.GetName()]
	if !ok {
		return nil, status.Error(codes.NotFound, "not found")
	}
	return &pb.Record{Name: in.GetName(), Data: &pb.Any{Value: []byte(data)}}, nil
}

func TestArchived(t *testing.T) {
	const (
		ws     = "ws1"
		parent = "ws1_default/results/r1"
	)
	run := func(record, log string) *unstructured.Unstructured {
		u := &unstructured.Unstructured{}
		u.SetNamespace("default")
		u.SetUID("uid-1")
		u.SetAnnotations(map[string]string{AnnotationRecord: record, AnnotationLog: log, AnnotationStored: "true"})
		return u
	}
	logData := func(uid string, stored bool) string {
		return fmt.Sprintf(`{"spec":{"resource":{"uid":%q}},"status":{"isStored":%t}}`, uid, stored)
	}
	archive := map[string]string{
		parent + "/records/a":     `{"metadata":{"uid":"uid-1"}}`,
		parent + "/records/l":     logData("uid-1", true),
		parent + "/records/other": `{"metadata":{"uid":"uid-2"}}`,
		parent + "/records/l2":    logData("uid-2", true),
		parent + "/records/l3":    logData("uid-1", false),
		// Another tenant's archive, with a run of the same UID.
		"ws2_default/results/r1/records/a": `{"metadata":{"uid":"uid-1"}}`,
		"ws2_default/results/r1/records/l": logData("uid-1", true),
	}
	for _, tc := range []struct {
		name        string
		run         *unstructured.Unstructured
		down        bool
		notArchived bool // errNotArchived; otherwise, with wantErr, a transient error
		wantErr     bool
	}{
		{name: "record and stored log of the run", run: run(parent+"/records/a", parent+"/logs/l")},
		{name: "another workspace's archive", run: run("ws2_default/results/r1/records/a", "ws2_default/results/r1/logs/l"), notArchived: true, wantErr: true},
		{name: "no annotations", run: run("", ""), notArchived: true, wantErr: true},
		{name: "record missing", run: run(parent+"/records/gone", parent+"/logs/l"), notArchived: true, wantErr: true},
		{name: "record of another run", run: run(parent+"/records/other", parent+"/logs/l"), notArchived: true, wantErr: true},
		{name: "log of another run", run: run(parent+"/records/a", parent+"/logs/l2"), notArchived: true, wantErr: true},
		{name: "log not stored", run: run(parent+"/records/a", parent+"/logs/l3"), notArchived: true, wantErr: true},
		{name: "Results down", run: run(parent+"/records/a", parent+"/logs/l"), down: true, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := archived(context.Background(), records{byName: archive, down: tc.down}, ws, tc.run)
			if (err != nil) != tc.wantErr {
				t.Fatalf("archived() = %v, want error %t", err, tc.wantErr)
			}
			if errors.Is(err, errNotArchived) != tc.notArchived {
				t.Errorf("archived() = %v: not archived %t, want %t", err, errors.Is(err, errNotArchived), tc.notArchived)
			}
		})
	}
}

func TestRecordingIgnoresTenantAnnotations(t *testing.T) {
	tr := &v1.TaskRun{ObjectMeta: metav1.ObjectMeta{Name: "tr", UID: "tr-uid", Annotations: map[string]string{
		AnnotationRecord:                   "other_ns/results/x/records/y",
		AnnotationLog:                      "other_ns/results/x/logs/y",
		AnnotationRecordSummaryAnnotations: "not json",
	}}}
	setForRecording(tr, "TaskRun", "c1_default")
	if _, ok := tr.Annotations[AnnotationRecord]; ok {
		t.Errorf("record annotation kept: %v", tr.Annotations)
	}
	if _, ok := tr.Annotations[AnnotationLog]; ok {
		t.Errorf("log annotation kept: %v", tr.Annotations)
	}
	if err := dropInvalidSummaryAnnotations(tr); err == nil {
		t.Error("invalid summary annotations not reported")
	}
	if _, ok := tr.Annotations[AnnotationRecordSummaryAnnotations]; ok {
		t.Error("invalid summary annotations kept")
	}
	valid := &v1.TaskRun{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{AnnotationRecordSummaryAnnotations: `{"branch":"main"}`}}}
	if err := dropInvalidSummaryAnnotations(valid); err != nil || valid.Annotations[AnnotationRecordSummaryAnnotations] == "" {
		t.Errorf("valid summary annotations: %v, %v", err, valid.Annotations)
	}
}
