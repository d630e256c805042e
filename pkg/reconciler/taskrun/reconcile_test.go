package taskrun

import (
	"context"
	"fmt"
	"testing"
	"time"

	kcpcache "github.com/kcp-dev/apimachinery/v2/pkg/cache"
	kcpdynamicinformer "github.com/kcp-dev/client-go/dynamic/dynamicinformer"
	kcpfakedynamic "github.com/kcp-dev/client-go/third_party/k8s.io/client-go/dynamic/fake"
	"github.com/kcp-dev/logicalcluster/v3"
	"github.com/tektoncd/pipeline/pkg/apis/pipeline"
	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	kubefake "k8s.io/client-go/kubernetes/fake"
	psaapi "k8s.io/pod-security-admission/api"
	"k8s.io/utils/ptr"
	"knative.dev/pkg/apis"

	"github.com/pipelines-service/pipelines-service/pkg/fleet"
	"github.com/pipelines-service/pipelines-service/pkg/images"
	"github.com/pipelines-service/pipelines-service/pkg/reconciler"
	"github.com/pipelines-service/pipelines-service/pkg/reconciler/placement"
	"github.com/pipelines-service/pipelines-service/pkg/tenantconfig"
	"github.com/pipelines-service/pipelines-service/pkg/workload"
)

// fakeFleet is one workload cluster, "workload-1", on a fake client: the
// platform's policy lets the tenant run there and nowhere else.
type fakeFleet struct {
	member    *fleet.Member
	admission *fleet.Admission
}

func newFakeFleet() *fakeFleet {
	return &fakeFleet{
		member:    fleet.NewStaticMember("workload-1", kubefake.NewClientset(), map[string]string{"region": "local-1"}),
		admission: fleet.NewAdmission(func(string) int { return 10 }, func(string) int { return 10 }),
	}
}

func (f *fakeFleet) Place(fleet.Request) (string, error) { return f.member.Name, nil }
func (f *fakeFleet) Allows(_ fleet.Request, name string) error {
	if name != f.member.Name {
		return fmt.Errorf("%w: the tenant's policy does not open %s to it", fleet.ErrNoCluster, name)
	}
	return nil
}
func (f *fakeFleet) Admission() *fleet.Admission { return f.admission }
func (f *fakeFleet) Member(name string) *fleet.Member {
	if name == f.member.Name {
		return f.member
	}
	return nil
}
func (f *fakeFleet) Members() []*fleet.Member { return []*fleet.Member{f.member} }
func (f *fakeFleet) PodSecurityLevel(string) (psaapi.Level, error) {
	return psaapi.LevelBaseline, nil
}
func (f *fakeFleet) Isolation() workload.Isolation { return workload.Isolation{} }
func (f *fakeFleet) Listen(fleet.Listener)         {}

const tenantWS = logicalcluster.Name("tenant-ws")

func tenantTaskRun(t *testing.T, step v1.Step, annotations map[string]string) *unstructured.Unstructured {
	t.Helper()
	return tenantTaskRunOf(t, v1.TaskSpec{Steps: []v1.Step{step}}, annotations)
}

// tenantTaskRunOf is the TaskRun "build" of the tenant workspace, with an
// embedded spec.
func tenantTaskRunOf(t *testing.T, spec v1.TaskSpec, annotations map[string]string) *unstructured.Unstructured {
	t.Helper()
	tr := &v1.TaskRun{
		TypeMeta:   metav1.TypeMeta{APIVersion: "tekton.dev/v1", Kind: "TaskRun"},
		ObjectMeta: metav1.ObjectMeta{Name: "build", Namespace: "default", UID: "uid-1", Annotations: annotations},
		Spec:       v1.TaskRunSpec{TaskSpec: &spec},
	}
	if tr.Annotations == nil {
		tr.Annotations = map[string]string{}
	}
	tr.Annotations[logicalcluster.AnnotationKey] = tenantWS.String()
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(tr)
	if err != nil {
		t.Fatal(err)
	}
	return &unstructured.Unstructured{Object: obj}
}

