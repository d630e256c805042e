package reconciler

import (
	"context"
	"errors"
	"time"

	kcpcache "github.com/kcp-dev/apimachinery/v2/pkg/cache"
	"go.uber.org/zap"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"knative.dev/pkg/apis"
	"knative.dev/pkg/controller"
)

// Resource is what the skeleton needs of a kind's Go type: an object with
// metadata that copies itself.
type Resource interface {
	metav1.Object
	runtime.Object
}

// Kind is one kind's part of a reconcile, in the shape of knative's
// generated reconcilers (ReconcileKind, FinalizeKind); Skeleton does the
// rest, the same for every kind.
type Kind[T Resource] interface {
	// New is an empty object to decode into.
	New() T
	// Gone: the object of key is not in the informer any more.
	Gone(ctx context.Context, key string) error
	// Undecodable: the object the schema admitted does not decode into T;
	// err says why. It is reported on the object, not retried.
	Undecodable(ctx context.Context, o *Object, err error) error
	// FinalizeKind: the object is being deleted.
	FinalizeKind(ctx context.Context, o *Object, obj T) error
	// ReconcileKind drives obj toward its spec, changing its labels,
	// annotations and status in place, and says when to look again. A
	// permanent error (knative's controller.NewPermanentError) ends the
	// reconcile without a retry once obj says why.
	ReconcileKind(ctx context.Context, o *Object, obj T) (time.Duration, error)
	// Status is obj's status, compared before and after ReconcileKind
	// and written when it changed.
	Status(obj T) any
	// Succeeded is obj's Succeeded condition (nil if none): a change of
	// it is an Event.
	Succeeded(obj T) *apis.Condition
}

// Skeleton reconciles the objects of one kind: get and decode, finalize
// the deleted, reconcile the others, then write what changed (labels and
// annotations, then status) and emit an Event when the Succeeded condition
// changed.
type Skeleton[T Resource] struct {
	// Component names the controller in Events.
	Component string
	Lister    kcpcache.GenericClusterLister
	Objects   Objects
	// Events, when set, gets an Event for each change of Succeeded.
	Events *Events
	Kind   Kind[T]
	Log    *zap.SugaredLogger
}

// Reconcile is a ReconcileFunc: it reconciles the object of a
// cluster-aware key and returns when to look again.
func (s Skeleton[T]) Reconcile(ctx context.Context, key string) (time.Duration, error) {
	obj := s.Kind.New()
	o, err := Get(s.Lister, key, obj)
	if o == nil && err == nil {
		return 0, s.Kind.Gone(ctx, key)
	}
	if o == nil {
		return 0, err
	}
	o.Log = s.Log.With("workspace", o.Cluster.String(), "namespace", o.Namespace, "name", o.Name)
	if errors.Is(err, ErrUndecodable) {
		o.Log.Errorw("object does not decode into its Go type", "kind", o.Unstructured.GetKind(), "error", err)
		return 0, s.Kind.Undecodable(ctx, o, err)
	}
	if obj.GetDeletionTimestamp() != nil {
		return 0, s.Kind.FinalizeKind(ctx, o, obj)
	}
	before := obj.DeepCopyObject().(T)
	requeue, err := s.Kind.ReconcileKind(ctx, o, obj)
	if werr := s.write(ctx, o, before, obj); werr != nil {
		return 0, werr
	}
	if controller.IsPermanentError(err) {
		o.Log.Infow("reconcile ended for good", "error", err)
		return 0, nil
	}
	return requeue, err
}

// write writes what ReconcileKind changed: labels and annotations, then
// status (on the object the first write returned), and an Event when the
// Succeeded condition changed.
func (s Skeleton[T]) write(ctx context.Context, o *Object, before, after T) error {
	if !equality.Semantic.DeepEqual(before.GetLabels(), after.GetLabels()) || !equality.Semantic.DeepEqual(before.GetAnnotations(), after.GetAnnotations()) {
		updated, err := s.Objects.UpdateMeta(ctx, o.Cluster, o.Unstructured, after.GetLabels(), after.GetAnnotations())
		if err != nil {
			return err
		}
		o.Unstructured = updated
	}
	if equality.Semantic.DeepEqual(s.Kind.Status(before), s.Kind.Status(after)) {
		return nil
	}
	if err := s.Objects.UpdateStatus(ctx, o.Cluster, o.Unstructured, s.Kind.Status(after)); err != nil {
		return err
	}
	if s.Events != nil {
		s.Events.EmitRun(ctx, o.Cluster, s.Component, s.Kind.Succeeded(before), s.Kind.Succeeded(after), after)
	}
	return nil
}
