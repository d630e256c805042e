package resolution

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
)

// namespaceKube is the only Kubernetes client resolvers get: the run's
// workspace, and in it only reads of Secrets and ServiceAccounts of the
// run's namespace. A resolver asking for anything else (another
// namespace's secret, say through a configuration naming it) is refused;
// a call outside these two panics on the nil interface and fails the
// request (Service.safely), never the controller.
type namespaceKube struct {
	kubernetes.Interface // nil: nothing else is served
	namespace            string
	core                 corev1client.CoreV1Interface
}

func lockedKube(client kubernetes.Interface, namespace string) kubernetes.Interface {
	return &namespaceKube{namespace: namespace, core: client.CoreV1()}
}

func (k *namespaceKube) CoreV1() corev1client.CoreV1Interface {
	return &namespaceCore{namespace: k.namespace, core: k.core}
}

type namespaceCore struct {
	corev1client.CoreV1Interface // nil
	namespace                    string
	core                         corev1client.CoreV1Interface
}

func (c *namespaceCore) Secrets(namespace string) corev1client.SecretInterface {
	if namespace != c.namespace {
		return refusedSecrets{namespace: namespace, own: c.namespace}
	}
	return readOnlySecrets{SecretInterface: c.core.Secrets(namespace)}
}

func (c *namespaceCore) ServiceAccounts(namespace string) corev1client.ServiceAccountInterface {
	if namespace != c.namespace {
		return refusedServiceAccounts{namespace: namespace, own: c.namespace}
	}
	return readOnlyServiceAccounts{ServiceAccountInterface: c.core.ServiceAccounts(namespace)}
}

type readOnlySecrets struct{ corev1client.SecretInterface }

func (r readOnlySecrets) Get(ctx context.Context, name string, opts metav1.GetOptions) (*corev1.Secret, error) {
	return r.SecretInterface.Get(ctx, name, opts)
}

type readOnlyServiceAccounts struct {
	corev1client.ServiceAccountInterface
}

func (r readOnlyServiceAccounts) Get(ctx context.Context, name string, opts metav1.GetOptions) (*corev1.ServiceAccount, error) {
	return r.ServiceAccountInterface.Get(ctx, name, opts)
}

type refusedSecrets struct {
	corev1client.SecretInterface // nil
	namespace, own               string
}

func (r refusedSecrets) Get(_ context.Context, name string, _ metav1.GetOptions) (*corev1.Secret, error) {
	return nil, apierrors.NewForbidden(corev1.Resource("secrets"), name,
		fmt.Errorf("a resolver reads secrets of the run's namespace %q only, not of %q", r.own, r.namespace))
}

type refusedServiceAccounts struct {
	corev1client.ServiceAccountInterface // nil
	namespace, own                       string
}

func (r refusedServiceAccounts) Get(_ context.Context, name string, _ metav1.GetOptions) (*corev1.ServiceAccount, error) {
	return nil, apierrors.NewForbidden(corev1.Resource("serviceaccounts"), name,
		fmt.Errorf("a resolver reads service accounts of the run's namespace %q only, not of %q", r.own, r.namespace))
}
