//go:build e2e

package taskrun

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kcp-dev/logicalcluster/v3"
	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"

	tektonclient "github.com/tektoncd/pipeline/pkg/client/clientset/versioned"

	"github.com/pipelines-service/pipelines-service/pkg/resolution"
	"github.com/pipelines-service/pipelines-service/pkg/workload"
	"github.com/pipelines-service/pipelines-service/test/e2e/framework"
)

const ns = "default"

// greetTask has a script step, a string and an array param, two results.
func greetTask() *v1.Task {
	return &v1.Task{
		ObjectMeta: metav1.ObjectMeta{Name: "greet"},
		Spec: v1.TaskSpec{
			Params:  v1.ParamSpecs{{Name: "who", Type: v1.ParamTypeString}, {Name: "words", Type: v1.ParamTypeArray}},
			Results: []v1.TaskResult{{Name: "greeting"}, {Name: "count"}},
			Steps: []v1.Step{{
				Name:  "greet",
				Image: "docker.io/library/busybox:1.36",
				Args:  []string{"$(params.words[*])"},
				Script: `#!/bin/sh
echo "hello $(params.who): $@"
printf "hello %s" "$(params.who)" > $(results.greeting.path)
printf "%s" "$#" > $(results.count.path)
`,
			}},
		},
	}
}

func greetRun(name, who string, words ...string) *v1.TaskRun {
	return &v1.TaskRun{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1.TaskRunSpec{
			TaskRef: &v1.TaskRef{Name: "greet"},
			Params: v1.Params{
				{Name: "who", Value: *v1.NewStructuredValues(who)},
				{Name: "words", Value: *v1.NewStructuredValues(words[0], words[1:]...)},
			},
		},
	}
}

func create(ctx context.Context, t *testing.T, tn *framework.Tenant, tr *v1.TaskRun) {
	t.Helper()
	if _, err := tn.Tekton.TektonV1().TaskRuns(ns).Create(ctx, tr, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create TaskRun %s in %s: %v", tr.Name, tn.Name, err)
	}
}

func results(tr *v1.TaskRun) map[string]string {
	out := map[string]string{}
	for _, r := range tr.Status.Results {
		out[r.Name] = r.Value.StringVal
	}
	return out
}

