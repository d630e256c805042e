package reconciler

import (
	"context"
	"fmt"
	"time"

	"github.com/kcp-dev/logicalcluster/v3"
	"github.com/tektoncd/pipeline/pkg/reconciler/events/k8sevent"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/record"
	"knative.dev/pkg/apis"
	"knative.dev/pkg/controller"
)

// EmitRunEvents records Tekton's Kubernetes events for a run whose
// Succeeded condition went from before to after (Started, Running,
// Succeeded, Failed, ...) in the run's workspace, through client.
// Events are written in the background, off the reconcile's path; failing
// to record one is logged, never a reconcile error. kubeFor makes the
// workspace's client.
func EmitRunEvents(ctx context.Context, log *zap.SugaredLogger, kubeFor func(logicalcluster.Name) (kubernetes.Interface, error), cluster logicalcluster.Name, component string, before, after *apis.Condition, run runtime.Object) {
	client, err := kubeFor(cluster)
	if err != nil {
		log.Warnw("cannot record events", "error", err)
		return
	}
	recorder := NewWorkspaceRecorder(ctx, log, client, component)
	run = run.DeepCopyObject()
	go k8sevent.EmitK8sEvents(controller.WithEventRecorder(ctx, recorder), before.DeepCopy(), after.DeepCopy(), run)
}

// NewWorkspaceRecorder is a record.EventRecorder writing Events, as
// component, into the workspace client is for.
func NewWorkspaceRecorder(ctx context.Context, log *zap.SugaredLogger, client kubernetes.Interface, component string) record.EventRecorder {
	return &workspaceRecorder{ctx: ctx, log: log, client: client, component: component}
}

// workspaceRecorder is a record.EventRecorder writing Events into one
// tenant workspace (events are a claimed resource of the export).
type workspaceRecorder struct {
	ctx       context.Context
	log       *zap.SugaredLogger
	client    kubernetes.Interface
	component string
}

func (r *workspaceRecorder) Event(object runtime.Object, eventtype, reason, message string) {
	r.record(object, nil, eventtype, reason, message)
}

func (r *workspaceRecorder) Eventf(object runtime.Object, eventtype, reason, messageFmt string, args ...interface{}) {
	r.record(object, nil, eventtype, reason, fmt.Sprintf(messageFmt, args...))
}

func (r *workspaceRecorder) AnnotatedEventf(object runtime.Object, annotations map[string]string, eventtype, reason, messageFmt string, args ...interface{}) {
	r.record(object, annotations, eventtype, reason, fmt.Sprintf(messageFmt, args...))
}

func (r *workspaceRecorder) record(object runtime.Object, annotations map[string]string, eventtype, reason, message string) {
	obj, err := meta.Accessor(object)
	if err != nil {
		r.log.Warnw("cannot record event", "reason", reason, "error", err)
		return
	}
	gvk := object.GetObjectKind().GroupVersionKind()
	now := metav1.NewTime(time.Now())
	event := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: obj.GetName() + ".",
			Namespace:    obj.GetNamespace(),
			Annotations:  annotations,
		},
		InvolvedObject: corev1.ObjectReference{
			APIVersion: gvk.GroupVersion().String(), Kind: gvk.Kind,
			Namespace: obj.GetNamespace(), Name: obj.GetName(), UID: obj.GetUID(), ResourceVersion: obj.GetResourceVersion(),
		},
		Type: eventtype, Reason: reason, Message: message, Count: 1,
		FirstTimestamp: now, LastTimestamp: now,
		Source:              corev1.EventSource{Component: r.component},
		ReportingController: r.component,
	}
	if _, err := r.client.CoreV1().Events(obj.GetNamespace()).Create(r.ctx, event, metav1.CreateOptions{}); err != nil {
		r.log.Warnw("cannot record event", "reason", reason, "error", err)
	}
}
