package taskrun

import (
	"context"
	remoteresource "github.com/tektoncd/pipeline/pkg/remoteresolution/resource"
	"k8s.io/client-go/kubernetes"
	kubefake "k8s.io/client-go/kubernetes/fake"
	"testing"

	"github.com/kcp-dev/logicalcluster/v3"
	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	"github.com/tektoncd/pipeline/pkg/apis/pipeline/v1beta1"
	tektonclient "github.com/tektoncd/pipeline/pkg/client/clientset/versioned"
	fakeclient "github.com/tektoncd/pipeline/pkg/client/clientset/versioned/fake"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestStepActionsResolveOnEveryReconcile resolves a step that references
// a StepAction with string and object params (the TaskRun's object value
// partly overriding the Task's default), then prepares the same TaskRun
// again after its status was written (as the next reconcile does) and
// expects the same merged step, params applied.
func TestStepActionsResolveOnEveryReconcile(t *testing.T) {
	action := &v1beta1.StepAction{
		ObjectMeta: metav1.ObjectMeta{Name: "greet", Namespace: "ns"},
		Spec: v1beta1.StepActionSpec{
			Image: "busybox",
			Params: v1.ParamSpecs{
				{Name: "who", Default: v1.NewStructuredValues("world")},
				{Name: "action-obj", Type: v1.ParamTypeObject, Properties: map[string]v1.PropertySpec{"a": {}, "b": {}},
					Default: v1.NewObject(map[string]string{"a": "action a", "b": "action b"})},
			},
			Env:    []corev1.EnvVar{{Name: "WHO", Value: "$(params.who)"}, {Name: "A", Value: "$(params.action-obj.a)"}, {Name: "B", Value: "$(params.action-obj.b)"}},
			Script: "echo $WHO $A $B",
		},
	}
	tr := &v1.TaskRun{
		ObjectMeta: metav1.ObjectMeta{Name: "run", Namespace: "ns"},
		Spec: v1.TaskRunSpec{
			Params: v1.Params{{Name: "obj", Value: *v1.NewObject(map[string]string{"b": "run b"})}},
			TaskSpec: &v1.TaskSpec{
				Params: v1.ParamSpecs{{Name: "obj", Type: v1.ParamTypeObject, Properties: map[string]v1.PropertySpec{"a": {}, "b": {}},
					Default: v1.NewObject(map[string]string{"a": "task a", "b": "task b"})}},
				Steps: []v1.Step{{Name: "s", Ref: &v1.Ref{Name: "greet"}, Params: v1.Params{
					{Name: "who", Value: *v1.NewStructuredValues("tenant")},
					{Name: "action-obj", Value: *v1.NewStructuredValues("$(params.obj[*])")},
				}}},
			},
		},
	}
	fetched := 0
	c := &Controller{
		stepActions: func(logicalcluster.Name) (tektonclient.Interface, error) {
			fetched++
			return fakeclient.NewSimpleClientset(action), nil
		},
		workspaceKube: func(logicalcluster.Name) (kubernetes.Interface, error) { return kubefake.NewClientset(), nil },
		resolution:    noRemote{},
	}
	want := map[string]string{"WHO": "tenant", "A": "task a", "B": "run b"}
	ctx := context.Background()
	for attempt := 1; attempt <= 2; attempt++ {
		rtr, err := c.prepare(ctx, logicalcluster.Name("tenant"), "tenant|default|run", tr)
		if rtr == nil {
			t.Fatalf("attempt %d: prepare failed: %v %v", attempt, err, tr.Status.GetCondition("Succeeded"))
		}
		ts := substitute(ctx, tr, rtr, nil)
		step := ts.Steps[0]
		if step.Ref != nil || step.Image != "busybox" {
			t.Fatalf("attempt %d: step not merged with its StepAction: %+v", attempt, step)
		}
		for _, e := range step.Env {
			if want[e.Name] != e.Value {
				t.Errorf("attempt %d: env %s = %q, want %q", attempt, e.Name, e.Value, want[e.Name])
			}
		}
		tr.Status.TaskSpec = ts
	}
	if fetched != 2 {
		t.Errorf("StepAction read %d times, want once per reconcile (2)", fetched)
	}
}

// noRemote serves no remote reference: the test's are local.
type noRemote struct{}

func (noRemote) Requester(logicalcluster.Name, string, string, func()) remoteresource.Requester {
	return nil
}
