package devstack

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap"
)

// layoutConfig is the default configuration with its state in /state.
func layoutConfig(t *testing.T) Config {
	t.Helper()
	t.Setenv("PIPELINES_SERVICE_STATE_DIR", "/state")
	cfg, err := DefaultConfig("/repo")
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestDefaultConfigIsValid(t *testing.T) {
	if err := layoutConfig(t).validate(); err != nil {
		t.Fatal(err)
	}
}

// The first cluster and its first node keep the single-node stack's paths,
// names and addresses, so that a running stack's state is reused.
func TestFirstNodeKeepsTheSingleNodeLayout(t *testing.T) {
	c := layoutConfig(t)
	n := c.workloadNodes()[0]
	got := map[string]string{
		"ip":                 n.ip.String(),
		"containerd socket":  n.containerdSocket(),
		"containerd config":  n.containerdConfig(),
		"cni conf dir":       n.cniConfDir(),
		"volumes":            n.volumesDir(),
		"kubelet root":       n.kubeletRootDir(),
		"kubelet config":     n.kubeletConfig(),
		"kubelet kubeconfig": n.kubeletKubeconfig(),
		"kubelet process":    c.kubeletProcess(n).name,
		"containerd process": c.containerdProcess(n).name,
		"admin kubeconfig":   c.WorkloadAdminKubeconfig(),
		"cluster kubeconfig": c.WorkloadClusterKubeconfig("workload-1"),
		"api url":            c.clusterAPIURL(c.Clusters[0]),
	}
	want := map[string]string{
		"ip":                 "10.244.0.2",
		"containerd socket":  "/state/containerd/containerd.sock",
		"containerd config":  "/state/containerd/config.toml",
		"cni conf dir":       "/state/cni/net.d",
		"volumes":            "/state/volumes",
		"kubelet root":       "/state/workload/kubelet",
		"kubelet config":     "/state/workload/kubelet-config.yaml",
		"kubelet kubeconfig": "/state/workload/kubelet.kubeconfig",
		"kubelet process":    "kubelet",
		"containerd process": "containerd",
		"admin kubeconfig":   "/state/workload/admin.kubeconfig",
		"cluster kubeconfig": "/state/workload/admin.kubeconfig",
		"api url":            "https://10.244.0.1:7443",
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s = %q, want %q", k, got[k], w)
		}
	}
	if n.ownsCgroupRoot() {
		t.Errorf("first node has cgroup root %q, want the kubelet default", n.cgroupRoot)
	}
}

// Nodes share nothing a kubelet or containerd owns.
func TestNodesHaveTheirOwnAddressesDirectoriesAndCgroupRoots(t *testing.T) {
	c := layoutConfig(t)
	nodes := c.workloadNodes()
	if len(nodes) != 3 {
		t.Fatalf("%d nodes, want 3", len(nodes))
	}
	seen := map[string]string{}
	for i, n := range nodes {
		if want := fmt.Sprintf("10.244.%d.2", i); n.ip.String() != want {
			t.Errorf("node %s: ip %s, want %s", n.name, n.ip, want)
		}
		if want := fmt.Sprintf("10.244.%d.1", i); n.hostIP.String() != want {
			t.Errorf("node %s: host's end %s, want %s", n.name, n.hostIP, want)
		}
		if want := fmt.Sprintf("10.245.%d.0/24", i); n.podCIDR.String() != want {
			t.Errorf("node %s: pod range %s, want %s", n.name, n.podCIDR, want)
		}
		if len(n.hostVeth()) > 15 {
			t.Errorf("node %s: interface name %s is longer than 15 bytes", n.name, n.hostVeth())
		}
		if i > 0 && (!n.ownsCgroupRoot() || n.podLogsDir == "/var/log/pods") {
			t.Errorf("node %s: cgroup root %q, pod logs %q: want its own", n.name, n.cgroupRoot, n.podLogsDir)
		}
		for _, v := range []string{n.podCIDR.String(), n.netns(), n.hostVeth(), n.containerdSocket(), n.cniConfDir(), n.volumesDir(), n.kubeletRootDir(),
			n.kubeletKubeconfig(), n.healthzAddress(), n.cgroupRoot, n.podLogsDir, c.kubeletProcess(n).name} {
			if other, ok := seen[v]; ok {
				t.Errorf("nodes %s and %s share %s", other, n.name, v)
			}
			seen[v] = n.name
		}
		// Unix socket paths are limited to 108 bytes (with ".ttrpc" added).
		if l := len(filepath.Join("/root/.local/state/pipelines-service", strings.TrimPrefix(n.containerdSocket(), "/state"))) + len(".ttrpc"); l >= 108 {
			t.Errorf("node %s: containerd socket path too long (%d)", n.name, l)
		}
	}
	if got := c.clusterAddress(c.Clusters[1]).String(); got != "10.244.2.1" {
		t.Errorf("workload-2 address = %s, want the host's end of its node's link 10.244.2.1", got)
	}
}

