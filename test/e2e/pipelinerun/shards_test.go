//go:build e2e

package pipelinerun

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/kcp-dev/logicalcluster/v3"
	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	tektonclient "github.com/tektoncd/pipeline/pkg/client/clientset/versioned"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/pipelines-service/pipelines-service/pkg/devstack"
	"github.com/pipelines-service/pipelines-service/pkg/workload"
	"github.com/pipelines-service/pipelines-service/test/e2e/framework"
)

// TestPipelineRunsOnEveryShard: a tenant on each kcp shard runs a
// PipelineRun (two tasks, a result passed between them) through the one
// controller, which watches every shard's virtual workspace; the pods run
// on the workload cluster, the runs' status comes back to each shard, and
// tkn reads each run's logs through the gateway and kcp's front-proxy. As
// the hostile tenant, each tenant's identity is refused the other's
// workspace, across shards, through the same front door.
func TestPipelineRunsOnEveryShard(t *testing.T) {
	ctx := context.Background()
	start := time.Now()
	tenants := map[string]*framework.Tenant{}
	for _, shard := range devstack.Shards() {
		tn := env.NewTenantOn(ctx, t, "e2e-shard", shard)
		got, err := env.Stack.Config().ShardOf(ctx, tn.Cluster.String())
		if err != nil || got != shard {
			t.Fatalf("tenant %s (cluster %s) is on shard %q (%v), want %s", tn.Name, tn.Cluster, got, err, shard)
		}
		tenants[shard] = tn
		t.Logf("tenant on %s ready after %.1f s", shard, time.Since(start).Seconds())
	}
	for shard, tn := range tenants {
		first := script(`printf "from-` + shard + `" > $(results.word.path)`)
		first.Results = []v1.TaskResult{{Name: "word"}}
		second := script(`echo "heard $(params.word)"`)
		second.Params = []v1.ParamSpec{{Name: "word", Type: v1.ParamTypeString}}
		createPR(ctx, t, tn, &v1.PipelineRun{ObjectMeta: metav1.ObjectMeta{Name: "sharded"}, Spec: v1.PipelineRunSpec{PipelineSpec: &v1.PipelineSpec{
			Tasks: []v1.PipelineTask{
				{Name: "say", TaskSpec: &first},
				{Name: "hear", TaskSpec: &second, Params: v1.Params{{Name: "word", Value: *v1.NewStructuredValues("$(tasks.say.results.word)")}}},
			},
		}}})
	}
	for shard, tn := range tenants {
		pr := tn.WaitPipelineRun(ctx, t, ns, "sharded", 5*time.Minute, "done", framework.PipelineRunDone)
		if status, reason := framework.PipelineRunCondition(pr); status != "True" || reason != "Succeeded" {
			t.Fatalf("PipelineRun of the tenant on %s ended %s/%s, want True/Succeeded", shard, status, reason)
		}
		t.Logf("PipelineRun of the tenant on %s done after %.1f s", shard, time.Since(start).Seconds())
		if len(pr.Status.ChildReferences) != 2 {
			t.Errorf("PipelineRun of the tenant on %s has %d child references, want 2", shard, len(pr.Status.ChildReferences))
		}
		pods, err := env.Workload.CoreV1().Pods("").List(ctx, metav1.ListOptions{LabelSelector: workload.LabelClusterName + "=" + tn.Cluster.String()})
		if err != nil {
			t.Fatal(err)
		}
		if len(pods.Items) != 2 {
			t.Errorf("the tenant on %s has %d pods on %s, want 2 (one per TaskRun)", shard, len(pods.Items), framework.PinnedRegion)
		}
		out, errOut, err := env.Tkn(ctx, t, tn.Kubeconfig, "pipelinerun", "logs", "sharded", "-n", ns)
		if err != nil || !strings.Contains(out, "heard from-"+shard) {
			t.Errorf("tkn pipelinerun logs for the tenant on %s: %v\nstdout: %s\nstderr: %s\nwant \"heard from-%s\"", shard, err, out, errOut, shard)
		}
		t.Logf("logs of the tenant on %s read after %.1f s", shard, time.Since(start).Seconds())
	}

	// Hostile: each tenant's own identity, pointed at the other's
	// workspace on the other shard, is refused.
	for shard, tn := range tenants {
		for otherShard, other := range tenants {
			if otherShard == shard {
				continue
			}
			kubeconfig, err := env.Stack.UserKubeconfig(devstack.TenantUser(tn.Name), logicalcluster.NewPath("root").Join(other.Name))
			if err != nil {
				t.Fatal(err)
			}
			rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
			if err != nil {
				t.Fatal(err)
			}
			intruder, err := tektonclient.NewForConfig(rc)
			if err != nil {
				t.Fatal(err)
			}
			_, err = intruder.TektonV1().PipelineRuns(ns).Get(ctx, "sharded", metav1.GetOptions{})
			if !apierrors.IsForbidden(err) {
				t.Errorf("tenant on %s reading the PipelineRun of the tenant on %s: err = %v, want Forbidden", shard, otherShard, err)
			}
			_, err = intruder.TektonV1().PipelineRuns(ns).Create(ctx, &v1.PipelineRun{ObjectMeta: metav1.ObjectMeta{Name: "planted"},
				Spec: v1.PipelineRunSpec{PipelineSpec: &v1.PipelineSpec{Tasks: []v1.PipelineTask{{Name: "t", TaskSpec: ptr(script("true"))}}}}}, metav1.CreateOptions{})
			if !apierrors.IsForbidden(err) {
				t.Errorf("tenant on %s creating a PipelineRun in the workspace of the tenant on %s: err = %v, want Forbidden", shard, otherShard, err)
			}
		}
	}
}

