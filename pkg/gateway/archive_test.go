package gateway

import (
	"net/http/httptest"
	"testing"

	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"knative.dev/pkg/apis"
	duckv1 "knative.dev/pkg/apis/duck/v1"
)

func TestStepLog(t *testing.T) {
	log := []byte("[build] compiling\n[test] ok 1\n[build] done\n[test] ok 2\n[build-2] other\n[test] pod p was gone before its logs were archived\n")
	if got := string(stepLog(log, "build")); got != "compiling\ndone\n" {
		t.Errorf("build: %q", got)
	}
	if got := string(stepLog(log, "test")); got != "ok 1\nok 2\npod p was gone before its logs were archived\n" {
		t.Errorf("test: %q", got)
	}
	if got := string(stepLog(log, "none")); got != "" {
		t.Errorf("none: %q", got)
	}
}

func TestTail(t *testing.T) {
	log := []byte("a\nb\nc\n")
	for _, tc := range []struct {
		name string
		opts corev1.PodLogOptions
		want string
	}{
		{name: "all", want: "a\nb\nc\n"},
		{name: "tail 2", opts: corev1.PodLogOptions{TailLines: ptr.To[int64](2)}, want: "b\nc\n"},
		{name: "tail 0", opts: corev1.PodLogOptions{TailLines: ptr.To[int64](0)}, want: ""},
		{name: "tail more than there is", opts: corev1.PodLogOptions{TailLines: ptr.To[int64](9)}, want: "a\nb\nc\n"},
		{name: "limit", opts: corev1.PodLogOptions{LimitBytes: ptr.To[int64](3)}, want: "a\nb"},
		{name: "tail then limit", opts: corev1.PodLogOptions{TailLines: ptr.To[int64](1), LimitBytes: ptr.To[int64](1)}, want: "c"},
	} {
		if got := string(tail(log, &tc.opts)); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestParseRunPath(t *testing.T) {
	for path, want := range map[string]*runPath{
		"/apis/tekton.dev/v1/namespaces/default/taskruns/tr-1":     {namespace: "default", resource: "taskruns", name: "tr-1"},
		"/apis/tekton.dev/v1/namespaces/ci/pipelineruns/build.1":   {namespace: "ci", resource: "pipelineruns", name: "build.1"},
		"/apis/tekton.dev/v1/namespaces/default/taskruns":          nil, // a list
		"/apis/tekton.dev/v1/namespaces/default/taskruns/x/status": nil,
		"/apis/tekton.dev/v1/namespaces/default/tasks/x":           nil,
		"/apis/tekton.dev/v1beta1/namespaces/default/taskruns/x":   nil,
		`/apis/tekton.dev/v1/namespaces/default/taskruns/a"||true`: nil, // not a name: never reaches a filter
		"/apis/tekton.dev/v1/namespaces/Default/taskruns/x":        nil,
	} {
		got, ok := parseRunPath(path)
		if (want == nil) == ok || (ok && got != *want) {
			t.Errorf("parseRunPath(%q) = %+v, %t; want %+v", path, got, ok, want)
		}
	}
}

func TestArchivedPod(t *testing.T) {
	start := metav1.Now()
	tr := &v1.TaskRun{
		ObjectMeta: metav1.ObjectMeta{Name: "build", Namespace: "ci", UID: "tr-uid", Labels: map[string]string{"tekton.dev/pipeline": "p"}},
		Status: v1.TaskRunStatus{
			Status: duckv1.Status{Conditions: duckv1.Conditions{{Type: apis.ConditionSucceeded, Status: corev1.ConditionTrue}}},
			TaskRunStatusFields: v1.TaskRunStatusFields{
				PodName: "build-pod", StartTime: &start,
				Steps: []v1.StepState{
					{Name: "compile", Container: "step-compile", ContainerState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0}}},
					{Name: "test", Container: "step-test", ContainerState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0}}},
				},
			},
		},
	}
	pod := archivedPod(tr, "ci/results/r/records/x")
	if pod.Name != "build-pod" || pod.Namespace != "ci" || pod.Status.Phase != corev1.PodSucceeded {
		t.Errorf("pod %s/%s phase %s", pod.Namespace, pod.Name, pod.Status.Phase)
	}
	if pod.Labels["tekton.dev/taskRun"] != "build" || pod.Labels["tekton.dev/pipeline"] != "p" || pod.Annotations[AnnotationArchived] != "ci/results/r/records/x" {
		t.Errorf("labels %v annotations %v", pod.Labels, pod.Annotations)
	}
	if names := containerNames(pod); len(names) != 2 || names[0] != "step-compile" || names[1] != "step-test" {
		t.Errorf("containers %v", names)
	}
	if st := pod.Status.ContainerStatuses[1]; st.Name != "step-test" || st.State.Terminated == nil {
		t.Errorf("status %+v", st)
	}
	if step, ok := stepOf(tr, "step-test"); !ok || step != "test" {
		t.Errorf("stepOf(step-test) = %q, %t", step, ok)
	}
}

func TestArchiveView(t *testing.T) {
	with := &Server{archive: &archive{}}
	r, archived, err := with.view(httptest.NewRequest("GET", "/archive/clusters/root:ws/api/v1/namespaces/default/pods/p", nil))
	if err != nil || !archived || r.URL.Path != "/clusters/root:ws/api/v1/namespaces/default/pods/p" {
		t.Errorf("archive view: %v %t %v", r, archived, err)
	}
	r, archived, err = with.view(httptest.NewRequest("GET", "/clusters/root:ws/api/v1/pods", nil))
	if err != nil || archived || r.URL.Path != "/clusters/root:ws/api/v1/pods" {
		t.Errorf("plain view: %v %t %v", r, archived, err)
	}
	if _, _, err := with.view(httptest.NewRequest("GET", "/archive/api/v1/pods", nil)); !apierrors.IsNotFound(err) {
		t.Errorf("archive view without a workspace: %v, want 404", err)
	}
	if _, _, err := (&Server{}).view(httptest.NewRequest("GET", "/archive/clusters/root:ws/api", nil)); !apierrors.IsServiceUnavailable(err) {
		t.Errorf("archive view without Results: %v, want 503", err)
	}
}
