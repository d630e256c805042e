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
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

const (
	containerdBinary = "/usr/bin/containerd"              // Debian package containerd
	shimBinary       = "/usr/bin/containerd-shim-runc-v2" // started by containerd
	runcBinary       = "/usr/sbin/runc"                   // Debian package runc
	cniBinDir        = "/usr/lib/cni"                     // Debian package containernetworking-plugins
	sandboxImage     = "registry.k8s.io/pause:3.10"
)

func (c Config) containerdSocket() string { return c.Path("containerd", "containerd.sock") }

func (c Config) containerdProcess() *process {
	return c.newProcess("containerd", containerdBinary, "--config", c.Path("containerd", "config.toml"))
}

func (c Config) startContainerd(ctx context.Context) error {
	for _, bin := range []string{containerdBinary, shimBinary, runcBinary, filepath.Join(cniBinDir, "bridge")} {
		if _, err := os.Stat(bin); err != nil {
			return componentErr("containerd", "", fmt.Errorf("%s missing: install Debian's containerd, runc and containernetworking-plugins (hack/install-deps.sh)", bin))
		}
	}
	if err := c.writeContainerdConfig(); err != nil {
		return err
	}
	p := c.containerdProcess()
	if err := p.start(); err != nil {
		return err
	}
	return p.waitFor(ctx, 30*time.Second, "serving CRI", func(ctx context.Context) error {
		return c.withCRI(ctx, func(rt runtimeapi.RuntimeServiceClient) error {
			_, err := rt.Version(ctx, &runtimeapi.VersionRequest{})
			return err
		})
	})
}

func (c Config) writeContainerdConfig() error {
	config := fmt.Sprintf(`version = 2
root = %q
state = %q

[grpc]
  address = %q

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %q
  # The machine lacks CAP_SYS_RESOURCE: never lower a container's OOM score below ours.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = %q
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %q
    conf_dir = %q
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = %q
`, c.Path("containerd", "root"), c.Path("containerd", "state"), c.containerdSocket(), sandboxImage,
		runcBinary, cniBinDir, c.Path("cni", "net.d"), c.Path("containerd", "certs.d"))
	if err := writeFile(c.Path("containerd", "config.toml"), config); err != nil {
		return err
	}
	if err := c.writeCNIConfig(); err != nil {
		return err
	}
	return c.writeRegistryMirrors()
}

// writeRegistryMirrors points every mirrored registry, and the local one,
// at the local registry (containerd hosts.toml).
func (c Config) writeRegistryMirrors() error {
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
		if err := writeFile(c.Path("containerd", "certs.d", host, "hosts.toml"), hosts); err != nil {
			return err
		}
	}
	return nil
}

func (c Config) writeCNIConfig() error {
	ones, _ := c.PodCIDR.Mask.Size()
	conf := fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": "pipelines-service",
  "plugins": [
    {
      "type": "bridge",
      "bridge": %q,
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "%s/%d", "gateway": %q}]],
        "dataDir": %q
      }
    }
  ]
}
`, c.BridgeName, c.PodCIDR.IP, ones, c.HostIP, c.Path("cni", "ipam"))
	return writeFile(c.Path("cni", "net.d", "10-pipelines-service.conflist"), conf)
}

// withCRI calls fn with a CRI runtime client on the stack's containerd.
func (c Config) withCRI(ctx context.Context, fn func(runtimeapi.RuntimeServiceClient) error) error {
	conn, err := grpc.NewClient("unix://"+c.containerdSocket(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	return fn(runtimeapi.NewRuntimeServiceClient(conn))
}

// removePodSandboxes stops and removes every pod sandbox: containers end,
// CNI tears down their network namespaces and veths.
func (c Config) removePodSandboxes(ctx context.Context) error {
	if _, err := os.Stat(c.containerdSocket()); err != nil || !c.containerdProcess().running() {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	return c.withCRI(ctx, func(rt runtimeapi.RuntimeServiceClient) error {
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

// shimPIDs finds containerd shims started by the stack's containerd: their
// command line names its socket.
func (c Config) shimPIDs() []int {
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
		args := strings.Split(string(cmdline), "\x00")
		if len(args) > 0 && strings.HasSuffix(args[0], "containerd-shim-runc-v2") && strings.Contains(string(cmdline), c.containerdSocket()) {
			pids = append(pids, pid)
		}
	}
	return pids
}
