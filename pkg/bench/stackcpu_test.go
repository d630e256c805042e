package bench

import "testing"

func TestComponentKind(t *testing.T) {
	for name, want := range map[string]string{
		"network-policy-agent-workload-node-2": "network-policy-agent",
		"workload-2-kube-apiserver":            "kube-apiserver",
		"kube-controller-manager":              "kube-controller-manager",
		"containerd-workload-2-node":           "containerd",
		"workload-2-etcd":                      "etcd",
		"controller":                           "controller",
		"kcp":                                  "kcp",
		"something-new":                        "something-new",
	} {
		if got := componentKind(name); got != want {
			t.Errorf("componentKind(%q) = %q, want %q", name, got, want)
		}
	}
}

func TestCPUDelta(t *testing.T) {
	got := cpuDelta(map[string]float64{"kcp": 10, "kubelet": 2}, map[string]float64{"kcp": 13.5, "kubelet": 2, "gateway": 1})
	if got["kcp"] != 3.5 || got["kubelet"] != 0 || got["gateway"] != 1 {
		t.Errorf("cpuDelta = %v", got)
	}
	if s := formatStackCPU(got); s != "kcp 3.5, gateway 1.0, kubelet 0.0" {
		t.Errorf("formatStackCPU = %q", s)
	}
}
