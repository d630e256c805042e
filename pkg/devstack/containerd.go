package devstack

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ContainerdVersion and RuncVersion are built from their modules in
// third_party/: user namespaces (pods with hostUsers: false) need
// containerd 2 and runc 1.2 or later, and Debian 12 ships containerd 1.6 and
// runc 1.1. runc v1.4.4 also works around a kernel 6.17+ bug in cgroup
// device rules (this machine runs 6.18).
const (
	ContainerdVersion = "v2.2.9"
	RuncVersion       = "v1.4.4"
)

const (
	shimName     = "containerd-shim-runc-v2" // started by containerd, built with it
	cniBinDir    = "/usr/lib/cni"            // Debian package containernetworking-plugins
	sandboxImage = "registry.k8s.io/pause:3.10"
)

func (c Config) containerdBuild() goBuild {
	return goBuild{
		// the version carries the patches' digest (third_party/containerd/patches)
		component: "containerd", version: ContainerdVersion + "+" + c.ownSourceDigest("containerd"), module: "containerd",
		typical: 2 * time.Minute,
		packages: []string{
			"github.com/containerd/containerd/v2/cmd/containerd",
			"github.com/containerd/containerd/v2/cmd/" + shimName,
		},
		// As upstream's static release builds: no btrfs snapshotter (it
		// needs cgo), no man pages.
		tags:    []string{"urfave_cli_no_docs", "no_btrfs"},
		ldflags: []string{"-X", "github.com/containerd/containerd/v2/version.Version=" + ContainerdVersion},
	}
}

func (c Config) runcBuild() goBuild {
	return goBuild{
		component: "runc", version: RuncVersion, module: "runc",
		typical:  30 * time.Second,
		packages: []string{"github.com/opencontainers/runc"},
		// seccomp: runc applies the pods' RuntimeDefault profiles through
		// libseccomp (Debian's libseccomp-dev), hence cgo.
		tags:    []string{"seccomp", "urfave_cli_no_docs"},
		cgo:     true,
		ldflags: []string{"-X", "main.version=" + strings.TrimPrefix(RuncVersion, "v")},
	}
}

func (c Config) containerdBinary() string { return c.binary(c.containerdBuild(), "containerd") }
func (c Config) shimBinary() string       { return c.binary(c.containerdBuild(), shimName) }
func (c Config) runcBinary() string       { return c.binary(c.runcBuild(), "runc") }

// containerdProcess runs in the node's network namespace: the pods' links
// (made by the CNI plugins it calls) and its pulls from the registry start
// there.
func (c Config) containerdProcess(n workloadNode) *process {
	p := c.newProcess(n.processName("containerd"), c.containerdBinary(), "--config", n.containerdConfig())
	p.netns = n.netns()
	return p
}

// containerdPath is containerd's PATH: the stack's runc first. containerd
// asks the runc shim for its runtime's features (`containerd-shim-runc-v2
// -info`) on every task create; without any options, the shim looks runc up
// on PATH, and a failed answer is not cached, so each container cost a
// failing shim run (and an error in the log). Found, the answer is cached.
// A fixed PATH: the caller's would restart containerd whenever it differs.
func (c Config) containerdPath() string {
	return filepath.Dir(c.runcBinary()) + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
}

// startContainerd starts the node's containerd, restarting it when its
// configuration changed, and waits until it serves CRI.
func (c Config) startContainerd(ctx context.Context, n workloadNode) error {
	if _, err := os.Stat(filepath.Join(cniBinDir, "ptp")); err != nil {
		return componentErr("containerd", "", fmt.Errorf("CNI plugins missing: install Debian's containernetworking-plugins (hack/install-deps.sh): %w", err))
	}
	if err := c.writeContainerdConfig(n); err != nil {
		return err
	}
	digest, err := fileDigest(n.containerdConfig())
	if err != nil {
		return err
	}
	p := c.containerdProcess(n)
	p.env = []string{"PIPELINES_SERVICE_CONFIG=" + digest, "PATH=" + c.containerdPath()}
	if err := p.start(); err != nil {
		return err
	}
	return p.waitFor(ctx, 30*time.Second, "serving CRI", func(ctx context.Context) error {
		return withCRI(ctx, n, func(rt runtimeapi.RuntimeServiceClient) error {
			_, err := rt.Version(ctx, &runtimeapi.VersionRequest{})
			return err
		})
	})
}

// writeContainerdConfig writes the node's containerd configuration, CNI
// configuration and registry mirrors. What containerd and its runc keep
// lives in the node's directories: the root (images, snapshots) and the
// socket (which also names the shims' sockets) under the state directory,
// the state (container root filesystems, runc's container state) under the
// runtime directory, which a user namespace's root can traverse.
func (c Config) writeContainerdConfig(n workloadNode) error {
	config := fmt.Sprintf(`version = 3
root = %q
state = %q

[grpc]
  address = %q

# pprof (/debug/pprof) on a socket beside the API's: where containerd's own
# CPU goes (README, "Tenant isolation").
[debug]
  address = "%s/debug.sock"

# Every containerd of the machine would take the same NRI socket.
[plugins."io.containerd.nri.v1.nri"]
  disable = true

[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = %q
  [plugins."io.containerd.cri.v1.images".registry]
    config_path = %q

[plugins."io.containerd.cri.v1.runtime"]
  # The machine lacks CAP_SYS_RESOURCE: never lower a container's OOM score below ours.
  restrict_oom_score_adj = true
  [plugins."io.containerd.cri.v1.runtime".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      # The shim built with this containerd, not one found on PATH.
      runtime_path = %q
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
        BinaryName = %q
        Root = %q
        SystemdCgroup = false
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = [%q]
    conf_dir = %q
`, filepath.Join(n.containerdDir(), "root"), n.containerdStateDir(), n.containerdSocket(), n.containerdDir(),
		sandboxImage, filepath.Join(n.containerdDir(), "certs.d"),
		c.shimBinary(), c.runcBinary(), n.runcRoot(), cniBinDir, n.cniConfDir())
	if err := writeFile(n.containerdConfig(), config); err != nil {
		return err
	}
	if err := c.writeCNIConfig(n); err != nil {
		return err
	}
	return c.writeRegistryMirrors(n)
}

