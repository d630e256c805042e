// Package devstack brings up the local real stack the project is developed and
// tested against: a kcp server, a single-node Kubernetes workload cluster
// (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, containerd,
// kubelet) and a local OCI registry holding images built on this machine.
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

	// HostIP is the address of the stack's bridge. The workload node uses it
	// as its node IP (loopback is rejected by kubelet for that), and kcp and
	// the workload apiserver listen on it so that pods can reach them.
	HostIP net.IP
	// PodCIDR is the pod network on the bridge; HostIP is its gateway.
	PodCIDR *net.IPNet
	// ServiceCIDR is the workload cluster's service range.
	ServiceCIDR *net.IPNet
	// BridgeName is the Linux bridge the stack creates and removes.
	BridgeName string

	KCPPort          int
	KCPEtcdPort      int
	WorkloadAPIPort  int
	WorkloadEtcdPort int
	RegistryAddr     string // host:port, loopback
	NodeName         string
}

// DefaultConfig returns the configuration used by make and the e2e tests.
// PIPELINES_SERVICE_STATE_DIR and PIPELINES_SERVICE_CACHE_DIR override the
// two directories.
func DefaultConfig(repoRoot string) (Config, error) {
	home, err := os.UserHomeDir()
	if err != nil {
		return Config{}, err
	}
	_, podCIDR, _ := net.ParseCIDR("10.244.0.0/24")
	_, svcCIDR, _ := net.ParseCIDR("10.96.0.0/24")
	cfg := Config{
		RepoRoot:         repoRoot,
		CacheDir:         envOr("PIPELINES_SERVICE_CACHE_DIR", filepath.Join(home, ".cache", "pipelines-service")),
		StateDir:         envOr("PIPELINES_SERVICE_STATE_DIR", filepath.Join(home, ".local", "state", "pipelines-service")),
		HostIP:           net.ParseIP("10.244.0.1"),
		PodCIDR:          podCIDR,
		ServiceCIDR:      svcCIDR,
		BridgeName:       "ps-br0",
		KCPPort:          6443,
		KCPEtcdPort:      12379,
		WorkloadAPIPort:  7443,
		WorkloadEtcdPort: 22379,
		RegistryAddr:     "127.0.0.1:5001",
		NodeName:         "workload-node",
	}
	return cfg, nil
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

// WorkloadAdminKubeconfig is the admin kubeconfig of the workload cluster.
func (c Config) WorkloadAdminKubeconfig() string { return c.Path("workload", "admin.kubeconfig") }

func (c Config) kcpURL() string {
	return fmt.Sprintf("https://%s", net.JoinHostPort(c.HostIP.String(), fmt.Sprint(c.KCPPort)))
}

func (c Config) workloadAPIURL() string {
	return fmt.Sprintf("https://%s", net.JoinHostPort(c.HostIP.String(), fmt.Sprint(c.WorkloadAPIPort)))
}
