package devstack

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// WorkloadCluster is one workload cluster of the stack.
type WorkloadCluster struct {
	Name   string            // "workload-1", "workload-2"
	Labels map[string]string // {"region": "local-1"} / {"region": "local-2"}
	Nodes  []string          // node names; the first node's bridge address serves the control plane
	// NodeLabels are put on nodes (by name) once they registered.
	NodeLabels map[string]map[string]string

	// Dir is the cluster's directory in the state directory (PKI, etcd
	// data, kubeconfigs); it also names its etcd member and kubeconfig
	// contexts.
	Dir string
	// ProcessPrefix starts the names of the control plane's processes (so
	// of their log and PID files too).
	ProcessPrefix string
	// APIPort is kube-apiserver's port on the cluster's address.
	APIPort int
	// EtcdPort is etcd's client port on loopback; the peer port is the next.
	EtcdPort int
	// ServiceCIDR is the cluster's service range.
	ServiceCIDR *net.IPNet
}

// workloadNode is one node of a workload cluster: a network namespace of
// its own, linked to the bridge, with its own pod range, containerd,
// kubelet, network policy agent and local-path provisioner, directories
// and cgroup root.
type workloadNode struct {
	name    string
	cluster string
	index   int        // place among the stack's nodes
	hostIP  net.IP     // the host's end of the node's link, its default gateway
	ip      net.IP     // node IP, kubelet's address
	podCIDR *net.IPNet // the node's pods; its first address is their gateway
	// suffix ends the names of the node's processes and certificate files.
	suffix string
	// dir holds containerd/, cni/ and volumes/.
	dir string
	// kubeletDir holds kubelet/ (its root directory), kubelet-config.yaml
	// and kubelet.kubeconfig.
	kubeletDir string
	// runtimeDir holds containerd's state and runc's root.
	runtimeDir  string
	podLogsDir  string
	cgroupRoot  string
	healthzPort int
}

// kubeletPort is the port of every kubelet's server; each binds it on its
// own node IP.
const kubeletPort = 10250

// WorkloadClusters lists the stack's workload clusters; the first is the one
// WorkloadAdminKubeconfig and WorkloadClient address.
func (c Config) WorkloadClusters() []WorkloadCluster {
	return append([]WorkloadCluster(nil), c.Clusters...)
}

func (c Config) workloadCluster(name string) (WorkloadCluster, error) {
	for _, cl := range c.Clusters {
		if cl.Name == name {
			return cl, nil
		}
	}
	return WorkloadCluster{}, fmt.Errorf("no workload cluster %q", name)
}

// WorkloadClusterKubeconfig is the admin kubeconfig of the named workload
// cluster, "" if there is none of that name. It addresses the apiserver by
// its bridge address, which pods reach too.
func (c Config) WorkloadClusterKubeconfig(name string) string {
	cl, err := c.workloadCluster(name)
	if err != nil {
		return ""
	}
	return c.adminKubeconfig(cl)
}

func (c Config) adminKubeconfig(cl WorkloadCluster) string {
	return c.Path(cl.Dir, "admin.kubeconfig")
}

// WorkloadClusterClient is an admin client of the named workload cluster.
func (c Config) WorkloadClusterClient(name string) (kubernetes.Interface, error) {
	cl, err := c.workloadCluster(name)
	if err != nil {
		return nil, err
	}
	return c.clusterClient(cl)
}

func (c Config) clusterClient(cl WorkloadCluster) (kubernetes.Interface, error) {
	rc, err := clientcmd.BuildConfigFromFlags("", c.adminKubeconfig(cl))
	if err != nil {
		return nil, err
	}
	rc.Timeout = 10 * time.Second
	return kubernetes.NewForConfig(rc)
}

// WorkloadAdminKubeconfig is the admin kubeconfig of the first workload
// cluster.
func (c Config) WorkloadAdminKubeconfig() string { return c.adminKubeconfig(c.Clusters[0]) }

// WorkloadClient is an admin client of the first workload cluster.
func (c Config) WorkloadClient() (kubernetes.Interface, error) { return c.clusterClient(c.Clusters[0]) }

// validate checks what the layout relies on.
func (c Config) validate() error {
	if len(c.Clusters) == 0 {
		return errors.New("no workload cluster configured")
	}
	names := map[string]bool{}
	for _, cl := range c.Clusters {
		if len(cl.Nodes) == 0 {
			return fmt.Errorf("workload cluster %s has no node", cl.Name)
		}
		for _, n := range cl.Nodes {
			if names[n] {
				return fmt.Errorf("node name %s is used twice", n)
			}
			names[n] = true
		}
	}
	for _, network := range []*net.IPNet{c.NodeNetwork, c.PodNetwork} {
		if ones, _ := network.Mask.Size(); ones > 24 || len(names) > 1<<(24-ones) {
			return fmt.Errorf("network %s has no /24 for each of %d nodes", network, len(names))
		}
	}
	if c.NodeNetwork.Contains(c.PodNetwork.IP) || c.PodNetwork.Contains(c.NodeNetwork.IP) {
		return fmt.Errorf("node network %s and pod network %s overlap", c.NodeNetwork, c.PodNetwork)
	}
	if first := c.workloadNodes()[0].hostIP; !first.Equal(c.HostIP) {
		return fmt.Errorf("host IP %s is not the host's address towards the first node %s", c.HostIP, first)
	}
	return nil
}

