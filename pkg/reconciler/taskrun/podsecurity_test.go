package taskrun

import (
	"context"
	"strings"
	"testing"

	"github.com/tektoncd/pipeline/pkg/apis/config"
	"github.com/tektoncd/pipeline/pkg/apis/pipeline"
	"github.com/tektoncd/pipeline/pkg/apis/pipeline/pod"
	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	podconvert "github.com/tektoncd/pipeline/pkg/pod"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	fakekube "k8s.io/client-go/kubernetes/fake"
	psaapi "k8s.io/pod-security-admission/api"
	"k8s.io/utils/ptr"

	"github.com/pipelines-service/pipelines-service/pkg/podsecurity"
	"github.com/pipelines-service/pipelines-service/pkg/tenantconfig"
)

// TestTektonsOwnContainersPassTheLevel builds pods with Tekton's pod
// builder (init containers for scripts and the working dir, the
// sidecar-logs results container) and checks that only what the tenant
// wrote can break a level.
func TestTektonsOwnContainersPassTheLevel(t *testing.T) {
	checker, err := podsecurity.NewChecker()
	if err != nil {
		t.Fatal(err)
	}
	restrictedStep := &corev1.SecurityContext{
		AllowPrivilegeEscalation: ptr.To(false),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
	}
	nonRootPod := &corev1.PodSecurityContext{
		RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To(int64(65532)),
		SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
	for _, tc := range []struct {
		name    string
		level   psaapi.Level
		step    *corev1.SecurityContext
		podSC   *corev1.PodSecurityContext
		allowed bool
	}{
		{name: "baseline, a plain step", level: psaapi.LevelBaseline, allowed: true},
		{name: "restricted, a step written for it", level: psaapi.LevelRestricted, step: restrictedStep, podSC: nonRootPod, allowed: true},
		{name: "restricted, a plain step", level: psaapi.LevelRestricted, allowed: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tenantconfig.Platform("pipelines-service")
			cfg.FeatureFlags.ResultExtractionMethod = config.ResultExtractionMethodSidecarLogs
			ctx := withTektonSecurityContext(config.ToContext(context.Background(), cfg), tc.level)
			tr := &v1.TaskRun{ObjectMeta: metav1.ObjectMeta{Name: "build", Namespace: "ps-x-default", UID: "u"}}
			if tc.podSC != nil {
				tr.Spec.PodTemplate = &pod.Template{SecurityContext: tc.podSC}
			}
			spec := v1.TaskSpec{
				Results: []v1.TaskResult{{Name: "digest"}},
				Steps: []v1.Step{{
					Name: "build", Image: "busybox", Script: "#!/bin/sh\necho hi", WorkingDir: "/workspace/src",
					SecurityContext: tc.step,
				}},
			}
			builder := podconvert.Builder{Images: pipeline.Images{
				EntrypointImage: "entrypoint", SidecarLogResultsImage: "sidecarlogresults", NopImage: "nop",
				ShellImage: "busybox", ShellImageWin: "powershell", WorkingDirInitImage: "workingdirinit",
			}, KubeClient: fakekube.NewSimpleClientset()}
			built, err := builder.Build(ctx, tr, spec)
			if err != nil {
				t.Fatal(err)
			}
			if len(built.Spec.InitContainers) == 0 {
				t.Fatal("Tekton built no init containers: the test covers nothing of Tekton's own")
			}
			err = checker.Check(tc.level, &built.ObjectMeta, &built.Spec)
			if tc.allowed && err != nil {
				t.Errorf("refused: %v", err)
			}
			if !tc.allowed && err == nil {
				t.Error("allowed")
			}
		})
	}
}

// TestUserNamespaces: every level but privileged gets a user namespace
// where the nodes support one; a pod asking for a raw block device there
// fails its run with the container named, and is not changed.
func TestUserNamespaces(t *testing.T) {
	for _, tc := range []struct {
		name      string
		level     psaapi.Level
		supported bool
		devices   bool
		wantUserN bool
		wantFail  bool
	}{
		{name: "baseline, nodes support it", level: psaapi.LevelBaseline, supported: true, wantUserN: true},
		{name: "restricted, nodes support it", level: psaapi.LevelRestricted, supported: true, wantUserN: true},
		{name: "privileged keeps the node's users", level: psaapi.LevelPrivileged, supported: true},
		{name: "nodes without support", level: psaapi.LevelBaseline},
		{name: "raw block device refused", level: psaapi.LevelBaseline, supported: true, devices: true, wantFail: true},
		{name: "raw block device where nodes have no support", level: psaapi.LevelBaseline, devices: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := &v1.TaskRun{ObjectMeta: metav1.ObjectMeta{Name: "build", Namespace: "default"}}
			p := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "step-build"}}}}
			if tc.devices {
				p.Spec.Containers[0].VolumeDevices = []corev1.VolumeDevice{{Name: "disk", DevicePath: "/dev/xvda"}}
			}
			ok := true
			if userNamespaces(tc.level, tc.supported) {
				ok = inUserNamespace(tr, p)
			}
			if ok == tc.wantFail {
				t.Fatalf("inUserNamespace = %v, want failure %v", ok, tc.wantFail)
			}
			if tc.wantFail {
				c := tr.Status.GetCondition("Succeeded")
				if c == nil || c.Reason != ReasonUserNamespace || !strings.Contains(c.Message, `container "step-build": volumeDevices`) {
					t.Fatalf("condition %+v, want %s naming the container", c, ReasonUserNamespace)
				}
				if p.Spec.HostUsers != nil {
					t.Fatal("a refused pod was changed")
				}
				return
			}
			got := p.Spec.HostUsers != nil && !*p.Spec.HostUsers
			if got != tc.wantUserN {
				t.Fatalf("hostUsers false = %v, want %v", got, tc.wantUserN)
			}
		})
	}
}
