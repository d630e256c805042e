//go:build e2e

package deploy

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pipelines-service/pipelines-service/pkg/devstack"
	"github.com/pipelines-service/pipelines-service/pkg/metrics"
	"github.com/pipelines-service/pipelines-service/test/e2e/framework"
)

// TestKoDeployedControllerServesTenants deploys the controller into the
// workload cluster with ko (the host controller stops), runs a TaskRun in
// a new tenant workspace through it (its three replicas split the
// workspaces' parts, one of them leads), and switches back.
func TestKoDeployedControllerServesTenants(t *testing.T) {
	ctx := context.Background()
	stack := env.Stack
	if err := stack.Deploy(ctx); err != nil {
		t.Fatalf("deploy: %v", err)
	}
	t.Cleanup(func() {
		if err := stack.Undeploy(context.Background()); err != nil {
			t.Errorf("undeploy: %v", err)
		}
	})
	for _, line := range stack.StatusLines() {
		if strings.HasPrefix(line, "CONTROLLER_STATE=") && !strings.Contains(line, "in-cluster") {
			t.Fatalf("after deploy: %s, want the controller in-cluster only", line)
		}
	}
	framework.Eventually(t, 2*time.Minute, "controller deployment available", func() (bool, string, error) {
		d, err := env.Workload.AppsV1().Deployments("pipelines-service").Get(ctx, "pipelines-service-controller", metav1.GetOptions{})
		if err != nil {
			return false, err.Error(), nil
		}
		return d.Status.AvailableReplicas == deployedReplicas && d.Status.UpdatedReplicas == deployedReplicas, "not all replicas available yet", nil
	})

	tn := env.NewTenant(ctx, t, "e2e-ko")
	tr := &v1.TaskRun{
		ObjectMeta: metav1.ObjectMeta{Name: "via-ko"},
		Spec: v1.TaskRunSpec{TaskSpec: &v1.TaskSpec{
			Results: []v1.TaskResult{{Name: "where"}},
			Steps:   []v1.Step{{Name: "s", Image: "busybox", Script: "printf in-cluster > $(results.where.path)"}},
		}},
	}
	if _, err := tn.Tekton.TektonV1().TaskRuns("default").Create(ctx, tr, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	done := tn.WaitTaskRunDone(ctx, t, "default", "via-ko", 3*time.Minute)
	if status, reason := framework.Condition(done); status != "True" || len(done.Status.Results) != 1 || done.Status.Results[0].Value.StringVal != "in-cluster" {
		t.Fatalf("TaskRun through the in-cluster controller ended %s/%s with results %v", status, reason, done.Status.Results)
	}
	partsSplit(ctx, t)
	// One of the pods leads, and says so on its metrics port.
	holder, _, err := stack.ControllerLeader(ctx)
	if err != nil || !strings.HasPrefix(holder, "pipelines-service-controller-") {
		t.Fatalf("Lease held by %q (%v), want one of the Deployment's pods", holder, err)
	}
	pod, _, _ := strings.Cut(holder, "_")
	data, err := env.Workload.CoreV1().Pods("pipelines-service").ProxyGet("http", pod, "9090", "/metrics", nil).DoRaw(ctx)
	if err != nil {
		t.Fatalf("the leader's /metrics through the apiserver: %v", err)
	}
	families, err := metrics.Parse(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if got := families.Total("pipelines_service_leader", nil); got != 1 {
		t.Errorf("pipelines_service_leader = %v on %s, want 1", got, pod)
	}
	if got := families.Total("tekton_pipelines_controller_taskrun_total", map[string]string{"status": "success", "workspace": tn.Cluster.String()}); got != 1 {
		t.Errorf("taskrun_total{status=success,workspace=%s} = %v on the leader, want 1", tn.Cluster, got)
	}
	tenantCannotScrape(ctx, t, tn)
}

// deployedReplicas are config/'s replicas of the controller.
const deployedReplicas = 3

// partsSplit: the replicas hold every part between them, on their
// metrics port, and more than one of them holds some.
func partsSplit(ctx context.Context, t *testing.T) {
	t.Helper()
	framework.Eventually(t, time.Minute, "parts split over the replicas", func() (bool, string, error) {
		pods, err := env.Workload.CoreV1().Pods("pipelines-service").List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=pipelines-service-controller"})
		if err != nil {
			return false, err.Error(), nil
		}
		total, holding := 0.0, 0
		held := map[string]float64{}
		for _, p := range pods.Items {
			data, err := env.Workload.CoreV1().Pods("pipelines-service").ProxyGet("http", p.Name, "9090", "/metrics", nil).DoRaw(ctx)
			if err != nil {
				return false, fmt.Sprintf("%s /metrics: %v", p.Name, err), nil
			}
			families, err := metrics.Parse(bytes.NewReader(data))
			if err != nil {
				return false, "", err
			}
			n := families.Total("pipelines_service_parts_held", nil)
			held[p.Name], total = n, total+n
			if n > 0 {
				holding++
			}
		}
		return total == devstack.ControllerParts && holding >= 2, fmt.Sprintf("parts held per pod: %v", held), nil
	})
}

// tenantCannotScrape: the metrics port, open to the apiserver's proxy
// above, is closed to a tenant's step (the metrics name every workspace).
func tenantCannotScrape(ctx context.Context, t *testing.T, tn *framework.Tenant) {
	t.Helper()
	pods, err := env.Workload.CoreV1().Pods("pipelines-service").List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=pipelines-service-controller"})
	if err != nil {
		t.Fatal(err)
	}
	var targets []string
	for _, p := range pods.Items {
		if p.Status.PodIP != "" && p.DeletionTimestamp == nil {
			targets = append(targets, p.Status.PodIP+" 9090")
		}
	}
	if len(targets) != deployedReplicas {
		t.Fatalf("controller pods with an IP: %v, want %d", targets, deployedReplicas)
	}
	probe := &v1.TaskRun{
		ObjectMeta: metav1.ObjectMeta{Name: "scrape"},
		Spec: v1.TaskRunSpec{TaskSpec: &v1.TaskSpec{
			Results: []v1.TaskResult{{Name: "report"}},
			Steps:   []v1.Step{{Name: "probe", Image: "busybox", Script: "#!/bin/sh\nprobes() {\n" + framework.ProbeScript(targets) + "}\nprobes > $(results.report.path)\n"}},
		}},
	}
	if _, err := tn.Tekton.TektonV1().TaskRuns("default").Create(ctx, probe, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	done := tn.WaitTaskRunDone(ctx, t, "default", "scrape", 3*time.Minute)
	if status, reason := framework.Condition(done); status != "True" || len(done.Status.Results) != 1 {
		t.Fatalf("probe ended %s/%s with results %v", status, reason, done.Status.Results)
	}
	t.Logf("probe report:\n%s", done.Status.Results[0].Value.StringVal)
	report := framework.ProbeReport(done.Status.Results[0].Value.StringVal)
	for _, target := range targets {
		what := strings.Replace(target, " ", ":", 1)
		if got := report[what]; got != "closed" {
			t.Errorf("a tenant's step connecting to the controller's metrics at %s: %q, want closed", what, got)
		}
	}
}
