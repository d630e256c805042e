//go:build e2e

package pipelinerun

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
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pipelines-service/pipelines-service/pkg/workload"
	"github.com/pipelines-service/pipelines-service/test/e2e/framework"
)

// TestVolumeClaimTemplateSharedThenDeleted: a volumeClaimTemplate gives the
// PipelineRun one PVC (a tenant PVC owned by the run, synced to the workload
// cluster and provisioned there); a file one task writes is read by the
// next, on the same node. Deleting the running PipelineRun removes its
// TaskRuns, pods, carried secrets and PVCs on both sides.
func TestVolumeClaimTemplateSharedThenDeleted(t *testing.T) {
	ctx := context.Background()
	tn := env.NewTenant(ctx, t, "e2e-pvc")
	if _, err := tn.Kube.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "token"}, StringData: map[string]string{"token": "s3cret"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	write := v1.EmbeddedTask{TaskSpec: v1.TaskSpec{
		Workspaces: []v1.WorkspaceDeclaration{{Name: "shared"}},
		Steps:      []v1.Step{{Name: "write", Image: "busybox", Script: "echo handed-over > $(workspaces.shared.path)/note"}},
	}}
	hold := v1.EmbeddedTask{TaskSpec: v1.TaskSpec{
		Workspaces: []v1.WorkspaceDeclaration{{Name: "shared"}, {Name: "creds"}},
		Steps: []v1.Step{
			{Name: "read", Image: "busybox", Script: `grep -q handed-over $(workspaces.shared.path)/note || exit 1
test -s $(workspaces.creds.path)/token || exit 1`},
			{Name: "hold", Image: "busybox", Script: "sleep 300"},
		},
	}}
	createPR(ctx, t, tn, &v1.PipelineRun{ObjectMeta: metav1.ObjectMeta{Name: "shared-volume"}, Spec: v1.PipelineRunSpec{
		Workspaces: []v1.WorkspaceBinding{
			{Name: "shared", VolumeClaimTemplate: &corev1.PersistentVolumeClaim{Spec: corev1.PersistentVolumeClaimSpec{
				AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("8Mi")}},
			}}},
			{Name: "creds", Secret: &corev1.SecretVolumeSource{SecretName: "token"}},
		},
		PipelineSpec: &v1.PipelineSpec{
			Workspaces: []v1.PipelineWorkspaceDeclaration{{Name: "shared"}, {Name: "creds"}},
			Tasks: []v1.PipelineTask{
				{Name: "write", TaskSpec: &write, Workspaces: []v1.WorkspacePipelineTaskBinding{{Name: "shared"}}},
				{Name: "hold", TaskSpec: &hold, RunAfter: []string{"write"}, Workspaces: []v1.WorkspacePipelineTaskBinding{{Name: "shared"}, {Name: "creds"}}},
			},
		},
	}})

	writeRun := tn.WaitTaskRunDone(ctx, t, ns, "shared-volume-write", 3*time.Minute)
	if !writeRun.IsSuccessful() {
		t.Fatalf("write task: %v", writeRun.Status.GetCondition("Succeeded"))
	}
	wns := workload.Namespace(logicalcluster.From(writeRun), ns)
	var holdPod *corev1.Pod
	framework.Eventually(t, 2*time.Minute, "hold task running after reading the note", func() (bool, string, error) {
		tr, err := tn.Tekton.TektonV1().TaskRuns(ns).Get(ctx, "shared-volume-hold", metav1.GetOptions{})
		if err != nil {
			return false, err.Error(), nil
		}
		if tr.IsDone() {
			return false, "", fmt.Errorf("the hold task ended (the read step failed?): %v", tr.Status.GetCondition("Succeeded"))
		}
		if len(tr.Status.Steps) != 2 || tr.Status.Steps[0].Terminated == nil || tr.Status.Steps[1].Running == nil {
			return false, fmt.Sprintf("steps %+v", tr.Status.Steps), nil
		}
		if code := tr.Status.Steps[0].Terminated.ExitCode; code != 0 {
			return false, "", fmt.Errorf("the read step exited %d", code)
		}
		pods := runningPods(ctx, t, tn, "shared-volume")
		if len(pods) != 1 {
			return false, fmt.Sprintf("%d running", len(pods)), nil
		}
		holdPod = pods[0]
		return true, "", nil
	})
	writePod, err := env.Workload.CoreV1().Pods(wns).Get(ctx, writeRun.Status.PodName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if writePod.Spec.NodeName != holdPod.Spec.NodeName {
		t.Errorf("tasks sharing a PVC ran on nodes %s and %s", writePod.Spec.NodeName, holdPod.Spec.NodeName)
	}

	claims, err := tn.Kube.CoreV1().PersistentVolumeClaims(ns).List(ctx, metav1.ListOptions{})
	if err != nil || len(claims.Items) != 1 {
		t.Fatalf("tenant PVCs: %v, %v; want the one made from the template", claims, err)
	}
	claim := claims.Items[0]
	if owners := claim.OwnerReferences; len(owners) != 1 || owners[0].Kind != "PipelineRun" {
		t.Errorf("tenant PVC %s owners %v, want the PipelineRun", claim.Name, owners)
	}
	framework.Eventually(t, 30*time.Second, "tenant PVC reports Bound", func() (bool, string, error) {
		c, err := tn.Kube.CoreV1().PersistentVolumeClaims(ns).Get(ctx, claim.Name, metav1.GetOptions{})
		if err != nil {
			return false, "", err
		}
		return c.Status.Phase == corev1.ClaimBound, string(c.Status.Phase), nil
	})
	workloadClaim, err := env.Workload.CoreV1().PersistentVolumeClaims(wns).Get(ctx, claim.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("workload PVC: %v", err)
	}
	volume := workloadClaim.Spec.VolumeName

	if err := tn.Tekton.TektonV1().PipelineRuns(ns).Delete(ctx, "shared-volume", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, 2*time.Minute, "TaskRuns, pods, carried secrets and PVCs gone", func() (bool, string, error) {
		var left []string
		trs, err := tn.Tekton.TektonV1().TaskRuns(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, "", err
		}
		for _, tr := range trs.Items {
			left = append(left, "taskrun/"+tr.Name)
		}
		pods, _ := env.Workload.CoreV1().Pods(wns).List(ctx, metav1.ListOptions{})
		for _, p := range pods.Items {
			left = append(left, "pod/"+p.Name)
		}
		secrets, _ := env.Workload.CoreV1().Secrets(wns).List(ctx, metav1.ListOptions{LabelSelector: workload.LabelManagedBy + "=" + workload.ManagedByValue})
		for _, s := range secrets.Items {
			left = append(left, "secret/"+s.Name)
		}
		if _, err := env.Workload.CoreV1().PersistentVolumeClaims(wns).Get(ctx, claim.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			left = append(left, "workload pvc/"+claim.Name)
		}
		if _, err := tn.Kube.CoreV1().PersistentVolumeClaims(ns).Get(ctx, claim.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			left = append(left, "tenant pvc/"+claim.Name)
		}
		if _, err := env.Workload.CoreV1().PersistentVolumes().Get(ctx, volume, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			left = append(left, "pv/"+volume)
		}
		return len(left) == 0, fmt.Sprint(left), nil
	})
}

