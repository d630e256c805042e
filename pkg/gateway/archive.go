package gateway

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/kcp-dev/logicalcluster/v3"

	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	pb "github.com/tektoncd/results/proto/v1alpha2/results_go_proto"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apiserver/pkg/authentication/user"
	"knative.dev/pkg/apis"

	"github.com/pipelines-service/pipelines-service/pkg/results"
)

// The archive answers for what a workspace no longer holds, as KubeArchive
// does for a cluster: a TaskRun or PipelineRun that pruning deleted, the
// pod of such a TaskRun, and that pod's logs, read from Tekton Results.
// So `tkn tr logs`, `tkn pr logs` and `kubectl logs` of a pruned run work
// as they did before it was pruned, in the archive view of the workspace
// (archivePrefix). Only single-object reads fall back to the archive
// (lists and watches show what lives), and only after the caller was
// authorised for the same read of the live object, in the workspace whose
// parent is read.

// AnnotationArchived marks an object served from the archive: its value is
// the Record it was read from, named as the tenant names it
// (<namespace>/results/<result>/records/<record>).
const AnnotationArchived = "pipelines-service.dev/archived-record"

// archive reads a workspace's archived runs and logs from the Results API
// (gRPC).
type archive struct {
	results pb.ResultsClient
	logs    pb.LogsClient
}

// errNotArchived: the archive holds no such run either.
var errNotArchived = errors.New("not in the archive")

// record reads the newest record that filter selects in a Result
// (<parent>/results/-: in all the parent's Results).
func (a *archive) record(ctx context.Context, result, filter string) (*pb.Record, error) {
	resp, err := a.results.ListRecords(ctx, &pb.ListRecordsRequest{
		// The API refuses pages of 5 or fewer.
		Parent: result, Filter: filter, OrderBy: "create_time desc", PageSize: 10,
	})
	if err != nil {
		return nil, err
	}
	if len(resp.GetRecords()) == 0 {
		return nil, errNotArchived
	}
	return resp.GetRecords()[0], nil
}

// run is the archived run of a kind ("TaskRun", "PipelineRun") and name:
// its JSON, marked as archived.
func (a *archive) run(ctx context.Context, parent, namespace, kind, name string) ([]byte, error) {
	rec, err := a.record(ctx, results.ResultName(parent, "-"), fmt.Sprintf(`data_type == %s && data.metadata.name == %s`,
		strconv.Quote("tekton.dev/v1."+kind), strconv.Quote(name)))
	if err != nil {
		return nil, err
	}
	var obj map[string]any
	if err := json.Unmarshal(rec.GetData().GetValue(), &obj); err != nil {
		return nil, fmt.Errorf("record %s: %w", rec.GetName(), err)
	}
	meta, _ := obj["metadata"].(map[string]any)
	if meta == nil {
		return nil, fmt.Errorf("record %s holds no object", rec.GetName())
	}
	annotations, _ := meta["annotations"].(map[string]any)
	if annotations == nil {
		annotations = map[string]any{}
	}
	annotations[AnnotationArchived] = tenantName(rec.GetName(), parent, namespace)
	meta["annotations"] = annotations
	return json.Marshal(obj)
}

// taskRunOfPod is the archived TaskRun whose pod is named pod, and its
// record's name.
func (a *archive) taskRunOfPod(ctx context.Context, parent, pod string) (*v1.TaskRun, string, error) {
	rec, err := a.record(ctx, results.ResultName(parent, "-"), fmt.Sprintf(`data_type == "tekton.dev/v1.TaskRun" && data.status.podName == %s`, strconv.Quote(pod)))
	if err != nil {
		return nil, "", err
	}
	tr := &v1.TaskRun{}
	if err := json.Unmarshal(rec.GetData().GetValue(), tr); err != nil {
		return nil, "", fmt.Errorf("record %s: %w", rec.GetName(), err)
	}
	return tr, rec.GetName(), nil
}