// TestTaskRunsInTwoTenantsSucceedWithResults: two tenant workspaces each
// run a TaskRun with a script step, string and array params and two
// results; the pods run in collision-free workload namespaces, carry labels
// leading back to the tenant, and neither tenant sees the other.
func TestTaskRunsInTwoTenantsSucceedWithResults(t *testing.T) {
	ctx := context.Background()
	tenants := []*framework.Tenant{env.NewTenant(ctx, t, "e2e-a"), env.NewTenant(ctx, t, "e2e-b")}
	words := [][]string{{"a", "b", "c"}, {"x", "y"}}
	for i, tn := range tenants {
		if _, err := tn.Tekton.TektonV1().Tasks(ns).Create(ctx, greetTask(), metav1.CreateOptions{}); err != nil {
			t.Fatalf("create Task in %s: %v", tn.Name, err)
		}
		create(ctx, t, tn, greetRun("greet", tn.Name, words[i]...))
	}
	workloadNamespaces := map[string]bool{}
	for i, tn := range tenants {
		tr := tn.WaitTaskRunDone(ctx, t, ns, "greet", 3*time.Minute)
		if status, reason := framework.Condition(tr); status != "True" || reason != "Succeeded" {
			t.Fatalf("%s: TaskRun ended %s/%s, want True/Succeeded", tn.Name, status, reason)
		}
		want := map[string]string{"greeting": "hello " + tn.Name, "count": fmt.Sprint(len(words[i]))}
		if got := results(tr); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: results = %v, want %v", tn.Name, got, want)
		}
		if tr.Status.StartTime == nil || tr.Status.CompletionTime == nil || tr.Status.PodName == "" || len(tr.Status.Steps) != 1 {
			t.Errorf("%s: status lacks start/completion time, pod name or steps: %+v", tn.Name, tr.Status)
		}
		cluster := logicalcluster.From(tr)
		pod, err := env.Workload.CoreV1().Pods(workload.Namespace(cluster, ns)).Get(ctx, tr.Status.PodName, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("%s: pod on the workload cluster: %v", tn.Name, err)
		}
		if pod.Labels[workload.LabelClusterName] != cluster.String() || pod.Labels[workload.LabelTaskRunUID] != string(tr.UID) ||
			pod.Annotations[workload.AnnotationTaskRun] != ns+"/greet" || len(pod.OwnerReferences) != 0 {
			t.Errorf("%s: pod does not lead back to the tenant TaskRun: labels %v, annotations %v, owners %v", tn.Name, pod.Labels, pod.Annotations, pod.OwnerReferences)
		}
		workloadNamespaces[pod.Namespace] = true
		// Tekton's own containers are named by digest: none asks the
		// registry again for every pod (a :latest tag is pulled Always).
		for _, c := range pod.Spec.InitContainers {
			if c.ImagePullPolicy != corev1.PullIfNotPresent || !strings.Contains(c.Image, "@sha256:") {
				t.Errorf("%s: Tekton's init container %s has image %s, pull policy %s; want one pinned by digest, IfNotPresent", tn.Name, c.Name, c.Image, c.ImagePullPolicy)
			}
		}
		// Tekton's events, recorded in the tenant's own workspace.
		framework.Eventually(t, 30*time.Second, tn.Name+": Started and Succeeded events of the TaskRun", func() (bool, string, error) {
			events, err := tn.Kube.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=greet"})
			if err != nil {
				return false, "", err
			}
			reasons := map[string]bool{}
			for _, e := range events.Items {
				reasons[e.Reason] = true
			}
			return reasons["Started"] && reasons["Succeeded"], fmt.Sprint(reasons), nil
		})
	}
	if len(workloadNamespaces) != 2 {
		t.Errorf("two tenants' pods share a workload namespace: %v", workloadNamespaces)
	}

	// Tenant isolation: a's identity cannot read b's workspace.
	a, b := tenants[0], tenants[1]
	cross := rest.CopyConfig(a.Rest)
	cross.Host = strings.Replace(a.Rest.Host, "root:"+a.Name, "root:"+b.Name, 1)
	crossClient, err := tektonclient.NewForConfig(cross)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := crossClient.TektonV1().TaskRuns(ns).List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("tenant %s listing TaskRuns of %s: err = %v, want Forbidden", a.Name, b.Name, err)
	}
	if _, err := crossClient.TektonV1().TaskRuns(ns).Get(ctx, "greet", metav1.GetOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("tenant %s reading a TaskRun of %s: err = %v, want Forbidden", a.Name, b.Name, err)
	}
}

// TestFailingStepFailsTaskRunAsTekton: a step exiting 1 fails the run
// with reason Failed; steps after it are recorded as skipped.
func TestFailingStepFailsTaskRunAsTekton(t *testing.T) {
	ctx := context.Background()
	tn := env.NewTenant(ctx, t, "e2e-fail")
	create(ctx, t, tn, &v1.TaskRun{
		ObjectMeta: metav1.ObjectMeta{Name: "fails"},
		Spec: v1.TaskRunSpec{TaskSpec: &v1.TaskSpec{Steps: []v1.Step{
			{Name: "one", Image: "busybox", Script: "echo one"},
			{Name: "two", Image: "busybox", Script: "echo failing; exit 1"},
			{Name: "three", Image: "busybox", Script: "echo never"},
		}}},
	})
	tr := tn.WaitTaskRunDone(ctx, t, ns, "fails", 3*time.Minute)
	if status, reason := framework.Condition(tr); status != "False" || reason != string(v1.TaskRunReasonFailed) {
		t.Fatalf("TaskRun ended %s/%s, want False/Failed", status, reason)
	}
	want := []struct {
		exit   int32
		reason string
	}{{0, "Completed"}, {1, "Error"}, {1, "Skipped"}}
	if len(tr.Status.Steps) != len(want) {
		t.Fatalf("%d steps recorded, want %d", len(tr.Status.Steps), len(want))
	}
	for i, w := range want {
		st := tr.Status.Steps[i]
		if st.Terminated == nil || st.Terminated.ExitCode != w.exit || st.TerminationReason != w.reason {
			t.Errorf("step %s: terminated %+v, termination reason %q; want exit %d, %s", st.Name, st.Terminated, st.TerminationReason, w.exit, w.reason)
		}
	}
}