// workloadNodes lists the nodes of all clusters in order. A node's place in
// the list numbers its pod range and kubelet healthz port.
func (c Config) workloadNodes() []workloadNode {
	var nodes []workloadNode
	for _, cl := range c.Clusters {
		for _, name := range cl.Nodes {
			nodes = append(nodes, c.nodeLayout(cl, name, len(nodes)))
		}
	}
	return nodes
}

// clusterNodes lists the nodes of one cluster.
func (c Config) clusterNodes(cl WorkloadCluster) []workloadNode {
	var nodes []workloadNode
	for _, n := range c.workloadNodes() {
		if n.cluster == cl.Name {
			nodes = append(nodes, n)
		}
	}
	return nodes
}

// nodeLayout places the index-th node of the stack. The first keeps the
// paths of the single-node stack (and the kubelet defaults for pod logs and
// cgroup root); every other node has a directory, a pod log directory and
// a cgroup root of its own.
func (c Config) nodeLayout(cl WorkloadCluster, name string, index int) workloadNode {
	link := nthSubnet(c.NodeNetwork, 24, index)
	n := workloadNode{
		name: name, cluster: cl.Name, index: index,
		hostIP: nthIP(link, 1), ip: nthIP(link, 2), podCIDR: nthSubnet(c.PodNetwork, 24, index),
		healthzPort: 10248 + index,
		runtimeDir:  filepath.Join(c.RuntimeDir, name),
	}
	if index == 0 {
		n.dir, n.kubeletDir = c.StateDir, c.Path(cl.Dir)
		n.podLogsDir, n.cgroupRoot = "/var/log/pods", "/"
		return n
	}
	n.suffix = "-" + name
	n.dir = c.Path("nodes", name)
	n.kubeletDir = n.dir
	n.podLogsDir = filepath.Join(n.dir, "pod-logs")
	n.cgroupRoot = "/ps-" + name
	return n
}

// nthSubnet is the index-th subnet of prefix length ones in network.
func nthSubnet(network *net.IPNet, ones, index int) *net.IPNet {
	base := binary.BigEndian.Uint32(network.IP.To4())
	ip := make(net.IP, 4)
	binary.BigEndian.PutUint32(ip, base+uint32(index)<<(32-ones))
	return &net.IPNet{IP: ip, Mask: net.CIDRMask(ones, 32)}
}

func firstIP(n *net.IPNet) net.IP { return nthIP(n, 1) }

// nthIP is the i-th address of n (i < 256).
func nthIP(n *net.IPNet, i int) net.IP {
	ip := make(net.IP, len(n.IP.To4()))
	copy(ip, n.IP.To4())
	ip[len(ip)-1] += byte(i)
	return ip
}

// clusterAddress is where a cluster's control plane listens: the host's
// address towards the cluster's first node.
func (c Config) clusterAddress(cl WorkloadCluster) net.IP {
	return c.clusterNodes(cl)[0].hostIP
}

func (c Config) clusterAPIURL(cl WorkloadCluster) string {
	return "https://" + net.JoinHostPort(c.clusterAddress(cl).String(), strconv.Itoa(cl.APIPort))
}

func (n workloadNode) containerdDir() string { return filepath.Join(n.dir, "containerd") }
func (n workloadNode) containerdSocket() string {
	return filepath.Join(n.containerdDir(), "containerd.sock")
}
func (n workloadNode) containerdConfig() string {
	return filepath.Join(n.containerdDir(), "config.toml")
}
func (n workloadNode) containerdStateDir() string { return filepath.Join(n.runtimeDir, "containerd") }
func (n workloadNode) runcRoot() string           { return filepath.Join(n.runtimeDir, "runc") }
func (n workloadNode) cniConfDir() string         { return filepath.Join(n.dir, "cni", "net.d") }
func (n workloadNode) volumesDir() string         { return filepath.Join(n.dir, "volumes") }
func (n workloadNode) kubeletRootDir() string     { return filepath.Join(n.kubeletDir, "kubelet") }
func (n workloadNode) kubeletConfig() string {
	return filepath.Join(n.kubeletDir, "kubelet-config.yaml")
}
func (n workloadNode) kubeletKubeconfig() string {
	return filepath.Join(n.kubeletDir, "kubelet.kubeconfig")
}
func (n workloadNode) kubeletAddress() string {
	return net.JoinHostPort(n.ip.String(), strconv.Itoa(kubeletPort))
}
func (n workloadNode) healthzAddress() string         { return "127.0.0.1:" + strconv.Itoa(n.healthzPort) }
func (n workloadNode) ownsCgroupRoot() bool           { return n.cgroupRoot != "/" }
func (n workloadNode) processName(base string) string { return base + n.suffix }

// netns is the path of the node's network namespace (ip netns names it
// after the node).
func (n workloadNode) netns() string     { return filepath.Join("/run/netns", n.netnsName()) }
func (n workloadNode) netnsName() string { return "ps-" + n.name }

// hostVeth names the host's end of the node's link (at most 15 bytes).
func (n workloadNode) hostVeth() string { return "ps-node" + strconv.Itoa(n.index) }

// NodeAddresses lists every address of the stack's machines a pod could
// aim at: for each node, the host's end of its link (where kcp, the
// apiservers and the registry listen), the node's IP (its kubelet) and its
// pods' gateway.
func (c Config) NodeAddresses() []string {
	var out []string
	for _, n := range c.workloadNodes() {
		out = append(out, n.hostIP.String(), n.ip.String(), firstIP(n.podCIDR).String())
	}
	return out
}