// log is the stored log of an archived TaskRun, whose record is
// recordName: what every step printed, each line "[step] …".
func (a *archive) log(ctx context.Context, recordName string, tr *v1.TaskRun) ([]byte, error) {
	result, _, _ := strings.Cut(recordName, "/records/")
	rec, err := a.record(ctx, result, fmt.Sprintf(
		`data_type == "results.tekton.dev/v1alpha3.Log" && data.spec.resource.uid == %s`, strconv.Quote(string(tr.UID))))
	if err != nil {
		return nil, err
	}
	stream, err := a.logs.GetLog(ctx, &pb.GetLogRequest{Name: strings.Replace(rec.GetName(), "/records/", "/logs/", 1)})
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	for {
		chunk, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return out.Bytes(), nil
		}
		if err != nil {
			return nil, err
		}
		out.Write(chunk.GetData())
	}
}

// tenantName is a Results name as the tenant knows it: its namespace in
// place of the internal parent.
func tenantName(name, parent, namespace string) string {
	if rest, ok := strings.CutPrefix(name, parent+"/"); ok {
		return namespace + "/" + rest
	}
	return name
}

// archivedPod is the pod an archived TaskRun ran, as far as the run
// tells: its steps and sidecars as containers, their final states, the
// pod's phase. It carries what tkn and kubectl need to read its logs.
func archivedPod(tr *v1.TaskRun, record string) *corev1.Pod {
	labels := map[string]string{}
	for k, v := range tr.Labels {
		labels[k] = v
	}
	labels["tekton.dev/taskRun"] = tr.Name
	pod := &corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{
			Name: tr.Status.PodName, Namespace: tr.Namespace, Labels: labels,
			Annotations: map[string]string{AnnotationArchived: record},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: v1.SchemeGroupVersion.String(), Kind: "TaskRun", Name: tr.Name, UID: tr.UID,
			}},
		},
		Spec:   corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever},
		Status: corev1.PodStatus{Phase: corev1.PodFailed},
	}
	if tr.Status.StartTime != nil {
		pod.CreationTimestamp = *tr.Status.StartTime
		pod.Status.StartTime = tr.Status.StartTime
	}
	if c := tr.Status.GetCondition(apis.ConditionSucceeded); c != nil && c.IsTrue() {
		pod.Status.Phase = corev1.PodSucceeded
	}
	for _, s := range tr.Status.Steps {
		pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: s.Container})
		pod.Status.ContainerStatuses = append(pod.Status.ContainerStatuses, corev1.ContainerStatus{
			Name: s.Container, State: s.ContainerState, ImageID: s.ImageID,
		})
	}
	for _, s := range tr.Status.Sidecars {
		pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: s.Container})
		pod.Status.ContainerStatuses = append(pod.Status.ContainerStatuses, corev1.ContainerStatus{
			Name: s.Container, State: s.ContainerState, ImageID: s.ImageID,
		})
	}
	return pod
}

// stepOf is the name of the step whose container is named container.
func stepOf(tr *v1.TaskRun, container string) (string, bool) {
	for _, s := range tr.Status.Steps {
		if s.Container == container {
			return s.Name, true
		}
	}
	return "", false
}

// stepLog is what one step printed, from a TaskRun's stored log: its
// lines "[step] …", without the prefix.
func stepLog(log []byte, step string) []byte {
	prefix := "[" + step + "] "
	var out bytes.Buffer
	scanner := bufio.NewScanner(bytes.NewReader(log))
	scanner.Buffer(make([]byte, 64*1024), 16<<20)
	for scanner.Scan() {
		if line, ok := strings.CutPrefix(scanner.Text(), prefix); ok {
			out.WriteString(line)
			out.WriteByte('\n')
		}
	}
	return out.Bytes()
}

// tail keeps the last n lines of log, and at most limit bytes of them (0:
// no limit), as the kubelet applies tailLines and limitBytes.
func tail(log []byte, opts *corev1.PodLogOptions) []byte {
	if opts.TailLines != nil {
		lines := bytes.SplitAfter(log, []byte("\n"))
		if len(lines) > 0 && len(lines[len(lines)-1]) == 0 {
			lines = lines[:len(lines)-1]
		}
		if n := int(*opts.TailLines); n < len(lines) {
			lines = lines[len(lines)-n:]
		}
		log = bytes.Join(lines, nil)
	}
	if opts.LimitBytes != nil && int64(len(log)) > *opts.LimitBytes {
		log = log[:*opts.LimitBytes]
	}
	return log
}