// writeRegistryMirrors points every mirrored registry, and the local one,
// at the local registry (containerd hosts.toml).
func (c Config) writeRegistryMirrors(n workloadNode) error {
	local := "http://" + c.RegistryAddr
	for _, host := range append(MirroredRegistries(), c.RegistryAddr) {
		upstream := "https://" + host
		if host == "docker.io" {
			upstream = "https://registry-1.docker.io"
		}
		if host == c.RegistryAddr {
			upstream = local
		}
		hosts := fmt.Sprintf("server = %q\n\n[host.%q]\n  capabilities = [\"pull\", \"resolve\"]\n", upstream, local)
		if err := writeFile(filepath.Join(n.containerdDir(), "certs.d", host, "hosts.toml"), hosts); err != nil {
			return err
		}
	}
	return nil
}

// writeCNIConfig gives each pod a point-to-point link to its node with an
// address of the node's pod range, as kind's network does. Pod traffic,
// also between two pods of one node, is routed by the node, so that it
// passes the node's packet filter (a bridge would switch it past).
func (c Config) writeCNIConfig(n workloadNode) error {
	conf := fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": "pipelines-service",
  "plugins": [
    {
      "type": "ptp",
      "ipMasq": false,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": %q, "gateway": %q}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": %q
      }
    }
  ]
}
`, n.podCIDR, firstIP(n.podCIDR), filepath.Join(n.dir, "cni", "ipam"))
	return writeFile(filepath.Join(n.cniConfDir(), "10-pipelines-service.conflist"), conf)
}

// withCRI calls fn with a CRI runtime client on the node's containerd.
func withCRI(ctx context.Context, n workloadNode, fn func(runtimeapi.RuntimeServiceClient) error) error {
	conn, err := grpc.NewClient("unix://"+n.containerdSocket(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	return fn(runtimeapi.NewRuntimeServiceClient(conn))
}

// removePodSandboxes stops and removes every pod sandbox of the node:
// containers end, CNI tears down their network namespaces and veths.
func (c Config) removePodSandboxes(ctx context.Context, n workloadNode) error {
	if _, err := os.Stat(n.containerdSocket()); err != nil || !c.containerdProcess(n).running() {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	return withCRI(ctx, n, func(rt runtimeapi.RuntimeServiceClient) error {
		list, err := rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
		if err != nil {
			return err
		}
		for _, sb := range list.Items {
			if _, err := rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: sb.Id}); err != nil {
				return fmt.Errorf("stop pod sandbox %s/%s: %w", sb.Metadata.Namespace, sb.Metadata.Name, err)
			}
			if _, err := rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: sb.Id}); err != nil {
				return fmt.Errorf("remove pod sandbox %s/%s: %w", sb.Metadata.Namespace, sb.Metadata.Name, err)
			}
		}
		return nil
	})
}

// shimPIDs finds the containerd shims started by the node's containerd:
// their command line names its socket as -address.
func shimPIDs(n workloadNode) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		var pid int
		if _, err := fmt.Sscanf(e.Name(), "%d", &pid); err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if isShimOf(strings.Split(string(cmdline), "\x00"), n.containerdSocket()) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func isShimOf(args []string, socket string) bool {
	if len(args) == 0 || !strings.HasSuffix(args[0], shimName) {
		return false
	}
	for i, a := range args[1:] {
		if (a == "-address" || a == "--address") && i+2 < len(args) && args[i+2] == socket {
			return true
		}
	}
	return false
}

// SandboxesOfGonePods counts the pod sandboxes the workload nodes still
// keep of pods their cluster no longer has. A kubelet removes them in its
// container garbage collection, once a minute: until then the removal
// (containers, sandbox, CNI teardown) is still to be paid for.
func (c Config) SandboxesOfGonePods(ctx context.Context) (int, error) {
	gone := 0
	for _, cl := range c.Clusters {
		client, err := c.clusterClient(cl)
		if err != nil {
			return 0, err
		}
		pods, err := client.CoreV1().Pods("").List(ctx, metav1.ListOptions{ResourceVersion: "0"})
		if err != nil {
			return 0, fmt.Errorf("workload cluster %s: %w", cl.Name, err)
		}
		live := map[string]bool{}
		for _, p := range pods.Items {
			live[string(p.UID)] = true
		}
		for _, n := range c.clusterNodes(cl) {
			err := withCRI(ctx, n, func(rt runtimeapi.RuntimeServiceClient) error {
				list, err := rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
				if err != nil {
					return err
				}
				for _, sb := range list.Items {
					if !live[sb.Metadata.Uid] {
						gone++
					}
				}
				return nil
			})
			if err != nil {
				return 0, fmt.Errorf("node %s: %w", n.name, err)
			}
		}
	}
	return gone, nil
}
