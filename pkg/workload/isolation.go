package workload

import (
	"context"
	"fmt"
	"net"

	corev1 "k8s.io/api/core/v1"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	metaapply "k8s.io/client-go/applyconfigurations/meta/v1"
	networkingapply "k8s.io/client-go/applyconfigurations/networking/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// IsolationPolicyName names the NetworkPolicy in every workload namespace.
const IsolationPolicyName = "pipelines-service-tenant-isolation"

// fieldManager owns what the service applies to workload clusters.
const fieldManager = "pipelines-service"

// Egress is a destination the platform offers tenant pods on purpose,
// beyond cluster DNS: an address block and a TCP port (the stack's git
// forge, for instance).
type Egress struct {
	CIDR string `json:"cidr"`
	Port int32  `json:"port"`
}

// Validate says whether e is a CIDR and a port.
func (e Egress) Validate() error {
	if _, _, err := net.ParseCIDR(e.CIDR); err != nil {
		return fmt.Errorf("egress %q: %w", e.CIDR, err)
	}
	if e.Port < 1 || e.Port > 65535 {
		return fmt.Errorf("egress %s: port %d is not a TCP port", e.CIDR, e.Port)
	}
	return nil
}

// Isolation is the platform's isolation of workload namespaces: the
// NetworkPolicy every one of them gets, with the egress the platform
// offers tenants on purpose.
type Isolation struct {
	Egress []Egress
}

// Policy is the NetworkPolicy that closes a workload namespace:
// its pods accept connections only from pods of the namespace and open
// connections only to pods of the namespace. Everything else, other
// tenants' pods, the nodes (kubelet), the control planes, the registry,
// is denied, because a policy that selects a pod denies what it does not
// allow. It is plain networking.k8s.io/v1, so any cluster whose network
// enforces NetworkPolicy (kube-router on the dev stack; Calico, Cilium or
// kube-router on a real cluster) isolates tenants the same way. What the
// platform offers tenants on purpose is an egress rule naming it: cluster
// DNS (the kube-dns pods of kube-system, on port 53, or 1053 where CoreDNS
// listens unprivileged as on the dev stack), so that names resolve; what
// a name resolves to stays closed unless another rule opens it.
func (iso Isolation) Policy(namespace string) *networkingapply.NetworkPolicyApplyConfiguration {
	samePods := networkingapply.NetworkPolicyPeer().WithPodSelector(metaapply.LabelSelector())
	dnsPods := networkingapply.NetworkPolicyPeer().
		WithNamespaceSelector(metaapply.LabelSelector().WithMatchLabels(map[string]string{namespaceNameLabel: dnsNamespace})).
		WithPodSelector(metaapply.LabelSelector().WithMatchLabels(map[string]string{"k8s-app": "kube-dns"}))
	dns := networkingapply.NetworkPolicyEgressRule().WithTo(dnsPods)
	for _, p := range dnsPorts() {
		dns = dns.WithPorts(networkingapply.NetworkPolicyPort().WithProtocol(*p.Protocol).WithPort(*p.Port))
	}
	egress := []*networkingapply.NetworkPolicyEgressRuleApplyConfiguration{networkingapply.NetworkPolicyEgressRule().WithTo(samePods), dns}
	for _, e := range iso.Egress {
		egress = append(egress, networkingapply.NetworkPolicyEgressRule().
			WithTo(networkingapply.NetworkPolicyPeer().WithIPBlock(networkingapply.IPBlock().WithCIDR(e.CIDR))).
			WithPorts(networkingapply.NetworkPolicyPort().WithProtocol(corev1.ProtocolTCP).WithPort(intstr.FromInt32(e.Port))))
	}
	return networkingapply.NetworkPolicy(IsolationPolicyName, namespace).
		WithLabels(map[string]string{LabelManagedBy: ManagedByValue}).
		WithSpec(networkingapply.NetworkPolicySpec().
			WithPodSelector(metaapply.LabelSelector()).
			WithPolicyTypes(networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress).
			WithIngress(networkingapply.NetworkPolicyIngressRule().WithFrom(samePods)).
			WithEgress(egress...))
}

const (
	namespaceNameLabel = "kubernetes.io/metadata.name"
	dnsNamespace       = "kube-system"
)

// dnsPorts are cluster DNS's ports: 53 and 1053, UDP and TCP.
func dnsPorts() []networkingv1.NetworkPolicyPort {
	var out []networkingv1.NetworkPolicyPort
	for _, port := range []int32{53, 1053} {
		for _, proto := range []corev1.Protocol{corev1.ProtocolUDP, corev1.ProtocolTCP} {
			out = append(out, networkingv1.NetworkPolicyPort{Protocol: ptr.To(proto), Port: ptr.To(intstr.FromInt32(port))})
		}
	}
	return out
}

// spec is the spec of Policy as the apiserver returns it.
func (iso Isolation) spec() networkingv1.NetworkPolicySpec {
	same := []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{}}}
	dns := []networkingv1.NetworkPolicyPeer{{
		NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{namespaceNameLabel: dnsNamespace}},
		PodSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"k8s-app": "kube-dns"}},
	}}
	egress := []networkingv1.NetworkPolicyEgressRule{{To: same}, {To: dns, Ports: dnsPorts()}}
	for _, e := range iso.Egress {
		egress = append(egress, networkingv1.NetworkPolicyEgressRule{
			To:    []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: e.CIDR}}},
			Ports: []networkingv1.NetworkPolicyPort{{Protocol: ptr.To(corev1.ProtocolTCP), Port: ptr.To(intstr.FromInt32(e.Port))}},
		})
	}
	return networkingv1.NetworkPolicySpec{
		PodSelector: metav1.LabelSelector{},
		PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
		Ingress:     []networkingv1.NetworkPolicyIngressRule{{From: same}},
		Egress:      egress,
	}
}

// Differs says policy is missing (nil), or is not the isolation policy
// any more (its spec or its managed-by label was changed, or the
// platform's egress changed since it was written).
func (iso Isolation) Differs(policy *networkingv1.NetworkPolicy) bool {
	return policy == nil || policy.Labels[LabelManagedBy] != ManagedByValue ||
		!equality.Semantic.DeepEqual(policy.Spec, iso.spec())
}

// Ensure puts the isolation policy into the workload namespace, or back
// where it was changed or deleted. It writes only then: it runs before
// every pod the service creates.
func (iso Isolation) Ensure(ctx context.Context, client kubernetes.Interface, namespace string) error {
	policy, err := client.NetworkingV1().NetworkPolicies(namespace).Get(ctx, IsolationPolicyName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		policy, err = nil, nil
	}
	if err != nil || !iso.Differs(policy) {
		return err
	}
	_, err = client.NetworkingV1().NetworkPolicies(namespace).Apply(ctx, iso.Policy(namespace),
		metav1.ApplyOptions{FieldManager: fieldManager, Force: true})
	return err
}
