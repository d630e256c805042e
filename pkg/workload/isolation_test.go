package workload

import (
	"context"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
)

func TestEnsureIsolation(t *testing.T) {
	const ns = "ps-tenant-default"
	iso := Isolation{Egress: []Egress{{CIDR: "10.244.0.1/32", Port: 3000}}}
	isolated := func() *networkingv1.NetworkPolicy {
		return &networkingv1.NetworkPolicy{
			ObjectMeta: metav1.ObjectMeta{Name: IsolationPolicyName, Namespace: ns, Labels: map[string]string{LabelManagedBy: ManagedByValue}},
			Spec:       iso.spec(),
		}
	}
	withoutForge := isolated()
	withoutForge.Spec = Isolation{}.spec()
	opened := isolated()
	opened.Spec.Egress = append(opened.Spec.Egress, networkingv1.NetworkPolicyEgressRule{}) // allow all egress
	ingressOnly := isolated()
	ingressOnly.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
	unlabelled := isolated()
	unlabelled.Labels = nil
	for _, tc := range []struct {
		name      string
		existing  []runtime.Object
		wantWrite bool
	}{
		{name: "missing: created", wantWrite: true},
		{name: "in place: no write", existing: []runtime.Object{isolated()}},
		{name: "egress opened: put back", existing: []runtime.Object{opened}, wantWrite: true},
		{name: "egress type dropped: put back", existing: []runtime.Object{ingressOnly}, wantWrite: true},
		{name: "managed-by label removed: put back", existing: []runtime.Object{unlabelled}, wantWrite: true},
		{name: "platform egress added since: rewritten", existing: []runtime.Object{withoutForge}, wantWrite: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client := fake.NewClientset(tc.existing...)
			if err := iso.Ensure(context.Background(), client, ns); err != nil {
				t.Fatal(err)
			}
			wrote := false
			for _, a := range client.Actions() {
				if a.GetVerb() != "get" {
					wrote = true
				}
			}
			if wrote != tc.wantWrite {
				t.Errorf("wrote = %v, want %v (actions %v)", wrote, tc.wantWrite, client.Actions())
			}
			got, err := client.NetworkingV1().NetworkPolicies(ns).Get(context.Background(), IsolationPolicyName, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if iso.Differs(got) {
				t.Errorf("after Ensure the policy is %+v, want the isolation policy", got)
			}
		})
	}
}
