package triggers

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"

	"github.com/tektoncd/triggers/pkg/apis/triggers/v1beta1"
	listers "github.com/tektoncd/triggers/pkg/client/listers/triggers/v1beta1"
	corev1 "k8s.io/api/core/v1"
)

// DefaultServiceAccount is a listener's identity when it names none, as
// upstream's default configuration has it.
const DefaultServiceAccount = "default"

// Identity is a ServiceAccount of the tenant's workspace the sink acts as:
// the listener's serviceAccountName, or a trigger's. Its rights are what
// the tenant's own RBAC grants it there, and nothing anywhere else: kcp
// accepts a ServiceAccount's token only in the workspace that issued it.
type Identity struct {
	Namespace, ServiceAccount string
}

// ServiceAccountOf is the listener's identity's ServiceAccount: the
// serviceAccountName of its kubernetesResource pod template (upstream runs
// the sink pod with it, as Triggers' examples rely on), else its own
// serviceAccountName, else the default.
func ServiceAccountOf(el *v1beta1.EventListener) string {
	var podSA string
	if kr := el.Spec.Resources.KubernetesResource; kr != nil {
		podSA = kr.Template.Spec.ServiceAccountName
	}
	return cmp.Or(podSA, el.Spec.ServiceAccountName, DefaultServiceAccount)
}

// Identities are the ServiceAccounts a listener acts as: its own, in its
// namespace, for triggers that name none (upstream: the sink pod's
// identity), and each trigger's serviceAccountName in the trigger's
// namespace (upstream: impersonated by the sink).
func Identities(el *v1beta1.EventListener, triggers listers.TriggerLister) ([]Identity, error) {
	ts, err := ListenerTriggers(el, triggers)
	if err != nil {
		return nil, err
	}
	for _, g := range el.Spec.TriggerGroups {
		gts, err := GroupTriggers(el, g, triggers)
		if err != nil {
			return nil, err
		}
		ts = append(ts, gts...)
	}
	out := []Identity{{Namespace: el.Namespace, ServiceAccount: ServiceAccountOf(el)}}
	for _, t := range ts {
		if t.Spec.ServiceAccountName != "" {
			out = append(out, Identity{Namespace: t.Namespace, ServiceAccount: t.Spec.ServiceAccountName})
		}
	}
	slices.SortFunc(out, func(a, b Identity) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.ServiceAccount, b.ServiceAccount))
	})
	return slices.Compact(out), nil
}

// tokenSecretPrefix starts the name of the Secret holding a
// ServiceAccount's token for the sink.
const tokenSecretPrefix = "pipelines-service-trigger-token-"

// TokenSecretName is the Secret, in the ServiceAccount's namespace, whose
// token kcp's token controller fills for the sink to act as sa.
func TokenSecretName(sa string) string {
	name := tokenSecretPrefix + sa
	if len(name) <= 253 {
		return name
	}
	sum := sha256.Sum256([]byte(sa))
	return name[:240] + "-" + hex.EncodeToString(sum[:])[:12]
}

// TokenOf is the token in secret if kcp issued it for sa: a Secret of the
// right name, type and ServiceAccount annotation, filled by the token
// controller (which also sets the ServiceAccount's UID).
func TokenOf(secret *corev1.Secret, sa string) (string, error) {
	switch {
	case secret.Name != TokenSecretName(sa):
		return "", fmt.Errorf("secret %s is not the token secret of %s", secret.Name, sa)
	case secret.Type != corev1.SecretTypeServiceAccountToken:
		return "", fmt.Errorf("secret %s is of type %q, not %s", secret.Name, secret.Type, corev1.SecretTypeServiceAccountToken)
	case secret.Annotations[corev1.ServiceAccountNameKey] != sa:
		return "", fmt.Errorf("secret %s is not for ServiceAccount %s", secret.Name, sa)
	case secret.Annotations[corev1.ServiceAccountUIDKey] == "" || len(secret.Data[corev1.ServiceAccountTokenKey]) == 0:
		return "", fmt.Errorf("secret %s has no token yet", secret.Name)
	}
	return string(secret.Data[corev1.ServiceAccountTokenKey]), nil
}
