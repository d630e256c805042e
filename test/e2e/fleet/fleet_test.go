//go:build e2e

package fleet

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kcp-dev/logicalcluster/v3"
	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	fleetv1alpha1 "github.com/pipelines-service/pipelines-service/apis/fleet/v1alpha1"
	"github.com/pipelines-service/pipelines-service/pkg/fleet"
	"github.com/pipelines-service/pipelines-service/pkg/reconciler/placement"
	"github.com/pipelines-service/pipelines-service/pkg/reconciler/taskrun"
	"github.com/pipelines-service/pipelines-service/pkg/workload"
	"github.com/pipelines-service/pipelines-service/test/e2e/framework"
)

const (
	ns       = "default"
	cluster1 = "workload-1"
	cluster2 = "workload-2"
)

// sleepPipelineRun is a PipelineRun of tasks that each sleep.
func sleepPipelineRun(name string, tasks int, seconds int) *v1.PipelineRun {
	spec := &v1.PipelineSpec{}
	for i := 0; i < tasks; i++ {
		spec.Tasks = append(spec.Tasks, v1.PipelineTask{
			Name: fmt.Sprintf("t%d", i),
			TaskSpec: &v1.EmbeddedTask{TaskSpec: v1.TaskSpec{Steps: []v1.Step{{
				Name: "sleep", Image: "docker.io/library/busybox:1.36",
				Script: fmt.Sprintf("#!/bin/sh\nsleep %d\necho done", seconds),
			}}}},
		})
	}
	return &v1.PipelineRun{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1.PipelineRunSpec{PipelineSpec: spec}}
}

func createTaskRun(ctx context.Context, t *testing.T, tn *framework.Tenant, tr *v1.TaskRun) {
	t.Helper()
	if _, err := tn.Tekton.TektonV1().TaskRuns(ns).Create(ctx, tr, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create TaskRun %s in %s: %v", tr.Name, tn.Name, err)
	}
}

// startHolders creates n holders, holder-<i>: TaskRuns that sleep until
// cancelled, to take slots before the runs that must wait exist; it
// returns once they all run.
func startHolders(ctx context.Context, t *testing.T, tn *framework.Tenant, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		createTaskRun(ctx, t, tn, sleepTaskRun(fmt.Sprintf("holder-%d", i), 3600))
	}
	for i := 0; i < n; i++ {
		tn.WaitTaskRunRunning(ctx, t, ns, fmt.Sprintf("holder-%d", i), 3*time.Minute)
	}
}

