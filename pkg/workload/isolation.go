package workload

import (
	"context"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metaapply "k8s.io/client-go/applyconfigurations/meta/v1"
	networkingapply "k8s.io/client-go/applyconfigurations/networking/v1"
	"k8s.io/client-go/kubernetes"
)

// IsolationPolicyName names the NetworkPolicy in every workload namespace.
const IsolationPolicyName = "pipelines-service-tenant-isolation"

// fieldManager owns what the service applies to workload clusters.
const fieldManager = "pipelines-service"

// IsolationPolicy is the NetworkPolicy that closes a workload namespace:
// its pods accept connections only from pods of the namespace and open
// connections only to pods of the namespace. Everything else, other
// tenants' pods, the nodes (kubelet), the control planes, the registry,
// is denied, because a policy that selects a pod denies what it does not
// allow. It is plain networking.k8s.io/v1, so any cluster whose network
// enforces NetworkPolicy (kube-router on the dev stack; Calico, Cilium or
// kube-router on a real cluster) isolates tenants the same way. Whatever
// the platform later offers tenants on purpose (DNS, the forge) is added
// here as an egress rule naming it.
func IsolationPolicy(namespace string) *networkingapply.NetworkPolicyApplyConfiguration {
	samePods := networkingapply.NetworkPolicyPeer().WithPodSelector(metaapply.LabelSelector())
	return networkingapply.NetworkPolicy(IsolationPolicyName, namespace).
		WithLabels(map[string]string{LabelManagedBy: ManagedByValue}).
		WithSpec(networkingapply.NetworkPolicySpec().
			WithPodSelector(metaapply.LabelSelector()).
			WithPolicyTypes(networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress).
			WithIngress(networkingapply.NetworkPolicyIngressRule().WithFrom(samePods)).
			WithEgress(networkingapply.NetworkPolicyEgressRule().WithTo(samePods)))
}

// isolationSpec is the spec of IsolationPolicy as the apiserver returns it.
func isolationSpec() networkingv1.NetworkPolicySpec {
	same := []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{}}}
	return networkingv1.NetworkPolicySpec{
		PodSelector: metav1.LabelSelector{},
		PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
		Ingress:     []networkingv1.NetworkPolicyIngressRule{{From: same}},
		Egress:      []networkingv1.NetworkPolicyEgressRule{{To: same}},
	}
}

// IsolationDiffers says policy is missing (nil), or is not the isolation
// policy any more (its spec or its managed-by label was changed).
func IsolationDiffers(policy *networkingv1.NetworkPolicy) bool {
	return policy == nil || policy.Labels[LabelManagedBy] != ManagedByValue ||
		!equality.Semantic.DeepEqual(policy.Spec, isolationSpec())
}

// EnsureIsolation puts the isolation policy into the workload namespace,
// or back where it was changed or deleted. It writes only then: it runs
// before every pod the service creates.
func EnsureIsolation(ctx context.Context, client kubernetes.Interface, namespace string) error {
	policy, err := client.NetworkingV1().NetworkPolicies(namespace).Get(ctx, IsolationPolicyName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		policy, err = nil, nil
	}
	if err != nil || !IsolationDiffers(policy) {
		return err
	}
	_, err = client.NetworkingV1().NetworkPolicies(namespace).Apply(ctx, IsolationPolicy(namespace),
		metav1.ApplyOptions{FieldManager: fieldManager, Force: true})
	return err
}