// TestShardOutageHoldsBackOnlyItsTenants: while the second shard is down,
// a tenant on the root shard runs a PipelineRun to the end (the
// controller's watches of the root shard go on); a run of the tenant on
// the down shard whose pod was running finishes on the workload cluster,
// and its status reaches the shard once it is back, as does a new run.
func TestShardOutageHoldsBackOnlyItsTenants(t *testing.T) {
	ctx := context.Background()
	root := env.NewTenantOn(ctx, t, "e2e-up", devstack.RootShard)
	away := env.NewTenantOn(ctx, t, "e2e-down", devstack.SecondShard)
	slow := script("sleep 20; echo finished")
	createPR(ctx, t, away, &v1.PipelineRun{ObjectMeta: metav1.ObjectMeta{Name: "across"}, Spec: v1.PipelineRunSpec{PipelineSpec: &v1.PipelineSpec{
		Tasks: []v1.PipelineTask{{Name: "slow", TaskSpec: &slow}},
	}}})
	away.WaitTaskRunRunning(ctx, t, ns, "across-slow", 3*time.Minute)

	if err := env.Stack.StopSecondShard(); err != nil {
		t.Fatal(err)
	}
	restarted := false
	t.Cleanup(func() {
		if !restarted {
			if err := env.Stack.StartSecondShard(context.Background()); err != nil {
				t.Errorf("start %s again: %v", devstack.SecondShard, err)
			}
		}
	})
	quick := script("echo up")
	createPR(ctx, t, root, &v1.PipelineRun{ObjectMeta: metav1.ObjectMeta{Name: "during"}, Spec: v1.PipelineRunSpec{PipelineSpec: &v1.PipelineSpec{
		Tasks: []v1.PipelineTask{{Name: "quick", TaskSpec: &quick}},
	}}})
	pr := root.WaitPipelineRun(ctx, t, ns, "during", 3*time.Minute, "done", framework.PipelineRunDone)
	if status, reason := framework.PipelineRunCondition(pr); status != "True" || reason != "Succeeded" {
		t.Fatalf("with %s down, the root tenant's PipelineRun ended %s/%s, want True/Succeeded", devstack.SecondShard, status, reason)
	}
	time.Sleep(20 * time.Second) // the down tenant's step ends meanwhile

	if err := env.Stack.StartSecondShard(ctx); err != nil {
		t.Fatal(err)
	}
	restarted = true
	pr = away.WaitPipelineRun(ctx, t, ns, "across", 3*time.Minute, "done", framework.PipelineRunDone)
	if status, reason := framework.PipelineRunCondition(pr); status != "True" || reason != "Succeeded" {
		t.Fatalf("the run that went on through the outage ended %s/%s, want True/Succeeded", status, reason)
	}
	createPR(ctx, t, away, &v1.PipelineRun{ObjectMeta: metav1.ObjectMeta{Name: "after"}, Spec: v1.PipelineRunSpec{PipelineSpec: &v1.PipelineSpec{
		Tasks: []v1.PipelineTask{{Name: "quick", TaskSpec: &quick}},
	}}})
	pr = away.WaitPipelineRun(ctx, t, ns, "after", 3*time.Minute, "done", framework.PipelineRunDone)
	if status, reason := framework.PipelineRunCondition(pr); status != "True" || reason != "Succeeded" {
		t.Fatalf("a run created once %s was back ended %s/%s, want True/Succeeded", devstack.SecondShard, status, reason)
	}
}