// checkQueued checks that the tenant's TaskRuns burst-<from>…burst-<to-1>
// still wait in the admission: Unknown/Queued, with no pod.
func checkQueued(ctx context.Context, t *testing.T, tn *framework.Tenant, from, to int, when string) {
	t.Helper()
	for i := from; i < to; i++ {
		tr, err := tn.Tekton.TektonV1().TaskRuns(ns).Get(ctx, fmt.Sprintf("burst-%d", i), metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if status, reason := framework.Condition(tr); status != "Unknown" || reason != taskrun.ReasonQueued || tr.Status.PodName != "" {
			t.Errorf("%s: %s was %s/%s with pod %q; want Unknown/%s and no pod", when, tr.Name, status, reason, tr.Status.PodName, taskrun.ReasonQueued)
		}
	}
}

func sleepTaskRun(name string, seconds int) *v1.TaskRun {
	return &v1.TaskRun{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1.TaskRunSpec{TaskSpec: &v1.TaskSpec{Steps: []v1.Step{{
		Name: "sleep", Image: "docker.io/library/busybox:1.36",
		Script: fmt.Sprintf("#!/bin/sh\nsleep %d\necho done", seconds),
	}}}}}
}

func createPipelineRun(ctx context.Context, t *testing.T, tn *framework.Tenant, pr *v1.PipelineRun) {
	t.Helper()
	if _, err := tn.Tekton.TektonV1().PipelineRuns(ns).Create(ctx, pr, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create PipelineRun %s in %s: %v", pr.Name, tn.Name, err)
	}
}

// TestSpreadAcrossClusters: 20 PipelineRuns of 2 tenants spread over both
// workload clusters and all succeed; each PipelineRun's TaskRuns and pods
// are on its cluster.
func TestSpreadAcrossClusters(t *testing.T) {
	ctx := context.Background()
	// The status is current: a controller that just (re)started writes
	// it with its first heartbeats. A workload apiserver that setup has
	// just started again (after an interrupted run stopped it) sees its
	// node Ready only with the kubelet's next status report, as in
	// TestFailover.
	for name, nodes := range map[string]int{cluster1: 2, cluster2: 1} {
		framework.Eventually(t, 3*time.Minute, "WorkloadCluster "+name+" ready and current", func() (bool, string, error) {
			wc := env.WorkloadCluster(ctx, t, name)
			c := condition(wc, fleetv1alpha1.ConditionReady)
			ok := c.Status == metav1.ConditionTrue && wc.Status.ReadyNodes == nodes && wc.Status.LastHeartbeatTime != nil &&
				time.Since(wc.Status.LastHeartbeatTime.Time) < time.Minute
			return ok, fmt.Sprintf("Ready %s %s, %d ready nodes (want %d), heartbeat %v", c.Status, c.Reason, wc.Status.ReadyNodes, nodes, wc.Status.LastHeartbeatTime), nil
		})
	}
	tenants := []*framework.Tenant{
		env.NewFleetTenant(ctx, t, "e2e-spread-a", fleetv1alpha1.TenantPolicySpec{}),
		env.NewFleetTenant(ctx, t, "e2e-spread-b", fleetv1alpha1.TenantPolicySpec{}),
	}
	for _, tn := range tenants {
		for i := 0; i < 10; i++ {
			createPipelineRun(ctx, t, tn, sleepPipelineRun(fmt.Sprintf("spread-%d", i), 2, 1))
		}
	}
	perCluster := map[string]int{}
	for _, tn := range tenants {
		for i := 0; i < 10; i++ {
			name := fmt.Sprintf("spread-%d", i)
			pr := tn.WaitPipelineRun(ctx, t, ns, name, 5*time.Minute, "done", framework.PipelineRunDone)
			if status, reason := framework.PipelineRunCondition(pr); status != "True" {
				t.Errorf("%s/%s ended %s/%s", tn.Name, name, status, reason)
			}
			where := placement.Of(pr)
			perCluster[where]++
			checkChildrenOn(ctx, t, tn, pr, where)
		}
	}
	t.Logf("PipelineRuns per workload cluster: %v", perCluster)
	if perCluster[cluster1] == 0 || perCluster[cluster2] == 0 || perCluster[cluster1]+perCluster[cluster2] != 20 {
		t.Errorf("PipelineRuns per workload cluster %v: want all 20 spread over %s and %s", perCluster, cluster1, cluster2)
	}
}

// checkChildrenOn checks that the PipelineRun's TaskRuns are placed on
// its cluster and their pods are there.
func checkChildrenOn(ctx context.Context, t *testing.T, tn *framework.Tenant, pr *v1.PipelineRun, where string) {
	t.Helper()
	client := env.ClusterClient(t, where)
	for _, ref := range pr.Status.ChildReferences {
		tr, err := tn.Tekton.TektonV1().TaskRuns(ns).Get(ctx, ref.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := placement.Of(tr); got != where {
			t.Errorf("TaskRun %s of %s is on %q, its PipelineRun on %q", tr.Name, pr.Name, got, where)
		}
		pods, err := framework.TenantPods(ctx, client, tn)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, p := range pods {
			found = found || p.Name == tr.Status.PodName
		}
		if !found {
			t.Errorf("pod %s of TaskRun %s is not on %s", tr.Status.PodName, tr.Name, where)
		}
	}
}

// TestFairSharing: a tenant with a limit of 2 that submits 10 TaskRuns
// never has more than 2 running, and another tenant's TaskRuns start
// without waiting behind them.
func TestFairSharing(t *testing.T) {
	ctx := context.Background()
	limited := env.NewFleetTenant(ctx, t, "e2e-fair-limited", fleetv1alpha1.TenantPolicySpec{MaxRunningTaskRuns: 2})
	other := env.NewFleetTenant(ctx, t, "e2e-fair-other", fleetv1alpha1.TenantPolicySpec{})
	stopSampling := sampleMax(t, 2, func() (int, []string) {
		return runningPods(ctx, t, []string{cluster1, cluster2}, limited)
	})

	// The order is forced: two holders take the limited tenant's two
	// slots (and show it runs 2 at once), then its burst queues behind
	// them, then the other tenant runs.
	startHolders(ctx, t, limited, 2)
	for i := 0; i < 8; i++ {
		createTaskRun(ctx, t, limited, sleepTaskRun(fmt.Sprintf("burst-%d", i), 2))
	}
	framework.WaitAdmissionWaiting(t, limited, 8)
	for i := 0; i < 3; i++ {
		createTaskRun(ctx, t, other, sleepTaskRun(fmt.Sprintf("other-%d", i), 1))
	}
	for i := 0; i < 3; i++ {
		tr := other.WaitTaskRunDone(ctx, t, ns, fmt.Sprintf("other-%d", i), 3*time.Minute)
		if status, reason := framework.Condition(tr); status != "True" {
			t.Errorf("other tenant's TaskRun %s ended %s/%s", tr.Name, status, reason)
		}
	}
	// The burst waited, each run saying why, with no pod.
	checkQueued(ctx, t, limited, 0, 8, "when the other tenant's runs were done")
	t.Logf("the other tenant's 3 TaskRuns were done while the limited tenant's 8 waited behind its 2 running")
	for i := 0; i < 2; i++ {
		limited.CancelTaskRun(ctx, t, ns, fmt.Sprintf("holder-%d", i))
	}
	for i := 0; i < 8; i++ {
		tr := limited.WaitTaskRunDone(ctx, t, ns, fmt.Sprintf("burst-%d", i), 5*time.Minute)
		if status, reason := framework.Condition(tr); status != "True" {
			t.Errorf("limited tenant's TaskRun %s ended %s/%s", tr.Name, status, reason)
		}
	}
	maxRunning, samples := stopSampling()
	framework.WaitAdmissionReleased(t, limited, other)
	t.Logf("limited tenant: at most %d running pods in %d samples", maxRunning, samples)
	if maxRunning > 2 {
		t.Errorf("the limited tenant had %d TaskRuns running at once, limit 2", maxRunning)
	}
}

// TestFailover: when one cluster's apiserver stops, PipelineRuns queued
// there complete on the other cluster, the ones running there fail with
// WorkloadClusterLost, and once it is back nothing of theirs is left on
// it.
//
// The order is forced, so that the test means the same whatever order
// placement and admission take: a long run runs on each cluster (pinned by
// selector); the queued tenant's only slot is taken by a holder on
// cluster1 before its queued runs exist, so none of them can start before
// the stop, and at least one is placed on cluster2 (the less loaded).
func TestFailover(t *testing.T) {
	ctx := context.Background()
	long := env.NewFleetTenant(ctx, t, "e2e-failover-long", fleetv1alpha1.TenantPolicySpec{})
	queued := env.NewFleetTenant(ctx, t, "e2e-failover-queued", fleetv1alpha1.TenantPolicySpec{MaxRunningTaskRuns: 1})
	region := map[string]string{cluster1: "region=local-1", cluster2: "region=local-2"}
	// The run on cluster2 is interrupted, whatever its length; the one on
	// cluster1 outlasts the waits before the stop.
	longOn := map[string]*v1.PipelineRun{cluster1: sleepPipelineRun("long-0", 1, 90), cluster2: sleepPipelineRun("long-1", 1, 3600)}
	for cluster, pr := range longOn {
		pr.Annotations = map[string]string{fleet.AnnotationClusterSelector: region[cluster]}
		createPipelineRun(ctx, t, long, pr)
	}
	holder := sleepTaskRun("holder", 3600)
	holder.Annotations = map[string]string{fleet.AnnotationClusterSelector: region[cluster1]}
	createTaskRun(ctx, t, queued, holder)
	for _, pr := range longOn {
		long.WaitTaskRunRunning(ctx, t, ns, pr.Name+"-t0", 3*time.Minute)
	}
	queued.WaitTaskRunRunning(ctx, t, ns, holder.Name, 3*time.Minute)
	for i := 0; i < 6; i++ {
		createPipelineRun(ctx, t, queued, sleepPipelineRun(fmt.Sprintf("queued-%d", i), 1, 2))
	}
	framework.WaitAdmissionWaiting(t, queued, 6)
	initial := map[string]string{}
	onCluster2 := 0
	for i := 0; i < 6; i++ {
		pr, err := queued.Tekton.TektonV1().PipelineRuns(ns).Get(ctx, fmt.Sprintf("queued-%d", i), metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		initial[pr.Name] = placement.Of(pr)
		if initial[pr.Name] == cluster2 {
			onCluster2++
		}
	}
	if onCluster2 == 0 {
		t.Fatalf("no queued run was placed on %s, the less loaded cluster: %v", cluster2, initial)
	}

	stopped := time.Now()
	if err := env.Stack.StopWorkloadAPIServer(cluster2); err != nil {
		t.Fatal(err)
	}
	restarted := false
	defer func() {
		if !restarted {
			_ = env.Stack.StartWorkloadAPIServer(context.Background(), cluster2)
		}
	}()
	framework.Eventually(t, time.Minute, cluster2+" reported lost in its status", func() (bool, string, error) {
		c := condition(env.WorkloadCluster(ctx, t, cluster2), fleetv1alpha1.ConditionReachable)
		return c.Status == metav1.ConditionFalse && c.Reason == "Lost", c.Reason + ": " + c.Message, nil
	})
	t.Logf("stopped the apiserver of %s; queued runs were placed %v", cluster2, initial)
	queued.CancelTaskRun(ctx, t, ns, holder.Name)

	// The long run on cluster2 fails with the reason; the one on cluster1
	// succeeds.
	for cluster, pr := range longOn {
		done := long.WaitPipelineRun(ctx, t, ns, pr.Name, 4*time.Minute, "done", framework.PipelineRunDone)
		tr, err := long.Tekton.TektonV1().TaskRuns(ns).Get(ctx, pr.Name+"-t0", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		status, reason := framework.Condition(tr)
		switch cluster {
		case cluster2:
			if status != "False" || reason != placement.ReasonWorkloadClusterLost {
				t.Errorf("TaskRun %s on the stopped cluster ended %s/%s, want False/%s", tr.Name, status, reason, placement.ReasonWorkloadClusterLost)
			}
			if prStatus, _ := framework.PipelineRunCondition(done); prStatus != "False" {
				t.Errorf("PipelineRun %s of the interrupted TaskRun ended %s, want False", pr.Name, prStatus)
			}
			t.Logf("interrupted: %s: %s", tr.Name, tr.Status.GetCondition("Succeeded").Message)
		default:
			if status != "True" || placement.Of(tr) != cluster1 {
				t.Errorf("TaskRun %s on %s ended %s/%s, want True on %s", tr.Name, placement.Of(tr), status, reason, cluster1)
			}
		}
	}
	// Every queued run succeeds on cluster1: those placed on cluster2 had
	// not started, and moved.
	moved := 0
	for i := 0; i < 6; i++ {
		name := fmt.Sprintf("queued-%d", i)
		pr := queued.WaitPipelineRun(ctx, t, ns, name, 5*time.Minute, "done", framework.PipelineRunDone)
		status, reason := framework.PipelineRunCondition(pr)
		if status != "True" || placement.Of(pr) != cluster1 {
			t.Errorf("queued PipelineRun %s (placed on %s, then %s) ended %s/%s, want True on %s", name, initial[name], placement.Of(pr), status, reason, cluster1)
		}
		if initial[name] == cluster2 && placement.Of(pr) == cluster1 && status == "True" {
			moved++
		}
	}
	t.Logf("%d queued PipelineRuns moved from %s to %s and succeeded (%.0fs after the stop)", moved, cluster2, cluster1, time.Since(stopped).Seconds())
	if moved != onCluster2 {
		t.Errorf("%d of the %d queued PipelineRuns placed on %s moved and succeeded", moved, onCluster2, cluster2)
	}
	framework.WaitAdmissionReleased(t, long, queued) // also the runs lost with the cluster

	if err := env.Stack.StartWorkloadAPIServer(ctx, cluster2); err != nil {
		t.Fatal(err)
	}
	restarted = true
	back := time.Now()
	// Its node reports Ready only after the kubelet's next status update
	// reaches the restarted apiserver (until then: NoReadyNodes).
	framework.Eventually(t, 3*time.Minute, cluster2+" reported ready again", func() (bool, string, error) {
		wc := env.WorkloadCluster(ctx, t, cluster2)
		c := condition(wc, fleetv1alpha1.ConditionReady)
		fresh := wc.Status.LastHeartbeatTime != nil && wc.Status.LastHeartbeatTime.After(back.Add(-time.Second))
		return c.Status == metav1.ConditionTrue && wc.Status.ReadyNodes == 1 && fresh,
			fmt.Sprintf("%s %s, %d nodes, heartbeat %v", c.Status, c.Reason, wc.Status.ReadyNodes, wc.Status.LastHeartbeatTime), nil
	})
	// Nothing of the two tenants is left on cluster2: the only pod there,
	// the interrupted long run's, is collected, and so are the namespaces.
	client := env.ClusterClient(t, cluster2)
	framework.Eventually(t, 4*time.Minute, "nothing of the tenants left on "+cluster2, func() (bool, string, error) {
		var left []string
		for _, tn := range []*framework.Tenant{long, queued} {
			pods, err := framework.TenantPods(ctx, client, tn)
			if err != nil {
				return false, err.Error(), nil
			}
			for _, p := range pods {
				left = append(left, "pod "+p.Namespace+"/"+p.Name)
			}
			spaces, err := client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: workload.LabelClusterName + "=" + tn.Cluster.String()})
			if err != nil {
				return false, err.Error(), nil
			}
			for _, s := range spaces.Items {
				left = append(left, "namespace "+s.Name)
			}
		}
		return len(left) == 0, fmt.Sprintf("%d left: %v", len(left), left), nil
	})
}

// runningPods counts the tenants' running pods on the clusters at one
// instant, and describes them (for logs). One List per cluster is a
// consistent view of it; across clusters, the instant is that of the last
// cluster's List, and a pod of another cluster counts only when it is
// running both in a List before and in one after that instant: running
// only ever turns off (restartPolicy Never), so it was running then. A
// sample may thus miss a pod, never count a freed slot and its successor
// both.
func runningPods(ctx context.Context, t *testing.T, clusters []string, tenants ...*framework.Tenant) (int, []string) {
	var workspaces []string
	for _, tn := range tenants {
		workspaces = append(workspaces, tn.Cluster.String())
	}
	selector := workload.LabelClusterName + " in (" + strings.Join(workspaces, ",") + ")"
	running := func(cluster string) map[string]string {
		pods, err := env.ClusterClient(t, cluster).CoreV1().Pods("").List(ctx, metav1.ListOptions{LabelSelector: selector})
		out := map[string]string{}
		if err != nil {
			return out
		}
		for i := range pods.Items {
			if p := &pods.Items[i]; podRunning(p) {
				out[p.Namespace+"/"+p.Name] = podStates(p)
			}
		}
		return out
	}
	others, last := clusters[:len(clusters)-1], clusters[len(clusters)-1]
	before := map[string]map[string]string{}
	for _, c := range others {
		before[c] = running(c)
	}
	var seen []string
	for _, state := range running(last) {
		seen = append(seen, state)
	}
	for _, c := range others {
		for key := range running(c) {
			if state, ok := before[c][key]; ok {
				seen = append(seen, state)
			}
		}
	}
	return len(seen), seen
}

// sampleMax samples count every 200 ms, logging samples above limit,
// until the returned stop is called; stop returns the largest count and
// the number of samples.
func sampleMax(t *testing.T, limit int, count func() (int, []string)) func() (int, int) {
	var mu sync.Mutex
	maxCount, samples := 0, 0
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
			n, what := count()
			mu.Lock()
			samples++
			if n > maxCount {
				maxCount = n
				if n > limit {
					t.Logf("%d running pods: %v", n, what)
				}
			}
			mu.Unlock()
		}
	}()
	return func() (int, int) {
		close(stop)
		<-done
		mu.Lock()
		defer mu.Unlock()
		return maxCount, samples
	}
}

