//go:build e2e

package results

import (
	"context"
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pipelines-service/pipelines-service/pkg/reconciler/recorder"
	"github.com/pipelines-service/pipelines-service/pkg/tenantconfig"
	"github.com/pipelines-service/pipelines-service/test/e2e/framework"
)

// TestOutageLosesNothing: with Results (first the API server, then
// PostgreSQL) down for 30 s during a burst, the runs still execute; none
// is pruned while it is not stored, although the tenant's retention is 0;
// once Results is back, every run is recorded, then pruned.
func TestOutageLosesNothing(t *testing.T) {
	for _, tc := range []struct {
		name  string
		stop  func() error
		start func(context.Context) error
	}{
		{"api", env.Stack.StopResultsAPI, env.Stack.StartResultsAPI},
		{"postgres", env.Stack.StopPostgres, env.Stack.StartPostgres},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			tn := env.NewTenant(ctx, t, "e2e-results-outage")
			tn.SetConfigMap(ctx, t, tenantconfig.RetentionConfigName, map[string]string{"runAt": "* * * * *", "defaultRetention": "0"})
			if err := tc.stop(); err != nil {
				t.Fatal(err)
			}
			stopped := time.Now()
			restarted := false
			defer func() {
				if !restarted {
					_ = tc.start(context.Background())
				}
			}()
			const burst = 4
			for i := 0; i < burst; i++ {
				if _, err := tn.Tekton.TektonV1().PipelineRuns(ns).Create(ctx, pipelineRun(fmt.Sprintf("burst-%d", i), 0), metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			for i := 0; i < burst; i++ {
				tn.WaitPipelineRun(ctx, t, ns, fmt.Sprintf("burst-%d", i), 3*time.Minute, "done", framework.PipelineRunDone)
			}
			time.Sleep(time.Until(stopped.Add(30 * time.Second)))
			// Results has been down all along: nothing is stored, so nothing
			// may be pruned, whatever the retention says.
			prs, err := tn.Tekton.TektonV1().PipelineRuns(ns).List(ctx, metav1.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(prs.Items) != burst {
				t.Fatalf("%d of %d PipelineRuns left in the workspace while Results was down: runs were pruned unstored", len(prs.Items), burst)
			}
			for _, pr := range prs.Items {
				if pr.Annotations[recorder.AnnotationStored] == "true" {
					t.Errorf("PipelineRun %s marked stored while Results was down", pr.Name)
				}
			}
			if err := tc.start(ctx); err != nil {
				t.Fatal(err)
			}
			restarted = true
			framework.Eventually(t, 3*time.Minute, "every run archived, then pruned", func() (bool, string, error) {
				got, _ := listRecords(ctx, t, tn.Rest, `data_type == "tekton.dev/v1.PipelineRun"`)
				prs, err := tn.Tekton.TektonV1().PipelineRuns(ns).List(ctx, metav1.ListOptions{})
				if err != nil {
					return false, "", err
				}
				return len(got) == burst && len(prs.Items) == 0,
					fmt.Sprintf("%d of %d PipelineRuns in Results, %d left in the workspace", len(got), burst, len(prs.Items)), nil
			})
		})
	}
}
