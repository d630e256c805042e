package devstack

import (
	"os"
	"path/filepath"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	"sigs.k8s.io/yaml"
)

// TestDeployedControllerAdmitsNoPod: config/'s policy of the controller's
// pods excepts the dev stack's pod network, so that `devstack deploy`
// keeps every pod off them.
func TestDeployedControllerAdmitsNoPod(t *testing.T) {
	wd, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	root, err := FindRepoRoot(wd)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := DefaultConfig(root)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(root, "config", "400-networkpolicy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var policy networkingv1.NetworkPolicy
	if err := yaml.UnmarshalStrict(data, &policy); err != nil {
		t.Fatal(err)
	}
	if policy.Namespace != deployNamespace || len(policy.Spec.Ingress) != 1 || len(policy.Spec.Ingress[0].From) != 1 {
		t.Fatalf("config/400-networkpolicy.yaml: %+v, want one ingress rule in %s", policy, deployNamespace)
	}
	block := policy.Spec.Ingress[0].From[0].IPBlock
	if block == nil || block.CIDR != "0.0.0.0/0" || len(block.Except) != 1 || block.Except[0] != cfg.PodNetwork.String() {
		t.Errorf("the controller's pods admit %+v, want every address but the pod network %s", block, cfg.PodNetwork)
	}
}
