// Package triggers holds what the EventListener reconciler and the shared
// sink agree on about Tekton Triggers in tenant workspaces: the resources,
// which core interceptors the platform serves, which triggers may run at
// all (a forge interceptor must verify a signature), which triggers a
// listener processes, and the token Secret that carries a listener's
// identity.
package triggers

import (
	"fmt"
	"slices"

	"github.com/tektoncd/triggers/pkg/apis/triggers/v1alpha1"
	"github.com/tektoncd/triggers/pkg/apis/triggers/v1beta1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// The Triggers resources exported to tenants. Interceptor and
// ClusterInterceptor have no v1beta1 in Triggers v0.35.0.
var (
	EventListeners         = v1beta1.SchemeGroupVersion.WithResource("eventlisteners")
	Triggers               = v1beta1.SchemeGroupVersion.WithResource("triggers")
	TriggerBindings        = v1beta1.SchemeGroupVersion.WithResource("triggerbindings")
	ClusterTriggerBindings = v1beta1.SchemeGroupVersion.WithResource("clustertriggerbindings")
	TriggerTemplates       = v1beta1.SchemeGroupVersion.WithResource("triggertemplates")
	Interceptors           = v1alpha1.SchemeGroupVersion.WithResource("interceptors")
	ClusterInterceptors    = v1alpha1.SchemeGroupVersion.WithResource("clusterinterceptors")
)

// Resources are all of them, for informers.
var Resources = []schema.GroupVersionResource{EventListeners, Triggers, TriggerBindings, ClusterTriggerBindings, TriggerTemplates, Interceptors, ClusterInterceptors}

// PathPrefix starts every listener's path at the sink and at the front
// door: /hooks/<workspace>/<namespace>/<eventlistener>, where <workspace>
// is the logical cluster's name (stable, unlike a workspace's path).
const PathPrefix = "/hooks/"

// MaxPayload is the largest event accepted (GitHub sends up to 25 MB).
const MaxPayload = 25 << 20

// CoreInterceptors are the ClusterInterceptors every workspace has without
// installing anything: the sink runs them in process, reading secrets of
// the workspace whose event it handles, and nothing else.
var CoreInterceptors = []string{"bitbucket", "cel", "github", "gitlab", "slack"}

// signing are the core interceptors that verify a forge's signature with
// their secretRef. Upstream lets them pass any payload when secretRef is
// missing; here such a trigger never runs.
var signing = []string{"bitbucket", "github", "gitlab"}

// CoreInterceptorHost is the reserved host of the core interceptors'
// URLs: the sink's HTTP client answers it in process, so no request for it
// ever leaves the sink.
const CoreInterceptorHost = "core-interceptors.pipelines-service.internal"

// CoreInterceptorURL is the address of a core interceptor.
func CoreInterceptorURL(name string) string { return "http://" + CoreInterceptorHost + "/" + name }

// IsCore tells whether name is a core interceptor.
func IsCore(name string) bool { return slices.Contains(CoreInterceptors, name) }

// signingRef is the signing core interceptor i refers to ("" if none).
func signingRef(i *v1beta1.TriggerInterceptor) string {
	if i == nil || i.Webhook != nil {
		return ""
	}
	if i.Ref.Kind != "" && i.Ref.Kind != v1beta1.ClusterInterceptorKind {
		return ""
	}
	if slices.Contains(signing, i.Ref.Name) {
		return i.Ref.Name
	}
	return ""
}

// hasSecretRef tells whether interceptor params name a secret and key.
func hasSecretRef(i *v1beta1.TriggerInterceptor) bool {
	for _, p := range i.Params {
		if p.Name != "secretRef" {
			continue
		}
		var ref v1beta1.SecretRef
		if err := unmarshalParam(p, &ref); err != nil {
			return false
		}
		return ref.SecretName != "" && ref.SecretKey != ""
	}
	return false
}

// Unsigned is the first forge interceptor of a chain that has no
// secretRef: it would accept any payload, signed or not, so the chain must
// not run. The error names the interceptor by its place in the chain.
func Unsigned(chain []*v1beta1.TriggerInterceptor) error {
	for n, i := range chain {
		if name := signingRef(i); name != "" && !hasSecretRef(i) {
			return fmt.Errorf("interceptors[%d] (%s) has no secretRef: it would accept unsigned payloads", n, name)
		}
	}
	return nil
}

// Unit is what the sink runs one interceptor chain for: a trigger, or a
// trigger group whose chain runs before its selected triggers.
type Unit struct {
	// ID is the TriggerID interceptors see: namespaces/<ns>/triggers/<name>
	// or namespaces/<ns>/triggerGroups/<name>.
	ID string
	// Namespace is where the chain's secrets are read.
	Namespace    string
	Interceptors []*v1beta1.TriggerInterceptor
}

// Verifier is the first signing interceptor of the chain before any
// webhook interceptor (which may rewrite the payload): the one that checks
// the forge's signature on the payload as received. Nil when the chain
// verifies no signature first (CEL, Slack or custom interceptors only).
func (u Unit) Verifier() *v1beta1.TriggerInterceptor {
	for _, i := range u.Interceptors {
		if i == nil || i.Webhook != nil {
			return nil
		}
		if signingRef(i) != "" {
			return i
		}
	}
	return nil
}