func sleeper(name string) *v1.TaskRun {
	return &v1.TaskRun{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       v1.TaskRunSpec{TaskSpec: &v1.TaskSpec{Steps: []v1.Step{{Name: "sleep", Image: "busybox", Script: "sleep 300"}}}},
	}
}

// waitPodRunning waits until the TaskRun's pod runs on the workload cluster.
func waitPodRunning(ctx context.Context, t *testing.T, tn *framework.Tenant, name string) *corev1.Pod {
	t.Helper()
	var pod *corev1.Pod
	framework.Eventually(t, 2*time.Minute, "pod of "+name+" running", func() (bool, string, error) {
		tr, err := tn.Tekton.TektonV1().TaskRuns(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil || tr.Status.PodName == "" {
			return false, "no pod name yet", nil
		}
		pod, err = env.Workload.CoreV1().Pods(workload.Namespace(logicalcluster.From(tr), ns)).Get(ctx, tr.Status.PodName, metav1.GetOptions{})
		if err != nil {
			return false, err.Error(), nil
		}
		return pod.Status.Phase == corev1.PodRunning, string(pod.Status.Phase), nil
	})
	return pod
}

func waitPodGone(ctx context.Context, t *testing.T, pod *corev1.Pod, within time.Duration) {
	t.Helper()
	framework.Eventually(t, within, "pod "+pod.Name+" gone", func() (bool, string, error) {
		_, err := env.Workload.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), fmt.Sprint(err), nil
	})
}

// TestTimeoutAndCancellation: a 30s timeout on a long sleep fails with
// TaskRunTimeout, its running step recorded as terminated by it;
// cancelling a running TaskRun stops its pod.
func TestTimeoutAndCancellation(t *testing.T) {
	ctx := context.Background()
	tn := env.NewTenant(ctx, t, "e2e-stop")

	// The timeout leaves the pod time to start, so that the step it stops
	// is there to be recorded whatever placement and scheduling take.
	const timeout = 30 * time.Second
	timed := sleeper("times-out")
	timed.Spec.Timeout = &metav1.Duration{Duration: timeout}
	create(ctx, t, tn, timed)
	create(ctx, t, tn, sleeper("cancelled"))
	waitPodRunning(ctx, t, tn, "times-out")

	pod := waitPodRunning(ctx, t, tn, "cancelled")
	patch := []byte(`{"spec":{"status":"` + string(v1.TaskRunSpecStatusCancelled) + `"}}`)
	if _, err := tn.Tekton.TektonV1().TaskRuns(ns).Patch(ctx, "cancelled", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatalf("cancel: %v", err)
	}
	tr := tn.WaitTaskRunDone(ctx, t, ns, "cancelled", time.Minute)
	if status, reason := framework.Condition(tr); status != "False" || reason != string(v1.TaskRunReasonCancelled) {
		t.Errorf("cancelled TaskRun ended %s/%s, want False/TaskRunCancelled", status, reason)
	}
	waitPodGone(ctx, t, pod, 30*time.Second)

	tr = tn.WaitTaskRunDone(ctx, t, ns, "times-out", 2*time.Minute)
	if status, reason := framework.Condition(tr); status != "False" || reason != string(v1.TaskRunReasonTimedOut) {
		t.Errorf("timed-out TaskRun ended %s/%s, want False/TaskRunTimeout", status, reason)
	}
	if took := tr.Status.CompletionTime.Sub(tr.Status.StartTime.Time); took < timeout || took > 2*timeout {
		t.Errorf("timed out after %s, want shortly after %s", took, timeout)
	}
	if len(tr.Status.Steps) != 1 || tr.Status.Steps[0].TerminationReason != string(v1.TaskRunReasonTimedOut) {
		t.Errorf("step not recorded as terminated by the timeout: %+v", tr.Status.Steps)
	}
}

