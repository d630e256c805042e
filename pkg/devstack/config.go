// Package devstack brings up the local real stack the project is developed and
// tested against: kcp (two shards and its front-proxy), Kubernetes workload clusters (each with its
// etcd, kube-apiserver, kube-controller-manager and kube-scheduler, and nodes
// that each run a containerd and a kubelet of their own, all on this machine)
// and a local OCI registry holding images built on this machine.
//
// The same implementation serves `make dev-up/dev-down/dev-status` (through
// cmd/devstack) and the e2e test framework.
package devstack

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
)

// Pinned versions of what the stack builds from source.
const (
	KCPVersion        = "v0.28.1"
	KCPKubeVersion    = "v1.32.3" // k8s.io/kubernetes line kcp v0.28.1 is built on
	KubernetesVersion = "v1.35.5"
	DebianSuite       = "bookworm"
	// TektonVersion is the tektoncd/pipeline release the service builds on;
	// the benchmark runs its own controller at the same release.
	TektonVersion = "v1.9.0"
	// ControllerDebugAddress serves the host controller's /readyz and
	// /debug/pprof/.
	ControllerDebugAddress = "127.0.0.1:6061"
)

// Config says where the stack keeps its state and how it is addressed.
type Config struct {
	// RepoRoot is the checkout holding third_party/ (build modules).
	RepoRoot string
	// CacheDir holds builds that survive checkouts: <component>@<version>.
	CacheDir string
	// StateDir holds everything the running stack writes: PKI, data, logs,
	// PID files, kubeconfigs. It is machine-wide so that any checkout sees
	// (and can tear down) the one running stack.
	StateDir string
	// RuntimeDir holds what the nodes' containerd and runc keep while they
	// run (container root filesystems, runc's state). Unlike StateDir, which
	// may lie under a home directory no one else may traverse (/root is
	// 0700), every component of its path is searchable, as root in a pod's
	// user namespace, who is no one on the host, must reach its root
	// filesystem. Like the nodes' network namespaces it is machine-wide:
	// one stack per machine.
	RuntimeDir string

	// HostIP is the host's address towards the stack's first workload node
	// (the first address of NodeNetwork's first /24). kcp, the first
	// cluster's apiserver and the registry listen on it, so that nodes
	// (and pods, where a policy lets them) reach them.
	HostIP net.IP
	// NodeNetwork is the network on the bridge that links the host and the
	// nodes. The i-th node of the stack (counting the nodes of all clusters
	// in order) gets its i-th /24: the first address is the host's end (the
	// node's default gateway), the second the node's IP, which its kubelet
	// serves on (kubelet rejects loopback as node IP).
	NodeNetwork *net.IPNet
	// PodNetwork holds the pods' addresses. The i-th node's pods get its
	// i-th /24; the first address is their gateway, on the node.
	PodNetwork *net.IPNet
	// BridgeName is the Linux bridge the stack creates and removes. Each
	// node is a network namespace of its own, linked to the bridge by a
	// veth pair, as a machine is linked to a switch.
	BridgeName string

	KCPPort     int
	KCPEtcdPort int
	// RegistryAddr is host:port of the registry, on HostIP: nodes pull
	// from it (loopback is the node's own), the host pushes to it.
	RegistryAddr string

	// Clusters are the workload clusters. The first is the one
	// WorkloadAdminKubeconfig and WorkloadClient address.
	Clusters []WorkloadCluster

	// ResultsS3, when set, keeps Tekton Results' logs in S3 instead of
	// files in the state directory.
	ResultsS3 *S3Logs

	// recorderOff starts the host controller without its Tekton Results
	// recorder (the benchmark's comparison).
	recorderOff bool
}

// DefaultConfig returns the configuration used by make and the e2e tests.
// PIPELINES_SERVICE_STATE_DIR and PIPELINES_SERVICE_CACHE_DIR override the
// two directories.
func DefaultConfig(repoRoot string) (Config, error) {
	home, err := os.UserHomeDir()
	if err != nil {
		return Config{}, err
	}
	cfg := Config{
		RepoRoot:     repoRoot,
		CacheDir:     envOr("PIPELINES_SERVICE_CACHE_DIR", filepath.Join(home, ".cache", "pipelines-service")),
		StateDir:     envOr("PIPELINES_SERVICE_STATE_DIR", filepath.Join(home, ".local", "state", "pipelines-service")),
		RuntimeDir:   envOr("PIPELINES_SERVICE_RUNTIME_DIR", "/run/pipelines-service"),
		HostIP:       net.ParseIP("10.244.0.1"),
		NodeNetwork:  mustCIDR("10.244.0.0/16"),
		PodNetwork:   mustCIDR("10.245.0.0/16"),
		BridgeName:   "ps-br0",
		KCPPort:      6443,
		KCPEtcdPort:  12379,
		RegistryAddr: "10.244.0.1:5001",
		Clusters:     defaultWorkloadClusters(),
		ResultsS3:    s3LogsFromEnv(os.Getenv),
	}
	return cfg, nil
}

// defaultWorkloadClusters are two clusters, the first with two nodes. The
// first cluster and its first node keep the names, ports and directories of
// the single-node stack this grew from, so that its state is reused.
func defaultWorkloadClusters() []WorkloadCluster {
	return []WorkloadCluster{
		{
			Name:   "workload-1",
			Labels: map[string]string{"region": "local-1"},
			Nodes:  []string{"workload-node", "workload-node-2"},
			NodeLabels: map[string]map[string]string{
				"workload-node":   {"node-type": "worker-1"},
				"workload-node-2": {"node-type": "worker-2"},
			},
			Dir:         "workload",
			APIPort:     7443,
			EtcdPort:    22379,
			ServiceCIDR: mustCIDR("10.96.0.0/24"),
		},
		{
			Name:          "workload-2",
			Labels:        map[string]string{"region": "local-2"},
			Nodes:         []string{"workload-2-node"},
			Dir:           "workload-2",
			ProcessPrefix: "workload-2-",
			APIPort:       7443,
			EtcdPort:      22381,
			ServiceCIDR:   mustCIDR("10.96.1.0/24"),
		},
	}
}

func mustCIDR(s string) *net.IPNet {
	_, n, err := net.ParseCIDR(s)
	if err != nil {
		panic(err)
	}
	return n
}

// FindRepoRoot walks up from dir to the directory holding third_party/kcp.
func FindRepoRoot(dir string) (string, error) {
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "third_party", "kcp", "go.mod")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no pipelines-service checkout above %s", dir)
		}
	}
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// Path joins elements under the state directory.
func (c Config) Path(elem ...string) string {
	return filepath.Join(append([]string{c.StateDir}, elem...)...)
}

// LogFile is the log of a component.
func (c Config) LogFile(component string) string { return c.Path("logs", component+".log") }

// KCPAdminKubeconfig points at kcp's root workspace as admin.
func (c Config) KCPAdminKubeconfig() string { return c.Path("kcp", "admin.kubeconfig") }

func (c Config) kcpURL() string {
	return fmt.Sprintf("https://%s", net.JoinHostPort(c.HostIP.String(), fmt.Sprint(c.KCPPort)))
}
