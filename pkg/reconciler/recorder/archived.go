package recorder

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/kcp-dev/logicalcluster/v3"
	"github.com/tektoncd/results/pkg/apis/v1alpha3"
	pb "github.com/tektoncd/results/proto/v1alpha2/results_go_proto"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/pipelines-service/pipelines-service/pkg/results"
)

// errNotArchived: Results does not hold what a run's annotations claim.
var errNotArchived = errors.New("not archived")

// recordReader reads Records from the Results API.
type recordReader interface {
	GetRecord(ctx context.Context, in *pb.GetRecordRequest, opts ...grpc.CallOption) (*pb.Record, error)
}

// archived checks, in Results, what the run's annotations claim before
// pruning deletes it: its Record and its stored Log, both under the
// parent of its own workspace and namespace, both of this very run (its
// UID). The annotations alone prove nothing: the tenant can write them,
// and a run deleted on their word would be lost, or would point at
// another run's archive.
func archived(ctx context.Context, reader recordReader, ws logicalcluster.Name, run *unstructured.Unstructured) error {
	prefix := results.Parent(ws, run.GetNamespace()) + "/results/"
	annotations := run.GetAnnotations()
	recordName, logName := annotations[AnnotationRecord], annotations[AnnotationLog]
	if !strings.HasPrefix(recordName, prefix) || !strings.HasPrefix(logName, prefix) {
		return fmt.Errorf("%w: its %s and %s annotations do not name records of its workspace and namespace", errNotArchived, AnnotationRecord, AnnotationLog)
	}
	record, err := getRecord(ctx, reader, recordName)
	if err != nil {
		return err
	}
	var obj metav1.PartialObjectMetadata
	if err := json.Unmarshal(record.GetData().GetValue(), &obj); err != nil || obj.UID != run.GetUID() {
		return fmt.Errorf("%w: record %s is not of this run (UID %s)", errNotArchived, recordName, run.GetUID())
	}
	logRecord, err := getRecord(ctx, reader, strings.Replace(logName, "/logs/", "/records/", 1))
	if err != nil {
		return err
	}
	var l v1alpha3.Log
	if err := json.Unmarshal(logRecord.GetData().GetValue(), &l); err != nil || l.Spec.Resource.UID != run.GetUID() {
		return fmt.Errorf("%w: log %s is not of this run (UID %s)", errNotArchived, logName, run.GetUID())
	}
	if !l.Status.IsStored {
		return fmt.Errorf("%w: log %s is not stored", errNotArchived, logName)
	}
	return nil
}

// getRecord reads a Record; one that is not there is errNotArchived.
func getRecord(ctx context.Context, reader recordReader, name string) (*pb.Record, error) {
	record, err := reader.GetRecord(ctx, &pb.GetRecordRequest{Name: name})
	if status.Code(err) == codes.NotFound {
		return nil, fmt.Errorf("%w: no record %s", errNotArchived, name)
	}
	if err != nil {
		return nil, fmt.Errorf("record %s: %w", name, err)
	}
	return record, nil
}