// podRunning says the pod holds or may still start containers: not
// finished, and not every container exited (the kubelet reports the
// Succeeded phase a moment after the last container exits; the TaskRun is
// done, and its slot free, when its steps exited).
func podRunning(p *corev1.Pod) bool {
	if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
		return false
	}
	// A pod being deleted is one of a cancelled or timed-out TaskRun:
	// the controller deletes it before it ends the run, so the run's slot
	// is free while the kubelet still stops its containers.
	if p.DeletionTimestamp != nil {
		return false
	}
	statuses := append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...)
	if len(statuses) == 0 {
		return true
	}
	for _, c := range statuses {
		if c.State.Terminated == nil {
			return true
		}
	}
	return false
}

// podStates is a pod's name, phase and container states, for logs.
func podStates(p *corev1.Pod) string {
	out := p.Name + " " + string(p.Status.Phase)
	for _, c := range append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
		switch {
		case c.State.Running != nil:
			out += " " + c.Name + ":running"
		case c.State.Terminated != nil:
			out += fmt.Sprintf(" %s:exited(%d)@%s", c.Name, c.State.Terminated.ExitCode, c.State.Terminated.FinishedAt.Format("15:04:05"))
		case c.State.Waiting != nil:
			out += " " + c.Name + ":" + c.State.Waiting.Reason
		}
	}
	return out + " at " + time.Now().Format("15:04:05.0")
}