func TestProcessNamesAreUnique(t *testing.T) {
	s := New(layoutConfig(t), zap.NewNop().Sugar())
	names := map[string]bool{}
	for _, p := range s.processes() {
		if names[p.name] {
			t.Errorf("process name %s is used twice", p.name)
		}
		names[p.name] = true
	}
	for _, want := range []string{"kube-apiserver", "kubelet", "containerd", "kubelet-workload-node-2", "containerd-workload-node-2",
		"workload-2-etcd", "workload-2-kube-apiserver", "workload-2-kube-controller-manager", "workload-2-kube-scheduler",
		"kubelet-workload-2-node", "local-path-provisioner-workload-2-node", "network-policy-agent", "network-policy-agent-workload-2-node"} {
		if !names[want] {
			t.Errorf("no process %s among %v", want, names)
		}
	}
}

func TestValidateRejectsClustersWithoutNodesAndSharedNodeNames(t *testing.T) {
	c := layoutConfig(t)
	c.Clusters[1].Nodes = nil
	if err := c.validate(); err == nil {
		t.Error("cluster without nodes accepted")
	}
	c = layoutConfig(t)
	c.Clusters[1].Nodes = []string{"workload-node"}
	if err := c.validate(); err == nil {
		t.Error("node name used twice accepted")
	}
}

func TestCNIConfigGivesEachNodeItsRange(t *testing.T) {
	c := layoutConfig(t)
	c.StateDir = t.TempDir()
	n := c.workloadNodes()[1]
	if err := c.writeCNIConfig(n); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(n.cniConfDir(), "10-pipelines-service.conflist"))
	if err != nil {
		t.Fatal(err)
	}
	var conf struct {
		Plugins []struct {
			Type string `json:"type"`
			IPAM struct {
				Ranges  [][]struct{ Subnet, Gateway string } `json:"ranges"`
				DataDir string                               `json:"dataDir"`
			} `json:"ipam"`
		} `json:"plugins"`
	}
	if err := json.Unmarshal(data, &conf); err != nil {
		t.Fatalf("conflist is not JSON: %v\n%s", err, data)
	}
	r := conf.Plugins[0].IPAM.Ranges[0][0]
	if r.Subnet != "10.245.1.0/24" || r.Gateway != "10.245.1.1" || conf.Plugins[0].Type != "ptp" {
		t.Errorf("range %+v by %s, want 10.245.1.0/24 via 10.245.1.1 by ptp (routed by the node)", r, conf.Plugins[0].Type)
	}
	if !strings.HasPrefix(conf.Plugins[0].IPAM.DataDir, n.dir) {
		t.Errorf("IPAM data dir %s is not under the node's %s", conf.Plugins[0].IPAM.DataDir, n.dir)
	}
}

// Each node's containerd, kubelet and network policy agent run in the
// node's network namespace: the agent filters what the node routes.
func TestNodeProcessesRunInTheNodesNetworkNamespace(t *testing.T) {
	c := layoutConfig(t)
	for _, n := range c.workloadNodes() {
		cl, _ := c.workloadCluster(n.cluster)
		for _, p := range []*process{c.containerdProcess(n), c.kubeletProcess(n), c.networkPolicyAgentProcess(cl, n)} {
			if p.netns != "/run/netns/ps-"+n.name {
				t.Errorf("%s runs in %q, want the node's network namespace", p.name, p.netns)
			}
		}
	}
	if p := c.kcpProcess(); p.netns != "" {
		t.Errorf("kcp runs in %q, want the host's network namespace", p.netns)
	}
}

func TestIsShimOf(t *testing.T) {
	args := []string{"/usr/bin/containerd-shim-runc-v2", "-namespace", "k8s.io", "-id", "abc", "-address", "/s/containerd.sock"}
	if !isShimOf(args, "/s/containerd.sock") {
		t.Error("shim of /s/containerd.sock not recognised")
	}
	if isShimOf(args, "/other/containerd.sock") || isShimOf([]string{"/usr/bin/containerd", "-address", "/s/containerd.sock"}, "/s/containerd.sock") {
		t.Error("recognised a shim of another containerd, or containerd itself")
	}
}
