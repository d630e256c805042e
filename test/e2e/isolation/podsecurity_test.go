//go:build e2e

package isolation

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tektoncd/pipeline/pkg/apis/pipeline/pod"
	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/utils/ptr"

	fleetv1alpha1 "github.com/pipelines-service/pipelines-service/apis/fleet/v1alpha1"
	"github.com/pipelines-service/pipelines-service/pkg/podsecurity"
	"github.com/pipelines-service/pipelines-service/pkg/workload"
	"github.com/pipelines-service/pipelines-service/test/e2e/framework"
)

const ns = "default"

var clusters = []string{"workload-1", "workload-2"}

// pinned is a policy that keeps the tenant's runs on the first workload
// cluster, at a Pod Security level.
func pinned(level string) fleetv1alpha1.TenantPolicySpec {
	return fleetv1alpha1.TenantPolicySpec{
		ClusterSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"region": framework.PinnedRegion}},
		PodSecurity:     level,
	}
}

func step(name, script string, sc *corev1.SecurityContext) v1.Step {
	return v1.Step{Name: name, Image: "docker.io/library/busybox:1.36", Script: "#!/bin/sh\n" + script, SecurityContext: sc}
}

func run(name string, spec v1.TaskSpec, template *pod.Template) *v1.TaskRun {
	return &v1.TaskRun{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1.TaskRunSpec{TaskSpec: &spec, PodTemplate: template}}
}

func create(ctx context.Context, t *testing.T, tn *framework.Tenant, tr *v1.TaskRun) {
	t.Helper()
	if _, err := tn.Tekton.TektonV1().TaskRuns(ns).Create(ctx, tr, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create TaskRun %s: %v", tr.Name, err)
	}
}

// hostile are TaskRuns that would reach the node, with what the failure
// must name.
func hostile() []struct {
	tr   *v1.TaskRun
	want []string
} {
	hostRoot := []corev1.Volume{{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/"}}}}
	mountHost := step("look", "ls /host", nil)
	mountHost.VolumeMounts = []corev1.VolumeMount{{Name: "host", MountPath: "/host"}}
	return []struct {
		tr   *v1.TaskRun
		want []string
	}{
		{run("privileged", v1.TaskSpec{Steps: []v1.Step{step("root", "id", &corev1.SecurityContext{Privileged: ptr.To(true)})}}, nil),
			[]string{`container "step-root" must not set securityContext.privileged=true`}},
		{run("hostpath-template", v1.TaskSpec{Steps: []v1.Step{mountHost}}, &pod.Template{Volumes: hostRoot}),
			[]string{`hostPath volumes (volume "host")`}},
		{run("hostpath-task", v1.TaskSpec{Steps: []v1.Step{mountHost}, Volumes: hostRoot}, nil),
			[]string{`hostPath volumes (volume "host")`}},
		{run("hostnetwork", v1.TaskSpec{Steps: []v1.Step{step("net", "ip addr", nil)}}, &pod.Template{HostNetwork: true}),
			[]string{"host namespaces (hostNetwork=true)"}},
		{run("capabilities", v1.TaskSpec{Steps: []v1.Step{step("mount", "mount -t tmpfs x /mnt", &corev1.SecurityContext{
			Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"SYS_ADMIN", "NET_ADMIN"}}})}}, nil),
			[]string{`container "step-mount" must not include "NET_ADMIN", "SYS_ADMIN" in securityContext.capabilities.add`}},
		{run("privileged-sidecar", v1.TaskSpec{
			Steps:    []v1.Step{step("work", "true", nil)},
			Sidecars: []v1.Sidecar{{Name: "dind", Image: "docker.io/library/busybox:1.36", Script: "#!/bin/sh\nsleep 60", SecurityContext: &corev1.SecurityContext{Privileged: ptr.To(true)}}},
		}, nil), []string{`container "sidecar-dind" must not set securityContext.privileged=true`}},
	}
}

// TestHostileTaskRunsFailWithPodSecurityViolation: on the default level
// (baseline) each way to the node fails the TaskRun at once, naming the
// field, and no pod of the tenant appears on any workload cluster.
func TestHostileTaskRunsFailWithPodSecurityViolation(t *testing.T) {
	ctx := context.Background()
	tn := env.NewFleetTenant(ctx, t, "e2e-hostile", pinned(""))
	cases := hostile()
	for _, tc := range cases {
		create(ctx, t, tn, tc.tr)
	}
	for _, tc := range cases {
		tr := tn.WaitTaskRunDone(ctx, t, ns, tc.tr.Name, 2*time.Minute)
		status, reason := framework.Condition(tr)
		msg := tr.Status.GetCondition("Succeeded").GetMessage()
		if status != "False" || reason != podsecurity.ReasonPodSecurityViolation {
			t.Errorf("%s ended %s/%s (%s), want False/%s", tr.Name, status, reason, msg, podsecurity.ReasonPodSecurityViolation)
		}
		for _, w := range tc.want {
			if !strings.Contains(msg, w) {
				t.Errorf("%s: %q does not name %q", tr.Name, msg, w)
			}
		}
		if tr.Status.PodName != "" {
			t.Errorf("%s has a pod, %s", tr.Name, tr.Status.PodName)
		}
		t.Logf("%s: %s/%s %.0fs after creation: %s", tr.Name, status, reason, tr.Status.CompletionTime.Sub(tr.CreationTimestamp.Time).Seconds(), msg)
	}
	for _, cluster := range clusters {
		pods, err := framework.TenantPods(ctx, env.ClusterClient(t, cluster), tn)
		if err != nil {
			t.Fatal(err)
		}
		if len(pods) != 0 {
			t.Errorf("%d pods of the hostile tenant on %s", len(pods), cluster)
		}
	}
}