// TestInvalidTaskRunsGetConditionsAndServiceContinues: a missing Task and
// a param of the wrong type get Tekton's failure conditions; the
// controller keeps serving the same and other workspaces.
func TestInvalidTaskRunsGetConditionsAndServiceContinues(t *testing.T) {
	ctx := context.Background()
	tn := env.NewTenant(ctx, t, "e2e-invalid")
	if _, err := tn.Tekton.TektonV1().Tasks(ns).Create(ctx, greetTask(), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	missing := &v1.TaskRun{ObjectMeta: metav1.ObjectMeta{Name: "missing-task"}, Spec: v1.TaskRunSpec{TaskRef: &v1.TaskRef{Name: "does-not-exist"}}}
	badType := greetRun("bad-param-type", "x", "a", "b")
	badType.Spec.Params[0].Value = *v1.NewStructuredValues("not", "a", "string")
	remote := &v1.TaskRun{ObjectMeta: metav1.ObjectMeta{Name: "remote-resolver"}, Spec: v1.TaskRunSpec{
		TaskRef: &v1.TaskRef{ResolverRef: v1.ResolverRef{Resolver: "git", Params: v1.Params{
			{Name: "url", Value: *v1.NewStructuredValues("https://example.invalid/repo.git")},
			{Name: "revision", Value: *v1.NewStructuredValues("main")},
			{Name: "pathInRepo", Value: *v1.NewStructuredValues("task.yaml")},
		}}}}}
	create(ctx, t, tn, missing)
	create(ctx, t, tn, badType)
	create(ctx, t, tn, remote)

	cases := []struct {
		name, reason, message string
	}{
		{"missing-task", string(v1.TaskRunReasonFailedResolution), `"does-not-exist" not found`},
		{"bad-param-type", string(v1.TaskRunReasonFailedValidation), "param types don't match"},
		{"remote-resolver", resolution.ReasonHostNotAllowed, `host "example.invalid:443" is not allowed by the platform`},
	}
	for _, tc := range cases {
		tr := tn.WaitTaskRunDone(ctx, t, ns, tc.name, time.Minute)
		cond := tr.Status.GetCondition("Succeeded")
		if cond.Status != "False" || cond.Reason != tc.reason || !strings.Contains(cond.Message, tc.message) {
			t.Errorf("%s: condition %s/%s %q, want False/%s containing %q", tc.name, cond.Status, cond.Reason, cond.Message, tc.reason, tc.message)
		}
		if tr.Spec.TaskRef == nil || (tc.name == "bad-param-type" && len(tr.Spec.Params) != len(badType.Spec.Params)) || (tc.name == "remote-resolver" && tr.Spec.TaskRef.Resolver != "git") {
			t.Errorf("%s: the tenant's spec was changed: %+v", tc.name, tr.Spec)
		}
	}
	create(ctx, t, tn, greetRun("valid-after", "still-served", "a", "b"))
	if status, reason := framework.Condition(tn.WaitTaskRunDone(ctx, t, ns, "valid-after", 2*time.Minute)); status != "True" {
		t.Errorf("valid TaskRun after invalid ones ended %s/%s", status, reason)
	}
}

// TestDeletingTaskRunRemovesItsPod: the workload cluster has no owner
// references to tenant objects; deleting the TaskRun removes it at once
// (no finalizer holds it, as none holds a pod's owner on Kubernetes) and
// its pod after it.
func TestDeletingTaskRunRemovesItsPod(t *testing.T) {
	ctx := context.Background()
	tn := env.NewTenant(ctx, t, "e2e-delete")
	create(ctx, t, tn, sleeper("deleted"))
	pod := waitPodRunning(ctx, t, tn, "deleted")
	if err := tn.Tekton.TektonV1().TaskRuns(ns).Delete(ctx, "deleted", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPodGone(ctx, t, pod, time.Minute)
	framework.Eventually(t, 30*time.Second, "TaskRun gone", func() (bool, string, error) {
		_, err := tn.Tekton.TektonV1().TaskRuns(ns).Get(ctx, "deleted", metav1.GetOptions{})
		return apierrors.IsNotFound(err), fmt.Sprint(err), nil
	})
}

// TestDeletingWorkspaceWithRunningTaskRun: a tenant deletes its workspace
// while a TaskRun runs. kcp removes the workspace's namespaces before the
// bound objects in them; a finalizer of ours on the TaskRun then could
// never be removed (no update passes admission in a namespace that is
// gone), and the workspace stayed Terminating for ever. The workspace
// goes, and the pods of a TaskRun and of a PipelineRun's TaskRun with it.
func TestDeletingWorkspaceWithRunningTaskRun(t *testing.T) {
	ctx := context.Background()
	tn := env.NewTenant(ctx, t, "e2e-delete-ws")
	create(ctx, t, tn, sleeper("running"))
	pipelineRun := &v1.PipelineRun{
		ObjectMeta: metav1.ObjectMeta{Name: "running-pipeline"},
		Spec: v1.PipelineRunSpec{PipelineSpec: &v1.PipelineSpec{Tasks: []v1.PipelineTask{{
			Name: "sleep", TaskSpec: &v1.EmbeddedTask{TaskSpec: *sleeper("").Spec.TaskSpec},
		}}}},
	}
	if _, err := tn.Tekton.TektonV1().PipelineRuns(ns).Create(ctx, pipelineRun, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pods := []*corev1.Pod{waitPodRunning(ctx, t, tn, "running"), waitPodRunning(ctx, t, tn, "running-pipeline-sleep")}
	workspaces := env.KCP.Cluster(logicalcluster.NewPath("root")).TenancyV1alpha1().Workspaces()
	if err := workspaces.Delete(ctx, tn.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, pod := range pods {
		waitPodGone(ctx, t, pod, 2*time.Minute)
	}
	framework.Eventually(t, 3*time.Minute, "workspace "+tn.Name+" gone", func() (bool, string, error) {
		ws, err := workspaces.Get(ctx, tn.Name, metav1.GetOptions{})
		if err != nil {
			return apierrors.IsNotFound(err), err.Error(), nil
		}
		return false, fmt.Sprintf("phase %s, deleting since %v", ws.Status.Phase, ws.DeletionTimestamp), nil
	})
}

// TestWorkloadClusterKnowsNothingOfTekton: no tekton.dev API or CRD on the
// workload cluster.
func TestWorkloadClusterKnowsNothingOfTekton(t *testing.T) {
	groups, err := env.Workload.Discovery().ServerGroups()
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range groups.Groups {
		if strings.Contains(g.Name, "tekton.dev") {
			t.Errorf("workload cluster serves API group %s", g.Name)
		}
	}
	raw, err := env.Workload.Discovery().RESTClient().Get().AbsPath("/apis/apiextensions.k8s.io/v1/customresourcedefinitions").DoRaw(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), "tekton.dev") {
		t.Errorf("workload cluster has a tekton.dev CRD: %s", raw)
	}
}