// TestClusterLimitSharesFairly: on a cluster limited to 2 running
// TaskRuns, it never runs more, and a tenant that comes after another's
// burst gets freed slots before the burst's waiting runs (the workspace
// with fewer running goes first).
func TestClusterLimitSharesFairly(t *testing.T) {
	ctx := context.Background()
	limit := fleetv1alpha1.ClusterLimits{MaxRunningTaskRuns: 2}
	if err := env.Stack.SetWorkloadClusterLimits(ctx, cluster1, limit); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := env.Stack.SetWorkloadClusterLimits(context.Background(), cluster1, fleetv1alpha1.ClusterLimits{}); err != nil {
			t.Errorf("lift the limit of %s: %v", cluster1, err)
		}
		framework.WaitClusterLimitsInForce(t, cluster1, fleetv1alpha1.ClusterLimits{})
	})
	framework.WaitClusterLimitsInForce(t, cluster1, limit)
	pinned := fleetv1alpha1.TenantPolicySpec{ClusterSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"region": framework.PinnedRegion}}}
	burst := env.NewFleetTenant(ctx, t, "e2e-share-burst", pinned)
	late := env.NewFleetTenant(ctx, t, "e2e-share-late", pinned)
	stopSampling := sampleMax(t, 2, func() (int, []string) { return runningPods(ctx, t, []string{cluster1}, burst, late) })

	// The order is forced: the burst's two holders fill the cluster, the
	// rest of the burst queues, then the late tenant's runs queue too.
	startHolders(ctx, t, burst, 2)
	for i := 2; i < 8; i++ {
		createTaskRun(ctx, t, burst, sleepTaskRun(fmt.Sprintf("burst-%d", i), 2))
	}
	framework.WaitAdmissionWaiting(t, burst, 6)
	// late-1 holds the slot it gets, so that the check below sees the
	// cluster full with late's runs, whatever the timing. A workspace's
	// runs start in the order they began to wait: late-0 waits first.
	createTaskRun(ctx, t, late, sleepTaskRun("late-0", 1))
	framework.WaitAdmissionWaiting(t, late, 1)
	createTaskRun(ctx, t, late, sleepTaskRun("late-1", 3600))
	framework.WaitAdmissionWaiting(t, late, 2)
	// One slot frees: it goes to the workspace with fewer running
	// TaskRuns (late: 0, burst: 1), and so does the next, when late-0
	// ends.
	burst.CancelTaskRun(ctx, t, ns, "holder-0")
	if status, reason := framework.Condition(late.WaitTaskRunDone(ctx, t, ns, "late-0", 3*time.Minute)); status != "True" {
		t.Errorf("late-0 ended %s/%s", status, reason)
	}
	late.WaitTaskRunRunning(ctx, t, ns, "late-1", 3*time.Minute)
	checkQueued(ctx, t, burst, 2, 8, "the late tenant waited behind the burst")
	t.Logf("both freed slots went to the late tenant before any of the burst's 6 waiting TaskRuns")
	late.CancelTaskRun(ctx, t, ns, "late-1")
	burst.CancelTaskRun(ctx, t, ns, "holder-1")
	for i := 2; i < 8; i++ {
		if status, reason := framework.Condition(burst.WaitTaskRunDone(ctx, t, ns, fmt.Sprintf("burst-%d", i), 5*time.Minute)); status != "True" {
			t.Errorf("burst-%d ended %s/%s", i, status, reason)
		}
	}
	maxRunning, samples := stopSampling()
	framework.WaitAdmissionReleased(t, burst, late)
	t.Logf("%s: at most %d running pods in %d samples", cluster1, maxRunning, samples)
	if maxRunning > 2 {
		t.Errorf("%s ran %d TaskRuns at once, limit 2", cluster1, maxRunning)
	}
}