// TestHostNamespacesAreNotInTheAPI: Tekton's pod template has no hostPID
// or hostIPC; the exported schema has neither, so a tenant who writes them
// gets a 4xx naming the field from strict validation (kubectl's default),
// and nothing is created.
func TestHostNamespacesAreNotInTheAPI(t *testing.T) {
	ctx := context.Background()
	tn := env.NewFleetTenant(ctx, t, "e2e-hostns", pinned(""))
	client, err := dynamic.NewForConfig(tn.Rest)
	if err != nil {
		t.Fatal(err)
	}
	taskRuns := client.Resource(schema.GroupVersionResource{Group: "tekton.dev", Version: "v1", Resource: "taskruns"}).Namespace(ns)
	for _, field := range []string{"hostPID", "hostIPC"} {
		obj := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "tekton.dev/v1", "kind": "TaskRun",
			"metadata": map[string]any{"name": strings.ToLower(field)},
			"spec": map[string]any{
				"podTemplate": map[string]any{field: true},
				"taskSpec":    map[string]any{"steps": []any{map[string]any{"name": "ps", "image": "busybox", "script": "ps"}}},
			},
		}}
		_, err := taskRuns.Create(ctx, obj, metav1.CreateOptions{FieldValidation: metav1.FieldValidationStrict})
		if !apierrors.IsBadRequest(err) && !apierrors.IsInvalid(err) || !strings.Contains(fmt.Sprint(err), "spec.podTemplate."+field) {
			t.Errorf("creating a TaskRun with podTemplate.%s: %v; want a 4xx naming the field", field, err)
		}
		t.Logf("podTemplate.%s: %v", field, err)
	}
	list, err := tn.Tekton.TektonV1().TaskRuns(ns).List(ctx, metav1.ListOptions{})
	if err != nil || len(list.Items) != 0 {
		t.Errorf("%v TaskRuns, %v: want none", len(list.Items), err)
	}
}

// TestPodSecurityLevelIsThePlatformsPerTenant: a tenant whose TenantPolicy
// says privileged runs a privileged step, one on the default level cannot;
// the workload namespace enforces the level (the apiserver refuses what
// the controller would), relabelling it is undone, and a change of the
// level applies to runs that start after it.
func TestPodSecurityLevelIsThePlatformsPerTenant(t *testing.T) {
	ctx := context.Background()
	trusted := env.NewFleetTenant(ctx, t, "e2e-trusted", pinned("privileged"))
	plain := env.NewFleetTenant(ctx, t, "e2e-plain", pinned(""))
	privileged := func(name string) *v1.TaskRun {
		return run(name, v1.TaskSpec{Steps: []v1.Step{step("root", "grep CapEff /proc/self/status", &corev1.SecurityContext{Privileged: ptr.To(true)})}}, nil)
	}
	runEnds(ctx, t, trusted, privileged("allowed"), "True", "Succeeded")
	runEnds(ctx, t, plain, privileged("refused"), "False", podsecurity.ReasonPodSecurityViolation)
	runEnds(ctx, t, plain, harmless("harmless"), "True", "Succeeded")
	checkNamespaceLevel(ctx, t, trusted, "privileged")
	checkNamespaceLevel(ctx, t, plain, "baseline")

	// The workload apiserver is the backstop: it refuses a privileged pod
	// in the default tenant's namespace, whoever creates it.
	wns := workload.Namespace(plain.Cluster, ns)
	backdoor := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "backdoor"}, Spec: corev1.PodSpec{Containers: []corev1.Container{{
		Name: "c", Image: "docker.io/library/busybox:1.36", SecurityContext: &corev1.SecurityContext{Privileged: ptr.To(true)},
	}}}}
	if _, err := env.Workload.CoreV1().Pods(wns).Create(ctx, backdoor, metav1.CreateOptions{}); !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "violates PodSecurity") {
		t.Errorf("a privileged pod created directly in %s: %v; want Forbidden by PodSecurity", wns, err)
	}

	// Relabelling the namespace is undone.
	relabel := []byte(`{"metadata":{"labels":{"pod-security.kubernetes.io/enforce":"privileged"}}}`)
	if _, err := env.Workload.CoreV1().Namespaces().Patch(ctx, wns, "application/merge-patch+json", relabel, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	checkNamespaceLevel(ctx, t, plain, "baseline")

	// Lowering the trusted tenant's level applies to its next run.
	if err := env.Stack.SetTenantPolicy(ctx, trusted.Cluster.String(), pinned("baseline")); err != nil {
		t.Fatal(err)
	}
	framework.WaitPolicyInForce(t, trusted.Cluster.String(), pinned("baseline"))
	runEnds(ctx, t, trusted, privileged("after-lowering"), "False", podsecurity.ReasonPodSecurityViolation)
	runEnds(ctx, t, trusted, harmless("plain-after-lowering"), "True", "Succeeded")
	checkNamespaceLevel(ctx, t, trusted, "baseline")
}