// archivedPodLog is a pod's log from the archive: the step's lines. Only
// steps' logs are archived.
func (a *archive) archivedPodLog(ctx context.Context, tr *v1.TaskRun, record string, opts *corev1.PodLogOptions) ([]byte, error) {
	container := opts.Container
	if container == "" {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("a container name must be specified for pod %s, choose one of: %v", tr.Status.PodName, containerNames(archivedPod(tr, ""))))
	}
	step, ok := stepOf(tr, container)
	if !ok {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("container %s of pod %s: only the logs of steps are archived", container, tr.Status.PodName))
	}
	log, err := a.log(ctx, record, tr)
	if err != nil {
		return nil, err
	}
	return tail(stepLog(log, step), opts), nil
}

// runPath is a GET of one TaskRun or PipelineRun:
// /apis/tekton.dev/v1/namespaces/<ns>/<taskruns|pipelineruns>/<name>.
type runPath struct {
	namespace, resource, name string
}

// kind is the run's kind.
func (p runPath) kind() string {
	if p.resource == "pipelineruns" {
		return "PipelineRun"
	}
	return "TaskRun"
}

// parseRunPath recognises the GET of one run.
func parseRunPath(rest string) (runPath, bool) {
	after, ok := strings.CutPrefix(rest, "/apis/tekton.dev/v1/namespaces/")
	if !ok {
		return runPath{}, false
	}
	parts := strings.Split(after, "/")
	if len(parts) != 3 || (parts[1] != "taskruns" && parts[1] != "pipelineruns") {
		return runPath{}, false
	}
	p := runPath{namespace: parts[0], resource: parts[1], name: parts[2]}
	if len(validation.IsDNS1123Label(p.namespace)) > 0 || len(validation.IsDNS1123Subdomain(p.name)) > 0 {
		return runPath{}, false
	}
	return p, true
}

type notFoundKey struct{}

// withArchivedRun lets a 404 from kcp for the GET of one run be answered
// from the archive (see answerFromArchive).
func (s *Server) withArchivedRun(ctx context.Context, r *http.Request, u user.Info, workspace logicalcluster.Path, rest string) context.Context {
	if workspace.Empty() || r.Method != http.MethodGet {
		return ctx
	}
	p, ok := parseRunPath(rest)
	if !ok {
		return ctx
	}
	return context.WithValue(ctx, notFoundKey{}, func(resp *http.Response) error {
		return s.answerFromArchive(resp, u, workspace, p)
	})
}

// answerFromArchive turns kcp's 404 for a run into the archived run, when
// the caller may get runs of that kind there (the same access review kcp
// made) and the archive has it; otherwise the 404 stands.
func (s *Server) answerFromArchive(resp *http.Response, u user.Info, workspace logicalcluster.Path, p runPath) error {
	ctx := resp.Request.Context()
	log := s.log.With("workspace", workspace.String(), "namespace", p.namespace, "name", p.name, "kind", p.kind())
	allowed, _, err := s.authz.allowed(ctx, workspace, u, access{group: "tekton.dev", verb: "get", resource: p.resource, namespace: p.namespace, name: p.name})
	if err != nil || !allowed {
		return nil
	}
	cluster, err := s.workspaces.resolve(ctx, workspace)
	if err != nil {
		return nil
	}
	data, err := s.archive.run(ctx, results.Parent(cluster, p.namespace), p.namespace, p.kind(), p.name)
	code := http.StatusOK
	switch {
	case errors.Is(err, errNotArchived):
		return nil
	case err != nil:
		log.Infow("archive unreadable", "error", err)
		status := apierrors.NewServiceUnavailable("the " + p.kind() + " is not in the workspace and the archive does not answer").Status()
		status.Kind, status.APIVersion = "Status", "v1"
		if data, err = json.Marshal(status); err != nil {
			return err
		}
		code = http.StatusServiceUnavailable
	}
	_ = resp.Body.Close()
	resp.StatusCode, resp.Status = code, fmt.Sprintf("%d %s", code, http.StatusText(code))
	resp.Header.Del("Content-Encoding")
	resp.Header.Set("Content-Type", "application/json")
	resp.Header.Set("Content-Length", strconv.Itoa(len(data)))
	resp.ContentLength = int64(len(data))
	resp.Body = io.NopCloser(bytes.NewReader(data))
	return nil
}
