package eventlistener

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/tektoncd/triggers/pkg/apis/triggers/v1beta1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"knative.dev/pkg/apis"

	"github.com/pipelines-service/pipelines-service/pkg/triggers"
	"github.com/pipelines-service/pipelines-service/pkg/workload"
)

// serviceAccountRecheck is how soon a listener whose ServiceAccount does
// not exist is looked at again.
const serviceAccountRecheck = 10 * time.Second

// mintIdentity makes sure the sink can act as id: a token Secret of the
// ServiceAccount, which kcp's token controller fills with a token valid in
// this workspace only. Upstream has tenants make such identities by hand
// and bind them to cluster-wide roles; here the ServiceAccount needs only
// what its listener's templates create. It returns nil when the token is
// there, else the Ready condition and when to look again.
func mintIdentity(ctx context.Context, kube kubernetes.Interface, el *v1beta1.EventListener, id triggers.Identity) (*apis.Condition, time.Duration) {
	pending := func(reason, format string, args ...any) (*apis.Condition, time.Duration) {
		cond := notReady(reason, fmt.Sprintf(format, args...))
		if reason == ReasonServiceAccountGone {
			return &cond, serviceAccountRecheck
		}
		return &cond, identityRecheck
	}
	if _, err := kube.CoreV1().ServiceAccounts(id.Namespace).Get(ctx, id.ServiceAccount, metav1.GetOptions{}); apierrors.IsNotFound(err) {
		return pending(ReasonServiceAccountGone, "ServiceAccount %s/%s does not exist: create it, and grant it what the listener's templates create", id.Namespace, id.ServiceAccount)
	} else if err != nil {
		return pending(ReasonIdentityPending, "ServiceAccount %s/%s: %v", id.Namespace, id.ServiceAccount, err)
	}
	secrets := kube.CoreV1().Secrets(id.Namespace)
	name := triggers.TokenSecretName(id.ServiceAccount)
	secret, err := secrets.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = secrets.Create(ctx, tokenSecret(el, id), metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return pending(ReasonIdentityPending, "token Secret %s/%s: %v", id.Namespace, name, err)
		}
		return pending(ReasonIdentityPending, "waiting for kcp to issue the token of ServiceAccount %s/%s", id.Namespace, id.ServiceAccount)
	}
	if err != nil {
		return pending(ReasonIdentityPending, "token Secret %s/%s: %v", id.Namespace, name, err)
	}
	if owned := withOwner(secret, el, id); owned != nil {
		if _, err := secrets.Update(ctx, owned, metav1.UpdateOptions{}); err != nil {
			return pending(ReasonIdentityPending, "token Secret %s/%s: %v", id.Namespace, name, err)
		}
	}
	if _, err := triggers.TokenOf(secret, id.ServiceAccount); err != nil {
		return pending(ReasonIdentityPending, "%v", err)
	}
	return nil, 0
}

// tokenSecret asks kcp for a token of id's ServiceAccount. It belongs to
// the listener when in its namespace, so that kcp's garbage collector
// removes it with the last listener using it (an owner in another
// namespace would read as missing and have it collected at once).
func tokenSecret(el *v1beta1.EventListener, id triggers.Identity) *corev1.Secret {
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name: triggers.TokenSecretName(id.ServiceAccount), Namespace: id.Namespace,
			Labels:      map[string]string{workload.LabelManagedBy: workload.ManagedByValue},
			Annotations: map[string]string{corev1.ServiceAccountNameKey: id.ServiceAccount},
		},
		Type: corev1.SecretTypeServiceAccountToken,
	}
	if id.Namespace == el.Namespace {
		s.OwnerReferences = []metav1.OwnerReference{ownerOf(el)}
	}
	return s
}

// withOwner is secret with the listener added to its owners when another
// listener made it, nil when nothing is to change.
func withOwner(secret *corev1.Secret, el *v1beta1.EventListener, id triggers.Identity) *corev1.Secret {
	if id.Namespace != el.Namespace || slices.ContainsFunc(secret.OwnerReferences, func(o metav1.OwnerReference) bool { return o.UID == el.UID }) {
		return nil
	}
	out := secret.DeepCopy()
	out.OwnerReferences = append(out.OwnerReferences, ownerOf(el))
	return out
}

func ownerOf(el *v1beta1.EventListener) metav1.OwnerReference {
	return metav1.OwnerReference{APIVersion: v1beta1.SchemeGroupVersion.String(), Kind: "EventListener", Name: el.Name, UID: el.UID}
}