// TestRestrictedLevel: on restricted, a step that may run as root fails,
// naming what restricted asks for; a run written for it (non-root, no
// escalation, no capabilities, the runtime's seccomp profile) succeeds,
// Tekton's own containers included.
func TestRestrictedLevel(t *testing.T) {
	ctx := context.Background()
	tn := env.NewFleetTenant(ctx, t, "e2e-restricted", pinned("restricted"))
	create(ctx, t, tn, run("as-root", v1.TaskSpec{Steps: []v1.Step{step("root", "id", nil)}}, nil))
	locked := &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(false), Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}}
	nonRoot := &pod.Template{SecurityContext: &corev1.PodSecurityContext{
		RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To(int64(65532)),
		SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}}
	create(ctx, t, tn, run("written-for-it", v1.TaskSpec{
		Results: []v1.TaskResult{{Name: "uid"}},
		Steps:   []v1.Step{step("whoami", "id -u | tr -d '\\n' > $(results.uid.path)", locked)},
	}, nonRoot))
	tr := tn.WaitTaskRunDone(ctx, t, ns, "as-root", 2*time.Minute)
	msg := tr.Status.GetCondition("Succeeded").GetMessage()
	if _, reason := framework.Condition(tr); reason != podsecurity.ReasonPodSecurityViolation || !strings.Contains(msg, "runAsNonRoot") || !strings.Contains(msg, "allowPrivilegeEscalation") {
		t.Errorf("a root step on restricted ended %s: %s; want %s naming runAsNonRoot and allowPrivilegeEscalation", reason, msg, podsecurity.ReasonPodSecurityViolation)
	}
	tr = tn.WaitTaskRunDone(ctx, t, ns, "written-for-it", 3*time.Minute)
	if status, reason := framework.Condition(tr); status != "True" {
		t.Fatalf("a run written for restricted ended %s/%s: %s", status, reason, tr.Status.GetCondition("Succeeded").GetMessage())
	}
	if len(tr.Status.Results) != 1 || tr.Status.Results[0].Value.StringVal != "65532" {
		t.Errorf("results %+v, want uid 65532", tr.Status.Results)
	}
	checkNamespaceLevel(ctx, t, tn, "restricted")
}

func harmless(name string) *v1.TaskRun {
	return run(name, v1.TaskSpec{Steps: []v1.Step{step("echo", "echo ok", nil)}}, nil)
}

// runEnds creates tr and checks it ends with status and reason.
func runEnds(ctx context.Context, t *testing.T, tn *framework.Tenant, tr *v1.TaskRun, status, reason string) {
	t.Helper()
	create(ctx, t, tn, tr)
	done := tn.WaitTaskRunDone(ctx, t, ns, tr.Name, 3*time.Minute)
	if gotStatus, gotReason := framework.Condition(done); gotStatus != status || gotReason != reason {
		t.Errorf("%s in %s ended %s/%s (%s), want %s/%s", tr.Name, tn.Name, gotStatus, gotReason, done.Status.GetCondition("Succeeded").GetMessage(), status, reason)
	}
}

// checkNamespaceLevel waits until the tenant's workload namespace enforces
// level (warn and audit at restricted).
func checkNamespaceLevel(ctx context.Context, t *testing.T, tn *framework.Tenant, level string) {
	t.Helper()
	name := workload.Namespace(tn.Cluster, ns)
	framework.Eventually(t, 30*time.Second, "namespace "+name+" enforces "+level, func() (bool, string, error) {
		got, err := env.Workload.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error(), nil
		}
		l := got.Labels
		return l["pod-security.kubernetes.io/enforce"] == level && l["pod-security.kubernetes.io/warn"] == "restricted" && l["pod-security.kubernetes.io/audit"] == "restricted",
			fmt.Sprint(l), nil
	})
}
