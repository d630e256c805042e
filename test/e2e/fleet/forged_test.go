//go:build e2e

package fleet

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/pipelines-service/pipelines-service/pkg/fleet"
	"github.com/pipelines-service/pipelines-service/pkg/reconciler/placement"
	"github.com/pipelines-service/pipelines-service/pkg/workload"
	"github.com/pipelines-service/pipelines-service/test/e2e/framework"
)

// TestForgedPlacementIsNotTrusted: the annotation that records a run's
// workload cluster lives in the tenant's workspace, so the tenant can write
// it too. A hostile tenant whom its TenantPolicy pins to workload-1 writes
// workload-2 on a new TaskRun, a new PipelineRun and a new claim, and moves
// a running TaskRun's record to workload-2. Everything runs and lives on
// workload-1, nothing of the tenant appears on workload-2, and the moved
// TaskRun keeps its one pod.
func TestForgedPlacementIsNotTrusted(t *testing.T) {
	ctx := context.Background()
	tn := env.NewTenant(ctx, t, "e2e-forged-placement") // pinned to cluster1
	forged := func() map[string]string { return map[string]string{fleet.AnnotationCluster: cluster2} }

	createTaskRun(ctx, t, tn, sleepTaskRun("moved-under-it", 20))
	tn.WaitTaskRunRunning(ctx, t, ns, "moved-under-it", 3*time.Minute)
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, fleet.AnnotationCluster, cluster2)
	if _, err := tn.Tekton.TektonV1().TaskRuns(ns).Patch(ctx, "moved-under-it", types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}

	tr := sleepTaskRun("forged-taskrun", 1)
	tr.Annotations = forged()
	createTaskRun(ctx, t, tn, tr)
	pr := sleepPipelineRun("forged-pipelinerun", 2, 1)
	pr.Annotations = forged()
	createPipelineRun(ctx, t, tn, pr)
	claim := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "forged-claim", Annotations: forged()},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Mi")}},
		},
	}
	if _, err := tn.Kube.CoreV1().PersistentVolumeClaims(ns).Create(ctx, claim, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	for _, name := range []string{"forged-taskrun", "moved-under-it"} {
		tr := tn.WaitTaskRunDone(ctx, t, ns, name, 3*time.Minute)
		if status, reason := framework.Condition(tr); status != "True" || placement.Of(tr) != cluster1 {
			t.Errorf("TaskRun %s: %s/%s on %q, want True on %s", name, status, reason, placement.Of(tr), cluster1)
		}
	}
	done := tn.WaitPipelineRun(ctx, t, ns, pr.Name, 3*time.Minute, "done", framework.PipelineRunDone)
	if status, reason := framework.PipelineRunCondition(done); status != "True" || placement.Of(done) != cluster1 {
		t.Errorf("PipelineRun: %s/%s on %q, want True on %s", status, reason, placement.Of(done), cluster1)
	}
	checkChildrenOn(ctx, t, tn, done, cluster1)

	workloadNS := workload.Namespace(tn.Cluster, ns)
	framework.Eventually(t, time.Minute, "the forged claim on "+cluster1, func() (bool, string, error) {
		got, err := tn.Kube.CoreV1().PersistentVolumeClaims(ns).Get(ctx, claim.Name, metav1.GetOptions{})
		if err != nil {
			return false, "", err
		}
		_, err = env.ClusterClient(t, cluster1).CoreV1().PersistentVolumeClaims(workloadNS).Get(ctx, claim.Name, metav1.GetOptions{})
		return placement.Of(got) == cluster1 && err == nil, fmt.Sprintf("placed on %q; on %s: %v", placement.Of(got), cluster1, err), nil
	})

	pods, err := framework.TenantPods(ctx, env.ClusterClient(t, cluster2), tn)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods {
		t.Errorf("pod %s/%s of the pinned tenant on %s", p.Namespace, p.Name, cluster2)
	}
	if _, err := env.ClusterClient(t, cluster2).CoreV1().PersistentVolumeClaims(workloadNS).Get(ctx, claim.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the forged claim on %s: %v, want not found", cluster2, err)
	}
	pods, err = framework.TenantPods(ctx, env.ClusterClient(t, cluster1), tn)
	if err != nil {
		t.Fatal(err)
	}
	moved := 0
	for _, p := range pods {
		if p.Labels["tekton.dev/taskRun"] == "moved-under-it" {
			moved++
		}
	}
	if moved != 1 {
		t.Errorf("pods of the TaskRun whose record was moved: %d, want 1", moved)
	}
	t.Logf("forged placements on %s: every run and the claim on %s, %d pods of the tenant there", cluster2, cluster1, len(pods))
}
