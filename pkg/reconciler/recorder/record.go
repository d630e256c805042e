package recorder

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	"github.com/tektoncd/results/pkg/apis/v1alpha3"
	"github.com/tektoncd/results/pkg/logs"
	watcherresults "github.com/tektoncd/results/pkg/watcher/results"
	pb "github.com/tektoncd/results/proto/v1alpha2/results_go_proto"
	"k8s.io/apimachinery/pkg/types"

	"github.com/pipelines-service/pipelines-service/pkg/reconciler"
	"github.com/pipelines-service/pipelines-service/pkg/results"
)

// reconcileKey records one finished run: its Result and Record, its Log,
// then the annotations that say so.
func (c *Controller) reconcileKey(ctx context.Context, key string) (time.Duration, error) {
	kindName, objectKey := splitKey(key)
	k, ok := c.kinds[kindName]
	if !ok {
		return 0, nil
	}
	run := newRun(kindName)
	obj, err := reconciler.Get(k.informer.Lister(), objectKey, run)
	if errors.Is(err, reconciler.ErrUndecodable) {
		c.log.Infow("run does not decode; not recorded", "key", objectKey, "error", err)
		return 0, nil
	}
	if err != nil || obj == nil || !needsRecording(obj.Unstructured) {
		return 0, err
	}
	log := c.log.With("workspace", obj.Cluster, "namespace", obj.Namespace, "name", obj.Name, "kind", kindName)

	parent := results.Parent(obj.Cluster, obj.Namespace)
	setForRecording(run, kindName, parent)
	if err := dropInvalidSummaryAnnotations(run); err != nil {
		// Upstream's client refuses the whole run for it: the run is
		// recorded without, and its tenant told.
		c.warn(ctx, obj.Cluster, obj.Unstructured, ReasonInvalidSummaryAnnotations, err.Error()+"; the run is recorded without them")
	}
	_, record, err := c.client.Put(ctx, run)
	if err != nil {
		return 0, fmt.Errorf("record %s: %w", kindName, err)
	}
	logRecord, err := c.client.PutLog(ctx, run)
	if err != nil {
		return 0, fmt.Errorf("log record of %s: %w", kindName, err)
	}
	if !c.logInResults(ctx, logRecord) {
		text, err := c.logs.read(ctx, obj.Cluster, run)
		if errors.Is(err, errUnreachable) {
			log.Infow("workload cluster of the run does not answer; its logs are recorded when it is back", "error", err)
			return retryUnreachable, nil
		}
		if err != nil {
			return 0, err
		}
		if err := c.upload(ctx, logName(logRecord.GetName()), text); err != nil {
			return 0, fmt.Errorf("upload log of %s: %w", kindName, err)
		}
		// An empty Log has no content to flush, nor to read: Results
		// answers NotFound for it by design.
		if len(text) > 0 {
			if err := c.readBack(ctx, logName(logRecord.GetName())); err != nil {
				return 0, fmt.Errorf("log of %s uploaded but not readable: %w", kindName, err)
			}
		}
	}
	annotations := obj.Unstructured.GetAnnotations()
	if annotations == nil {
		annotations = map[string]string{}
	}
	annotations[AnnotationResult] = run.GetAnnotations()[AnnotationResult]
	annotations[AnnotationRecord] = record.GetName()
	annotations[AnnotationLog] = logName(logRecord.GetName())
	annotations[AnnotationStored] = "true"
	if _, err := c.objects[kindName].UpdateMeta(ctx, obj.Cluster, obj.Unstructured, obj.Unstructured.GetLabels(), annotations); err != nil {
		return 0, err
	}
	log.Infow("recorded in Results", "record", record.GetName())
	return 0, nil
}

// newRun is the typed object a kind decodes into.
func newRun(kindName string) watcherresults.Object {
	if kindName == "PipelineRun" {
		return &v1.PipelineRun{}
	}
	return &v1.TaskRun{}
}

