package devstack

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	tektonclient "github.com/tektoncd/pipeline/pkg/client/clientset/versioned"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/clientcmd"
	"knative.dev/pkg/apis"
	"sigs.k8s.io/yaml"
)

// Demo runs examples/pipelinerun.yaml in the demo tenant workspace, as the
// tenant, and reports its outcome, TaskRuns and results.
func (s *Stack) Demo(ctx context.Context, out io.Writer) error {
	rc, err := clientcmd.BuildConfigFromFlags("", s.cfg.TenantKubeconfig(DemoTenant))
	if err != nil {
		return err
	}
	client, err := tektonclient.NewForConfig(rc)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(filepath.Join(s.cfg.RepoRoot, "examples", "pipelinerun.yaml"))
	if err != nil {
		return err
	}
	pr := &v1.PipelineRun{}
	if err := yaml.UnmarshalStrict(data, pr); err != nil {
		return fmt.Errorf("examples/pipelinerun.yaml: %w", err)
	}
	created, err := client.TektonV1().PipelineRuns("default").Create(ctx, pr, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("create PipelineRun in root:%s: %w", DemoTenant, err)
	}
	fmt.Fprintf(out, "PipelineRun root:%s default/%s created\n", DemoTenant, created.Name)
	var cond *apis.Condition
	err = wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 5*time.Minute, true, func(ctx context.Context) (bool, error) {
		pr, err = client.TektonV1().PipelineRuns("default").Get(ctx, created.Name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		cond = pr.Status.GetCondition(apis.ConditionSucceeded)
		return cond != nil && !cond.IsUnknown(), nil
	})
	if err != nil {
		return fmt.Errorf("PipelineRun %s did not finish: %w", created.Name, err)
	}
	fmt.Fprintf(out, "PipelineRun %s: %s (%s) in %s\n", created.Name, cond.Reason, cond.Message, pr.Status.CompletionTime.Sub(pr.Status.StartTime.Time))
	for _, ref := range pr.Status.ChildReferences {
		fmt.Fprintf(out, "  TaskRun %s (pipeline task %s)\n", ref.Name, ref.PipelineTaskName)
	}
	for _, r := range pr.Status.Results {
		fmt.Fprintf(out, "  result %s = %q\n", r.Name, r.Value.StringVal)
	}
	if !cond.IsTrue() {
		return fmt.Errorf("PipelineRun %s failed: %s", created.Name, cond.Message)
	}
	return nil
}