// condition is a WorkloadCluster's condition of a type (empty if none).
func condition(wc *fleetv1alpha1.WorkloadCluster, typ string) metav1.Condition {
	for _, c := range wc.Status.Conditions {
		if c.Type == typ {
			return c
		}
	}
	return metav1.Condition{}
}

// TestPlacementInput: a tenant selector that does not parse fails the
// TaskRun with InvalidPlacement; one no cluster matches keeps it waiting,
// saying why for each cluster; the waiting run can be deleted.
func TestPlacementInput(t *testing.T) {
	ctx := context.Background()
	tn := env.NewFleetTenant(ctx, t, "e2e-placement-input", fleetv1alpha1.TenantPolicySpec{})
	withSelector := func(name, selector string) *v1.TaskRun {
		tr := sleepTaskRun(name, 1)
		tr.Annotations = map[string]string{fleet.AnnotationClusterSelector: selector}
		if _, err := tn.Tekton.TektonV1().TaskRuns(ns).Create(ctx, tr, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		return tr
	}
	withSelector("bad-selector", "region in ((")
	tr := tn.WaitTaskRunDone(ctx, t, ns, "bad-selector", 2*time.Minute)
	if status, reason := framework.Condition(tr); status != "False" || reason != placement.ReasonInvalidPlacement {
		t.Errorf("bad selector: %s/%s, want False/%s", status, reason, placement.ReasonInvalidPlacement)
	}
	t.Logf("bad selector: %s", tr.Status.GetCondition("Succeeded").Message)

	withSelector("no-match", "region=nowhere")
	framework.Eventually(t, time.Minute, "no-match waits for a cluster", func() (bool, string, error) {
		tr, err := tn.Tekton.TektonV1().TaskRuns(ns).Get(ctx, "no-match", metav1.GetOptions{})
		if err != nil {
			return false, err.Error(), nil
		}
		c := tr.Status.GetCondition("Succeeded")
		if c == nil {
			return false, "no condition", nil
		}
		ok := c.IsUnknown() && c.Reason == placement.ReasonWaitingForWorkloadCluster &&
			strings.Contains(c.Message, cluster1+": does not match") && strings.Contains(c.Message, cluster2+": does not match")
		return ok, c.Reason + ": " + c.Message, nil
	})
	if err := tn.Tekton.TektonV1().TaskRuns(ns).Delete(ctx, "no-match", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, time.Minute, "the waiting TaskRun is deleted", func() (bool, string, error) {
		_, err := tn.Tekton.TektonV1().TaskRuns(ns).Get(ctx, "no-match", metav1.GetOptions{})
		return apierrors.IsNotFound(err), fmt.Sprint(err), nil
	})
}

// TestWorkloadClusterWithoutKubeconfig: a WorkloadCluster whose kubeconfig
// Secret does not exist is not used, and its status says why.
func TestWorkloadClusterWithoutKubeconfig(t *testing.T) {
	ctx := context.Background()
	clusters := env.ProviderResource(t, fleetv1alpha1.WorkloadClustersResource)
	name := fmt.Sprintf("e2e-no-kubeconfig-%d", time.Now().UnixNano()%1_000_000)
	wc := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": fleetv1alpha1.SchemeGroupVersion.String(), "kind": "WorkloadCluster",
		"metadata": map[string]any{"name": name},
		"spec":     map[string]any{"kubeconfigSecretRef": map[string]any{"namespace": "pipelines-service", "name": name}},
	}}
	if _, err := clusters.Create(ctx, wc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = clusters.Delete(context.Background(), name, metav1.DeleteOptions{}) })
	framework.Eventually(t, time.Minute, "the status says the kubeconfig is missing", func() (bool, string, error) {
		c := condition(env.WorkloadCluster(ctx, t, name), fleetv1alpha1.ConditionReady)
		ok := c.Status == metav1.ConditionFalse && c.Reason == fleet.ReasonInvalidKubeconfig && strings.Contains(c.Message, "not found")
		return ok, fmt.Sprintf("%s %s: %s", c.Status, c.Reason, c.Message), nil
	})
	// A controller that just (re)started reports it Syncing first.
	framework.Eventually(t, time.Minute, cluster1+" ready next to a broken registration", func() (bool, string, error) {
		c := condition(env.WorkloadCluster(ctx, t, cluster1), fleetv1alpha1.ConditionReady)
		return c.Status == metav1.ConditionTrue, fmt.Sprintf("%s %s", c.Status, c.Reason), nil
	})
}