// TestReconcileKey drives the TaskRun reconciler's whole reconcile of one
// key, as Tekton's taskrun_test.go does, with kcp's fake dynamic client
// for the tenant workspace and a fake fleet whose workload cluster is a
// fake clientset: what it writes to each.
func TestReconcileKey(t *testing.T) {
	script := v1.Step{Name: "build", Image: "busybox", Script: "echo hi"}
	privileged := script
	privileged.SecurityContext = &corev1.SecurityContext{Privileged: ptr.To(true)}
	for _, tc := range []struct {
		name        string
		step        v1.Step
		annotations map[string]string
		wantPods    int
		wantReason  string
		wantCluster string
	}{
		{name: "a new TaskRun gets its pod where the fleet places it", step: script,
			wantPods: 1, wantReason: "Running", wantCluster: "workload-1"},
		{name: "a forged placement on a cluster the policy does not open is placed anew", step: script,
			annotations: map[string]string{fleet.AnnotationCluster: "workload-2"},
			wantPods:    1, wantReason: "Running", wantCluster: "workload-1"},
		{name: "a privileged step fails the run, no pod is made", step: privileged,
			wantPods: 0, wantReason: "PodSecurityViolation", wantCluster: "workload-1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			c, tenants, workloads := newTestController(ctx, t, tenantTaskRun(t, tc.step, tc.annotations))

			if _, err := c.skeleton.Reconcile(ctx, kcpcache.ToClusterAwareKey(tenantWS.String(), "default", "build")); err != nil && tc.wantReason != "PodSecurityViolation" {
				t.Fatalf("reconcile: %v", err)
			}

			tr := tenantTaskRunNow(ctx, t, tenants)
			cond := tr.Status.GetCondition(apis.ConditionSucceeded)
			if cond == nil || cond.Reason != tc.wantReason {
				t.Errorf("the TaskRun's condition is %+v, want reason %s", cond, tc.wantReason)
			}
			if got := placement.Of(tr); got != tc.wantCluster {
				t.Errorf("the TaskRun is placed on %q, want %q", got, tc.wantCluster)
			}
			pods, err := workloads.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(pods.Items) != tc.wantPods {
				t.Fatalf("%d pods on the workload cluster, want %d", len(pods.Items), tc.wantPods)
			}
			for _, pod := range pods.Items {
				key, ok := workload.TenantKey(&pod)
				if want := kcpcache.ToClusterAwareKey(tenantWS.String(), "default", "build"); !ok || key != want {
					t.Errorf("pod %s/%s leads back to %q, want %q", pod.Namespace, pod.Name, key, want)
				}
				if tr.Status.PodName != pod.Name {
					t.Errorf("the TaskRun's status names pod %q, want %q", tr.Status.PodName, pod.Name)
				}
			}
		})
	}
}