// setForRecording prepares the in-memory copy upstream's client records:
// its kind (the record type, and part of the JSON, as the watcher's
// informer objects carry it), and the Result it belongs to, named in the
// annotation upstream's client honours (results.tekton.dev/result) under
// the tenant's parent. A TaskRun of a PipelineRun belongs to the
// PipelineRun's Result, as upstream files it. The record and log
// annotations go: upstream's client would take the names they give, and
// on a run not yet stored they are the tenant's words, not the recorder's
// (the names without them are the same, derived from the run's UID).
func setForRecording(run watcherresults.Object, kindName, parent string) {
	run.GetObjectKind().SetGroupVersionKind(v1.SchemeGroupVersion.WithKind(kindName))
	annotations := run.GetAnnotations()
	if annotations == nil {
		annotations = map[string]string{}
	}
	delete(annotations, AnnotationRecord)
	delete(annotations, AnnotationLog)
	annotations[AnnotationResult] = results.ResultName(parent, string(resultID(run)))
	run.SetAnnotations(annotations)
}

// AnnotationRecordSummaryAnnotations is the run annotation upstream copies
// into its Result's summary: a JSON object.
const AnnotationRecordSummaryAnnotations = "results.tekton.dev/recordSummaryAnnotations"

// ReasonInvalidSummaryAnnotations is the reason of the Warning Event on a
// run whose summary annotations are not a JSON object.
const ReasonInvalidSummaryAnnotations = "InvalidRecordSummaryAnnotations"

// dropInvalidSummaryAnnotations removes, from the in-memory copy, summary
// annotations that are not a JSON object, as upstream's client reads them
// (it fails the run permanently otherwise), and says why.
func dropInvalidSummaryAnnotations(run watcherresults.Object) error {
	annotations := run.GetAnnotations()
	value, ok := annotations[AnnotationRecordSummaryAnnotations]
	if !ok {
		return nil
	}
	var data map[string]any
	if err := json.Unmarshal([]byte(value), &data); err != nil {
		delete(annotations, AnnotationRecordSummaryAnnotations)
		run.SetAnnotations(annotations)
		return fmt.Errorf("annotation %s is not a JSON object: %v", AnnotationRecordSummaryAnnotations, err)
	}
	return nil
}

// resultID is the UID of the PipelineRun that owns run, or run's own.
func resultID(run watcherresults.Object) types.UID {
	for _, ref := range run.GetOwnerReferences() {
		if strings.EqualFold(ref.Kind, "PipelineRun") {
			return ref.UID
		}
	}
	return run.GetUID()
}

// logName is the name UpdateLog and GetLog take for a Log record.
func logName(recordName string) string {
	return strings.Replace(recordName, "/records/", "/logs/", 1)
}

// logInResults says the Log record's content is in Results: uploaded
// completely (the API sets isStored at the end of an upload) and, unless
// it is empty, readable (see readBack). Results serves no content for an
// empty Log (GetLog answers NotFound "Log doesn't exist"): its record,
// stored with size 0, is all there is.
func (c *Controller) logInResults(ctx context.Context, rec *pb.Record) bool {
	var l v1alpha3.Log
	if rec.GetData() == nil || json.Unmarshal(rec.GetData().GetValue(), &l) != nil || !l.Status.IsStored {
		return false
	}
	return l.Status.Size == 0 || c.readBack(ctx, logName(rec.GetName())) == nil
}

// readBack reads a stored Log whole. The Log record's isStored says too
// little: Results v0.18.0 sets it before it flushes the content to the
// storage, so a failed flush (an S3 part refused) leaves a Log marked
// stored that cannot be read, and a retry would take the mark's word.
func (c *Controller) readBack(ctx context.Context, name string) error {
	stream, err := c.logReader.GetLog(ctx, &pb.GetLogRequest{Name: name})
	if err != nil {
		return err
	}
	for {
		if _, err := stream.Recv(); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// upload streams text as the Log's content, in the 64 KiB messages
// upstream's watcher sends.
func (c *Controller) upload(ctx context.Context, name string, text []byte) error {
	stream, err := c.client.UpdateLog(ctx)
	if err != nil {
		return err
	}
	if len(text) == 0 {
		// A run that printed nothing: one empty message, so that the API
		// marks the Log stored with size 0 (a stream without a message
		// names no Log, and the API fails it).
		if err := stream.Send(&pb.Log{Name: name}); err != nil {
			return err
		}
	}
	w := logs.NewBufferedWriter(stream, name, 64*1024)
	if _, err := w.Write(text); err != nil {
		return err
	}
	if _, err := w.Flush(); err != nil {
		return err
	}
	_, err = stream.CloseAndRecv()
	return err
}