// TestWorkloadClusterWhoseKubeconfigTurnsBad: a registered, ready cluster
// whose kubeconfig Secret is replaced by one that builds no client says
// so in its status and gets no more runs: a run selecting only it waits.
func TestWorkloadClusterWhoseKubeconfigTurnsBad(t *testing.T) {
	ctx := context.Background()
	name := fmt.Sprintf("e2e-turns-bad-%d", time.Now().UnixNano()%1_000_000)
	kubeconfig, err := os.ReadFile(env.Stack.Config().WorkloadClusterKubeconfig(cluster2))
	if err != nil {
		t.Fatal(err)
	}
	secrets := env.ProviderResource(t, corev1.SchemeGroupVersion.WithResource("secrets")).Namespace("pipelines-service")
	secret := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Secret", "metadata": map[string]any{"name": name},
		"data": map[string]any{"kubeconfig": base64.StdEncoding.EncodeToString(kubeconfig)},
	}}
	if _, err := secrets.Create(ctx, secret, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = secrets.Delete(context.Background(), name, metav1.DeleteOptions{}) })
	clusters := env.ProviderResource(t, fleetv1alpha1.WorkloadClustersResource)
	wc := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": fleetv1alpha1.SchemeGroupVersion.String(), "kind": "WorkloadCluster",
		"metadata": map[string]any{"name": name, "labels": map[string]any{"region": name}},
		"spec":     map[string]any{"kubeconfigSecretRef": map[string]any{"namespace": "pipelines-service", "name": name}},
	}}
	if _, err := clusters.Create(ctx, wc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = clusters.Delete(context.Background(), name, metav1.DeleteOptions{}) })
	readyCondition := func() (bool, string, error) {
		c := condition(env.WorkloadCluster(ctx, t, name), fleetv1alpha1.ConditionReady)
		return c.Status == metav1.ConditionTrue, fmt.Sprintf("%s %s: %s", c.Status, c.Reason, c.Message), nil
	}
	framework.Eventually(t, time.Minute, name+" ready with a good kubeconfig", readyCondition)

	bad, err := secrets.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	bad.Object["data"] = map[string]any{"kubeconfig": base64.StdEncoding.EncodeToString([]byte("not a kubeconfig"))}
	if _, err := secrets.Update(ctx, bad, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, time.Minute, "the status says the kubeconfig is invalid", func() (bool, string, error) {
		c := condition(env.WorkloadCluster(ctx, t, name), fleetv1alpha1.ConditionReady)
		return c.Status == metav1.ConditionFalse && c.Reason == fleet.ReasonInvalidKubeconfig, fmt.Sprintf("%s %s: %s", c.Status, c.Reason, c.Message), nil
	})
	t.Logf("%s: %s", name, condition(env.WorkloadCluster(ctx, t, name), fleetv1alpha1.ConditionReady).Message)

	tn := env.NewFleetTenant(ctx, t, "e2e-turns-bad", fleetv1alpha1.TenantPolicySpec{
		ClusterSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"region": name}},
	})
	if _, err := tn.Tekton.TektonV1().TaskRuns(ns).Create(ctx, sleepTaskRun("only-there", 1), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, time.Minute, "the run waits instead of going to the cluster", func() (bool, string, error) {
		tr, err := tn.Tekton.TektonV1().TaskRuns(ns).Get(ctx, "only-there", metav1.GetOptions{})
		if err != nil {
			return false, err.Error(), nil
		}
		if where := placement.Of(tr); where != "" {
			return false, "", fmt.Errorf("placed on %s, whose kubeconfig is invalid", where)
		}
		c := tr.Status.GetCondition("Succeeded")
		if c == nil {
			return false, "no condition", nil
		}
		return c.IsUnknown() && c.Reason == placement.ReasonWaitingForWorkloadCluster, c.Reason + ": " + c.Message, nil
	})
}