// TestTenantPersistentVolumeClaimKeepsDataAcrossRuns: a PVC the tenant
// creates in its workspace is bound on the workload cluster, keeps what
// one TaskRun wrote for the next, and goes from both sides when deleted.
func TestTenantPersistentVolumeClaimKeepsDataAcrossRuns(t *testing.T) {
	ctx := context.Background()
	tn := env.NewTenant(ctx, t, "e2e-tenantpvc")
	if _, err := tn.Kube.CoreV1().PersistentVolumeClaims(ns).Create(ctx, &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "cache"},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("4Mi")}},
		},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	run := func(name, script string) *v1.TaskRun {
		tr := &v1.TaskRun{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1.TaskRunSpec{
			Workspaces: []v1.WorkspaceBinding{{Name: "cache", PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "cache"}}},
			TaskSpec: &v1.TaskSpec{
				Workspaces: []v1.WorkspaceDeclaration{{Name: "cache"}},
				Steps:      []v1.Step{{Name: "s", Image: "busybox", Script: script}},
			},
		}}
		if _, err := tn.Tekton.TektonV1().TaskRuns(ns).Create(ctx, tr, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		return tn.WaitTaskRunDone(ctx, t, ns, name, 3*time.Minute)
	}
	if tr := run("fill", "echo warm > $(workspaces.cache.path)/state"); !tr.IsSuccessful() {
		t.Fatalf("fill: %v", tr.Status.GetCondition("Succeeded"))
	}
	if tr := run("use", "grep -q warm $(workspaces.cache.path)/state"); !tr.IsSuccessful() {
		t.Fatalf("use: the second run did not find what the first wrote: %v", tr.Status.GetCondition("Succeeded"))
	}
	// The tenant PVC's status is copied from the workload PVC's, a moment
	// later.
	var claim *corev1.PersistentVolumeClaim
	framework.Eventually(t, 30*time.Second, "tenant PVC cache Bound", func() (bool, string, error) {
		var err error
		claim, err = tn.Kube.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "cache", metav1.GetOptions{})
		if err != nil {
			return false, err.Error(), nil
		}
		return claim.Status.Phase == corev1.ClaimBound, string(claim.Status.Phase), nil
	})
	for _, name := range []string{"fill", "use"} {
		if err := tn.Tekton.TektonV1().TaskRuns(ns).Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := tn.Kube.CoreV1().PersistentVolumeClaims(ns).Delete(ctx, "cache", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	wns := workload.Namespace(logicalcluster.From(claim), ns)
	framework.Eventually(t, 2*time.Minute, "PVC gone on both sides", func() (bool, string, error) {
		_, werr := env.Workload.CoreV1().PersistentVolumeClaims(wns).Get(ctx, "cache", metav1.GetOptions{})
		_, terr := tn.Kube.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "cache", metav1.GetOptions{})
		return apierrors.IsNotFound(werr) && apierrors.IsNotFound(terr), fmt.Sprintf("workload: %v, tenant: %v", werr, terr), nil
	})
}