// newTestController is the TaskRun controller on a fake tenant workspace
// holding objects and a fake fleet, its informers synced.
func newTestController(ctx context.Context, t *testing.T, objects ...runtime.Object) (*Controller, *kcpfakedynamic.FakeDynamicClusterClientset, kubernetes.Interface) {
	t.Helper()
	listKinds := map[schema.GroupVersionResource]string{
		TaskRunsResource: "TaskRunList", TasksResource: "TaskList", PipelineRunsResource: "PipelineRunList",
		ClaimsResource: "PersistentVolumeClaimList", tenantconfig.ConfigMapsResource: "ConfigMapList",
		corev1.SchemeGroupVersion.WithResource("secrets"):         "SecretList",
		corev1.SchemeGroupVersion.WithResource("serviceaccounts"): "ServiceAccountList",
	}
	tenants := kcpfakedynamic.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), listKinds, objects...)
	informers := kcpdynamicinformer.NewDynamicSharedInformerFactory(tenants, 0)
	fleetFake := newFakeFleet()
	log := zap.NewNop().Sugar()
	config := tenantconfig.New(tenants, workload.ManagedByValue, nil)
	tenantKube := kubefake.NewClientset()
	c, err := New(Options{
		Tenants: tenants, TenantInformers: informers, Fleet: fleetFake,
		Images: pipeline.Images{EntrypointImage: "entrypoint", SidecarLogResultsImage: "sidecarlogresults", NopImage: "nop",
			ShellImage: "busybox", ShellImageWin: "powershell", WorkingDirInitImage: "workingdirinit"},
		Resolver: images.NewResolver(images.Config{}),
		Config:   config,
		Events:   reconciler.NewEvents(ctx, log, func(logicalcluster.Name) (kubernetes.Interface, error) { return tenantKube, nil }),
		Log:      log,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := config.Start(ctx); err != nil {
		t.Fatal(err)
	}
	informers.Start(ctx.Done())
	for gvr, ok := range informers.WaitForCacheSync(ctx.Done()) {
		if !ok {
			t.Fatalf("tenant informer %s did not sync", gvr)
		}
	}
	fleetFake.member.Informers.Start(ctx.Done())
	for typ, ok := range fleetFake.member.Informers.WaitForCacheSync(ctx.Done()) {
		if !ok {
			t.Fatalf("workload informer %v did not sync", typ)
		}
	}
	return c, tenants, fleetFake.member.Client
}

// TestReconcileKeyFollowsThePod: the TaskRun is Succeeded once its pod
// on the workload cluster is, through Tekton's own status conversion.
func TestReconcileKeyFollowsThePod(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	step := v1.Step{Name: "build", Image: "busybox", Script: "echo hi"}
	c, tenants, workloads := newTestController(ctx, t, tenantTaskRun(t, step, nil))
	key := kcpcache.ToClusterAwareKey(tenantWS.String(), "default", "build")
	if _, err := c.skeleton.Reconcile(ctx, key); err != nil {
		t.Fatalf("first reconcile: %v", err)
	}
	pods, err := workloads.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil || len(pods.Items) != 1 {
		t.Fatalf("pods after the first reconcile: %v (%v), want one", len(pods.Items), err)
	}
	pod := pods.Items[0]
	finished := metav1.Now()
	pod.Status = corev1.PodStatus{Phase: corev1.PodSucceeded, ContainerStatuses: []corev1.ContainerStatus{{
		Name: "step-build", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			ExitCode: 0, Reason: "Completed", StartedAt: finished, FinishedAt: finished,
			Message: fmt.Sprintf(`[{"key":"StartedAt","value":%q,"type":3}]`, finished.Format(time.RFC3339Nano))}},
	}}}
	if _, err := workloads.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, &pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Both informers see what changed before the next reconcile, as the
	// pod's update is what enqueues it.
	waitFor(t, "the workload informer to see the pod succeeded", func() bool {
		p, err := c.fleet.Member("workload-1").Pods.Pods(pod.Namespace).Get(pod.Name)
		return err == nil && p.Status.Phase == corev1.PodSucceeded
	})
	waitFor(t, "the tenant informer to see the TaskRun's pod", func() bool {
		obj, err := c.taskRuns.Lister().ByCluster(tenantWS).ByNamespace("default").Get("build")
		if err != nil {
			return false
		}
		name, _, _ := unstructured.NestedString(obj.(*unstructured.Unstructured).Object, "status", "podName")
		return name == pod.Name
	})
	if _, err := c.skeleton.Reconcile(ctx, key); err != nil {
		t.Fatalf("second reconcile: %v", err)
	}
	tr := tenantTaskRunNow(ctx, t, tenants)
	if cond := tr.Status.GetCondition(apis.ConditionSucceeded); cond == nil || cond.Status != corev1.ConditionTrue || cond.Reason != "Succeeded" {
		t.Errorf("the TaskRun's condition is %+v, want True/Succeeded", cond)
	}
	if tr.Status.CompletionTime == nil || len(tr.Status.Steps) != 1 || tr.Status.Steps[0].Terminated == nil {
		t.Errorf("the TaskRun's status has completion %v and steps %+v, want both from the pod", tr.Status.CompletionTime, tr.Status.Steps)
	}
}

// tenantTaskRunNow is the TaskRun "build" as the tenant workspace holds
// it.
func tenantTaskRunNow(ctx context.Context, t *testing.T, tenants *kcpfakedynamic.FakeDynamicClusterClientset) *v1.TaskRun {
	t.Helper()
	got, err := tenants.Cluster(tenantWS.Path()).Resource(TaskRunsResource).Namespace("default").Get(ctx, "build", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var tr v1.TaskRun
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(got.Object, &tr); err != nil {
		t.Fatal(err)
	}
	return &tr
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if ok() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}
