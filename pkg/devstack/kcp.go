package devstack

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"time"

	tenancyv1alpha1 "github.com/kcp-dev/kcp/sdk/apis/tenancy/v1alpha1"
	kcpclientset "github.com/kcp-dev/kcp/sdk/client/clientset/versioned/cluster"
	"github.com/kcp-dev/logicalcluster/v3"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// ProviderWorkspace is the workspace, under root, that exports the Tekton
// APIs to tenants.
const ProviderWorkspace = "pipelines-service"

// kcpProcess is the root shard.
func (c Config) kcpProcess() *process {
	args := append(c.shardArgs(RootShard), "--etcd-servers=http://127.0.0.1:"+strconv.Itoa(c.KCPEtcdPort))
	p := c.newProcess("kcp", c.binary(c.kcpBuild(), "kcp"), args...)
	p.ports = []string{net.JoinHostPort(c.HostIP.String(), strconv.Itoa(c.KCPPort))}
	return p
}

// kcpEtcdProcess is kcp's storage: an etcd of its own, as every workload
// cluster has and as a kcp shard has in production, rather than the etcd
// kcp embeds. Measured under the benchmark's load (README, Benchmarks):
// the embedded one shares kcp's process, its cores and its garbage
// collector with every request kcp serves.
func (c Config) kcpEtcdProcess() *process {
	return c.etcdProcess("kcp-etcd", "kcp", c.Path("kcp-etcd"), c.KCPEtcdPort)
}

// embeddedEtcdDir is where kcp's embedded etcd kept its data, before kcp
// got an etcd of its own.
func (c Config) embeddedEtcdDir() string { return c.Path("kcp", "etcd-server") }

// startKCPEtcd starts kcp's etcd. The data of the embedded etcd of earlier
// versions is not carried over (its etcd is newer than Debian's, which
// cannot read it): kcp starts empty and the bring-up creates the provider
// and the demo tenant again; other tenants must be added again.
func (s *Stack) startKCPEtcd(ctx context.Context) error {
	c := s.cfg
	p := c.kcpEtcdProcess()
	if _, err := os.Stat(c.embeddedEtcdDir()); err == nil {
		if c.kcpProcess().running() {
			return componentErr("kcp", c.LogFile("kcp"), fmt.Errorf("kcp runs on its embedded etcd; run devstack down first, then up: kcp moves to an etcd of its own (its workspaces are not carried over)"))
		}
		s.log.Infow("kcp now stores in an etcd of its own; the embedded etcd's data is removed, tenants other than the demo must be added again",
			"removed", c.embeddedEtcdDir())
		if err := os.RemoveAll(c.embeddedEtcdDir()); err != nil {
			return componentErr("kcp etcd", c.LogFile(p.name), err)
		}
	}
	return componentErr("kcp etcd", c.LogFile(p.name), startEtcd(ctx, p, c.KCPEtcdPort))
}

func (c Config) startKCP() error {
	if _, err := c.kcpClientCA(); err != nil {
		return componentErr("kcp", c.LogFile("kcp"), err)
	}
	if _, err := c.frontProxyCA(); err != nil {
		return componentErr("kcp", c.LogFile("kcp"), err)
	}
	if err := c.kcpShardCredentials(); err != nil {
		return componentErr("kcp", c.LogFile("kcp"), err)
	}
	return c.kcpProcess().start()
}

// waitKCP waits until kcp has written its admin kubeconfig and is ready.
func (c Config) waitKCP(ctx context.Context) error {
	p := c.kcpProcess()
	return p.waitFor(ctx, 180*time.Second, "ready", func(ctx context.Context) error {
		rc, err := c.KCPRestConfig()
		if err != nil {
			return err
		}
		client, err := kubernetes.NewForConfig(rc)
		if err != nil {
			return err
		}
		_, err = client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return err
	})
}

// KCPRestConfig is the admin config of kcp, pointing at the root workspace.
func (c Config) KCPRestConfig() (*rest.Config, error) {
	rc, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
		&clientcmd.ClientConfigLoadingRules{ExplicitPath: c.KCPAdminKubeconfig()},
		&clientcmd.ConfigOverrides{CurrentContext: "root"}).ClientConfig()
	if err != nil {
		return nil, err
	}
	return adminLimits(rc), nil
}

// adminLimits are the stack's admin clients' timeout and rate: its own
// tooling creates many workspaces (tests, benchmark), which client-go's
// default 5 QPS would throttle.
func adminLimits(rc *rest.Config) *rest.Config {
	rc.Timeout = 30 * time.Second
	rc.QPS, rc.Burst = 100, 200
	return rc
}

// KCPClusterClient is a cluster-aware kcp client as admin.
func (c Config) KCPClusterClient() (kcpclientset.ClusterInterface, error) {
	rc, err := c.KCPBaseRestConfig()
	if err != nil {
		return nil, err
	}
	return kcpclientset.NewForConfig(rc)
}

// KCPBaseRestConfig is the admin config of kcp without a workspace in its
// URL, as cluster-aware clients need it.
func (c Config) KCPBaseRestConfig() (*rest.Config, error) {
	rc, err := c.KCPRestConfig()
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(rc.Host)
	if err != nil {
		return nil, err
	}
	u.Path = ""
	rc.Host = u.String()
	return rc, nil
}

// EnsureWorkspace creates the workspace name under parent on the root
// shard (if missing) and waits until it is Ready. It returns the
// workspace's path.
func EnsureWorkspace(ctx context.Context, client kcpclientset.ClusterInterface, parent logicalcluster.Path, name string) (logicalcluster.Path, error) {
	return EnsureWorkspaceOn(ctx, client, parent, name, RootShard)
}

// EnsureWorkspaceOn is EnsureWorkspace on shard (a Shard's name label,
// which kcp's scheduler selects by). A workspace that exists stays where
// it is.
func EnsureWorkspaceOn(ctx context.Context, client kcpclientset.ClusterInterface, parent logicalcluster.Path, name, shard string) (logicalcluster.Path, error) {
	workspaces := client.Cluster(parent).TenancyV1alpha1().Workspaces()
	ws := &tenancyv1alpha1.Workspace{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: tenancyv1alpha1.WorkspaceSpec{
		Location: &tenancyv1alpha1.WorkspaceLocation{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"name": shard}}}}}
	if _, err := workspaces.Create(ctx, ws, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return logicalcluster.Path{}, fmt.Errorf("create workspace %s:%s: %w", parent, name, err)
	}
	path := parent.Join(name)
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for {
		ws, err := workspaces.Get(ctx, name, metav1.GetOptions{})
		if err == nil && ws.Status.Phase == "Ready" {
			// Ready in its parent's shard; through the front-proxy it is
			// reachable once the proxy has seen its LogicalCluster.
			if _, err := client.Cluster(path).CoreV1alpha1().LogicalClusters().Get(ctx, "cluster", metav1.GetOptions{}); err == nil {
				return path, nil
			}
		}
		select {
		case <-ctx.Done():
			phase := ""
			if ws != nil {
				phase = string(ws.Status.Phase)
			}
			return path, fmt.Errorf("workspace %s not Ready (phase %q): %w", path, phase, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}