// TestClaimRefusedByWorkloadCluster: a tenant PVC the workload cluster's
// apiserver refuses (no access modes) says why in a WorkloadSynced=False
// condition, and nothing of it is made on the workload cluster.
func TestClaimRefusedByWorkloadCluster(t *testing.T) {
	ctx := context.Background()
	tn := env.NewTenant(ctx, t, "e2e-pvc-refused")
	claim := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "no-access-modes"},
		Spec: corev1.PersistentVolumeClaimSpec{
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Mi")}},
		},
	}
	created, err := tn.Kube.CoreV1().PersistentVolumeClaims(ns).Create(ctx, claim, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("the tenant's workspace refused the PVC: %v", err)
	}
	framework.Eventually(t, time.Minute, "WorkloadSynced=False on the tenant PVC", func() (bool, string, error) {
		got, err := tn.Kube.CoreV1().PersistentVolumeClaims(ns).Get(ctx, claim.Name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error(), nil
		}
		for _, c := range got.Status.Conditions {
			if c.Type == "WorkloadSynced" {
				ok := c.Status == corev1.ConditionFalse && c.Reason == "Invalid" && strings.Contains(c.Message, "accessModes")
				return ok, fmt.Sprintf("%s %s: %s", c.Status, c.Reason, c.Message), nil
			}
		}
		return false, fmt.Sprintf("conditions %v", got.Status.Conditions), nil
	})
	wns := workload.Namespace(logicalcluster.From(created), ns)
	if _, err := env.Workload.CoreV1().PersistentVolumeClaims(wns).Get(ctx, claim.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("workload PVC of a refused claim: %v, want NotFound", err)
	}
}
