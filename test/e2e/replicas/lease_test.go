//go:build e2e

package replicas

import (
	"context"
	"net/http"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"

	"github.com/pipelines-service/pipelines-service/pkg/devstack"
	"github.com/pipelines-service/pipelines-service/test/e2e/framework"
)

// TestLeaderThatLosesItsLeaseStandsAgain takes the Lease from the leading
// controller while its CPU is being profiled (as the benchmark does): the
// replica stops leading (its leader gauge goes to 0) but goes on in the
// same process, its profile still running, leads again once the Lease is
// free, and reconciles. The process used to execute itself again, and a
// profiling timer that followed the re-execution killed the new process
// before it logged a line; the bench's 1-replica runs restarted whenever
// kcp answered a renewal late under the burst.
func TestLeaderThatLosesItsLeaseStandsAgain(t *testing.T) {
	ctx := context.Background()
	stack := env.Stack
	if err := stack.WaitControllerLeader(ctx, 1, time.Minute); err != nil {
		t.Fatalf("the stack's controller does not lead before the test: %v", err)
	}
	t.Cleanup(func() { restoreReplicaOne(t) })
	profile := "http://" + devstack.ControllerDebugAddress + "/debug/cpuprofile/"
	resp, err := http.Post(profile+"start", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("start a CPU profile: %s", resp.Status)
	}

	rc, err := stack.Config().KCPBaseRestConfig()
	if err != nil {
		t.Fatal(err)
	}
	rc.Host += devstack.ProviderPath().RequestPath()
	leases := kubernetes.NewForConfigOrDie(rc).CoordinationV1().Leases(devstack.ControllerLease[0])
	// Another holder renews the Lease for 12 s: longer than the leader's
	// renew deadline (4 s).
	stoppedLeading := false
	for end := time.Now().Add(12 * time.Second); time.Now().Before(end); time.Sleep(500 * time.Millisecond) {
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			lease, err := leases.Get(ctx, devstack.ControllerLease[1], metav1.GetOptions{})
			if err != nil {
				return err
			}
			lease.Spec.HolderIdentity = ptr.To("e2e-intruder")
			lease.Spec.LeaseDurationSeconds = ptr.To[int32](10)
			lease.Spec.RenewTime = &metav1.MicroTime{Time: time.Now()}
			_, err = leases.Update(ctx, lease, metav1.UpdateOptions{})
			return err
		})
		if err != nil {
			t.Fatalf("take the Lease: %v", err)
		}
		if families, err := framework.ControllerMetrics(); err == nil && len(families.Samples("pipelines_service_leader", nil)) == 1 &&
			families.Total("pipelines_service_leader", nil) == 0 {
			stoppedLeading = true
		}
	}
	if !stoppedLeading {
		t.Errorf("the controller never stopped leading while another identity held its Lease (pipelines_service_leader never 0)")
	}
	if err := stack.WaitControllerLeader(ctx, 1, time.Minute); err != nil {
		t.Fatalf("the controller did not lead again once the Lease was free: %v (still running: %v)", err, stack.ControllerReplicaRunning(1))
	}
	// The profile is still the one started before: the process went on.
	resp, err = http.Get(profile + "stop")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("stopping the CPU profile answered %s: the process did not go on through the lost Lease", resp.Status)
	}

	tn := env.NewTenant(ctx, t, "e2e-lease")
	if _, err := tn.Tekton.TektonV1().PipelineRuns(ns).Create(ctx, pipelineRun("after"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pr := tn.WaitPipelineRun(ctx, t, ns, "after", 3*time.Minute, "done", framework.PipelineRunDone)
	if status, reason := framework.PipelineRunCondition(pr); status != "True" {
		t.Errorf("the PipelineRun after the new lead ended %s/%s, want Succeeded", status, reason)
	}
}