// TestDeletedTenantFreesItsSlots: a tenant workspace deleted while one of
// its TaskRuns runs and others wait leaves nothing held in the admission
// and no pod on the workload clusters.
func TestDeletedTenantFreesItsSlots(t *testing.T) {
	ctx := context.Background()
	tn := env.NewFleetTenant(ctx, t, "e2e-deleted-burst", fleetv1alpha1.TenantPolicySpec{MaxRunningTaskRuns: 1})
	for i := 0; i < 3; i++ {
		if _, err := tn.Tekton.TektonV1().TaskRuns(ns).Create(ctx, sleepTaskRun(fmt.Sprintf("burst-%d", i), 120), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	framework.Eventually(t, 2*time.Minute, "one runs, two wait", func() (bool, string, error) {
		state, err := framework.Admission()
		if err != nil {
			return false, err.Error(), nil
		}
		running, waiting := 0, 0
		for _, s := range state.Running {
			if s.Workspace == tn.Cluster.String() {
				running++
			}
		}
		for _, s := range state.Waiting {
			if s.Workspace == tn.Cluster.String() {
				waiting++
			}
		}
		n, _ := runningPods(ctx, t, []string{cluster1, cluster2}, tn)
		return running == 1 && waiting == 2 && n == 1, fmt.Sprintf("admitted %d, waiting %d, running pods %d", running, waiting, n), nil
	})
	if err := env.KCP.Cluster(logicalcluster.NewPath("root")).TenancyV1alpha1().Workspaces().Delete(ctx, tn.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	framework.WaitAdmissionReleased(t, tn)
	// A workspace removed at once leaves its pods to the GC: objects
	// younger than 30s are spared, sweeps come every minute, and a pod
	// takes its termination grace period (30s) to go.
	framework.Eventually(t, 3*time.Minute, "the tenant's pods are gone", func() (bool, string, error) {
		var left []string
		for _, name := range []string{cluster1, cluster2} {
			pods, err := framework.TenantPods(ctx, env.ClusterClient(t, name), tn)
			if err != nil {
				return false, err.Error(), nil
			}
			for _, p := range pods {
				left = append(left, name+"/"+p.Name)
			}
		}
		return len(left) == 0, fmt.Sprint(left), nil
	})
}
