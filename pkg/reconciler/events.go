package reconciler

import (
	"context"
	"sync"

	"github.com/kcp-dev/logicalcluster/v3"
	pipelinev1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	"github.com/tektoncd/pipeline/pkg/reconciler/events/k8sevent"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/flowcontrol"
	"knative.dev/pkg/apis"
	"knative.dev/pkg/controller"
)

// EventQPS and EventBurst bound the Events the controller writes to kcp,
// across all workspaces. Events are best effort (client-go's broadcaster
// drops them when its queue is full); run writes are not, and on kcp every
// request of either kind pays the same authorisation round trip, so events
// get a fixed share and wait for it.
const (
	EventQPS   = 5
	EventBurst = 20
)

// Events records Kubernetes Events into tenant workspaces through
// client-go's EventBroadcaster, one per workspace and component, made on
// first use and kept: its correlator aggregates repeated events into one
// with a count, and its spam filter caps what one object gets. Their sinks
// share one rate limiter.
type Events struct {
	ctx     context.Context
	log     *zap.SugaredLogger
	kubeFor func(logicalcluster.Name) (kubernetes.Interface, error)
	limiter flowcontrol.RateLimiter
	scheme  *runtime.Scheme

	mu           sync.Mutex
	recorders    map[recorderKey]record.EventRecorder
	broadcasters []record.EventBroadcaster
}

type recorderKey struct {
	cluster   logicalcluster.Name
	component string
}

// NewEvents returns the recorders of one controller process; kubeFor makes
// a workspace's client. They stop with ctx.
func NewEvents(ctx context.Context, log *zap.SugaredLogger, kubeFor func(logicalcluster.Name) (kubernetes.Interface, error)) *Events {
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = pipelinev1.AddToScheme(scheme)
	e := &Events{
		ctx: ctx, log: log, kubeFor: kubeFor, scheme: scheme,
		limiter:   flowcontrol.NewTokenBucketRateLimiter(EventQPS, EventBurst),
		recorders: map[recorderKey]record.EventRecorder{},
	}
	go func() {
		<-ctx.Done()
		e.mu.Lock()
		defer e.mu.Unlock()
		for _, b := range e.broadcasters {
			b.Shutdown()
		}
	}()
	return e
}

// For returns the recorder of component in the workspace.
func (e *Events) For(cluster logicalcluster.Name, component string) (record.EventRecorder, error) {
	key := recorderKey{cluster, component}
	e.mu.Lock()
	defer e.mu.Unlock()
	if r, ok := e.recorders[key]; ok {
		return r, nil
	}
	client, err := e.kubeFor(cluster)
	if err != nil {
		return nil, err
	}
	b := record.NewBroadcaster(record.WithContext(e.ctx))
	b.StartRecordingToSink(&limitedSink{ctx: e.ctx, limiter: e.limiter, EventSinkImpl: &typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")}})
	r := b.NewRecorder(e.scheme, corev1.EventSource{Component: component})
	e.broadcasters = append(e.broadcasters, b)
	e.recorders[key] = r
	return r, nil
}

// Warn puts a Warning Event on a tenant object; failing to is logged. A
// nil Events records nothing.
func (e *Events) Warn(cluster logicalcluster.Name, component string, obj runtime.Object, reason, message string) {
	if e == nil {
		return
	}
	r, err := e.For(cluster, component)
	if err != nil {
		e.log.Infow("cannot record event", "workspace", cluster, "reason", reason, "error", err)
		return
	}
	r.Event(obj, corev1.EventTypeWarning, reason, message)
}

// EmitRun records Tekton's Kubernetes events for a run whose Succeeded
// condition went from before to after (Started, Running, Succeeded,
// Failed, ...), with Tekton's own emitter. The broadcaster writes them in
// the background, off the reconcile's path. A nil Events records nothing.
func (e *Events) EmitRun(ctx context.Context, cluster logicalcluster.Name, component string, before, after *apis.Condition, run runtime.Object) {
	if e == nil {
		return
	}
	r, err := e.For(cluster, component)
	if err != nil {
		e.log.Infow("cannot record events", "workspace", cluster, "error", err)
		return
	}
	k8sevent.EmitK8sEvents(controller.WithEventRecorder(ctx, r), before, after, run)
}

// limitedSink waits for the shared limiter before each write.
type limitedSink struct {
	ctx     context.Context
	limiter flowcontrol.RateLimiter
	*typedcorev1.EventSinkImpl
}

func (s *limitedSink) Create(event *corev1.Event) (*corev1.Event, error) {
	if err := s.limiter.Wait(s.ctx); err != nil {
		return nil, err
	}
	return s.EventSinkImpl.Create(event)
}

func (s *limitedSink) Update(event *corev1.Event) (*corev1.Event, error) {
	if err := s.limiter.Wait(s.ctx); err != nil {
		return nil, err
	}
	return s.EventSinkImpl.Update(event)
}

func (s *limitedSink) Patch(event *corev1.Event, data []byte) (*corev1.Event, error) {
	if err := s.limiter.Wait(s.ctx); err != nil {
		return nil, err
	}
	return s.EventSinkImpl.Patch(event, data)
}
