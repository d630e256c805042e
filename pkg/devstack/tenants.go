package devstack

import (
	"context"
	"fmt"
	"os"
	"time"

	kcpdynamic "github.com/kcp-dev/client-go/dynamic"
	kcpkubernetes "github.com/kcp-dev/client-go/kubernetes"
	kcpclientset "github.com/kcp-dev/kcp/sdk/client/clientset/versioned/cluster"
	"github.com/kcp-dev/logicalcluster/v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/pipelines-service/pipelines-service/pkg/provider"
)

// DemoTenant is the tenant workspace bring-up creates.
const DemoTenant = "demo"

// kcpClientCA signs the client certificates of the controller and of
// tenants: identities that outlive kcp restarts (kcp's admin token does not).
func (c Config) kcpClientCA() (*certAuthority, error) {
	return loadOrCreateCA(c.Path("kcp-pki"), "pipelines-service-kcp-client-ca")
}

// kcpUserCert issues (once) the client certificate of a kcp user.
func (c Config) kcpUserCert(user string) (certFile, keyFile string, err error) {
	ca, err := c.kcpClientCA()
	if err != nil {
		return "", "", err
	}
	return ca.ensure(certSpec{name: user, commonName: user, client: true})
}

// TenantKubeconfig is where a tenant's kubeconfig is written.
func (c Config) TenantKubeconfig(name string) string { return c.Path("tenants", name+".kubeconfig") }

// ControllerKCPKubeconfig is the controller's identity in kcp.
func (c Config) ControllerKCPKubeconfig() string { return c.Path("controller", "kcp.kubeconfig") }

// TenantUser is the kcp user of a tenant's kubeconfig.
func TenantUser(name string) string { return "tenant-" + name }

// providerClients are the stack's admin clients at kcp's front-proxy,
// which reach every workspace whatever shard holds it.
func (s *Stack) providerClients() (provider.Clients, error) {
	rc, err := s.cfg.KCPProxyBaseRestConfig()
	if err != nil {
		return provider.Clients{}, err
	}
	kcpClient, err := kcpclientset.NewForConfig(rc)
	if err != nil {
		return provider.Clients{}, err
	}
	kube, err := kcpkubernetes.NewForConfig(rc)
	if err != nil {
		return provider.Clients{}, err
	}
	dyn, err := kcpdynamic.NewForConfig(rc)
	if err != nil {
		return provider.Clients{}, err
	}
	return provider.Clients{KCP: kcpClient, Kube: kube, Dynamic: dyn}, nil
}

// ensureProvider sets up the provider workspace's export and RBAC and
// writes the controller's kcp kubeconfig.
func (s *Stack) ensureProvider(ctx context.Context) error {
	clients, err := s.providerClients()
	if err != nil {
		return err
	}
	if err := provider.EnsureProvider(ctx, clients, providerPath()); err != nil {
		return componentErr("kcp provider", s.cfg.LogFile("kcp"), err)
	}
	return s.writeKCPUserKubeconfig(s.cfg.ControllerKCPKubeconfig(), provider.ControllerUser, logicalcluster.Path{})
}

func providerPath() logicalcluster.Path {
	return logicalcluster.NewPath("root").Join(ProviderWorkspace)
}

// AddTenant creates a tenant workspace under root on the root shard,
// binds it to the export (accepting its permission claims), grants the
// tenant's own user admin rights in it and writes the tenant's kubeconfig,
// which points at the gateway. It returns that path.
func (s *Stack) AddTenant(ctx context.Context, name string) (string, error) {
	return s.AddTenantOn(ctx, name, RootShard)
}

// AddTenantOn is AddTenant with the tenant's workspace on shard.
func (s *Stack) AddTenantOn(ctx context.Context, name, shard string) (string, error) {
	clients, err := s.providerClients()
	if err != nil {
		return "", err
	}
	path, err := EnsureWorkspaceOn(ctx, clients.KCP, logicalcluster.NewPath("root"), name, shard)
	if err != nil {
		return "", err
	}
	if err := provider.BindTenant(ctx, clients, path, providerPath(), TenantUser(name)); err != nil {
		return "", err
	}
	kubeconfig := s.cfg.TenantKubeconfig(name)
	if err := s.writeTenantKubeconfig(kubeconfig, TenantUser(name), path); err != nil {
		return "", err
	}
	return kubeconfig, waitTenantAccess(ctx, kubeconfig)
}

// waitTenantAccess waits until the tenant's own identity may use the
// Tekton APIs in its workspace: kcp's authorizer sees a new RBAC binding
// shortly after it is created, not at once.
func waitTenantAccess(ctx context.Context, kubeconfig string) error {
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return err
	}
	client, err := dynamic.NewForConfig(rc)
	if err != nil {
		return err
	}
	pipelineRuns := schema.GroupVersionResource{Group: "tekton.dev", Version: "v1", Resource: "pipelineruns"}
	var last error
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		_, last = client.Resource(pipelineRuns).Namespace("default").List(ctx, metav1.ListOptions{Limit: 1})
		return last == nil, nil
	})
	if err != nil {
		return fmt.Errorf("tenant identity cannot use its workspace: %w (last: %v)", err, last)
	}
	return nil
}

// writeKCPUserKubeconfig writes a kubeconfig for user (a client
// certificate from the kcp client CA) pointing at workspace (kcp's base URL
// when empty) through the front-proxy.
func (s *Stack) writeKCPUserKubeconfig(path, user string, workspace logicalcluster.Path) error {
	server := s.cfg.FrontProxyURL()
	if !workspace.Empty() {
		server += workspace.RequestPath()
	}
	return s.cfg.writeUserKubeconfig(path, user, server, s.cfg.KCPServingCAFile())
}

// writeUserKubeconfig writes a kubeconfig for a kcp user, by its client
// certificate of kcp's client CA (issued once), at server, trusting the CA
// in caFile.
func (c Config) writeUserKubeconfig(path, user, server, caFile string) error {
	certFile, keyFile, err := c.kcpUserCert(user)
	if err != nil {
		return err
	}
	ca, err := os.ReadFile(caFile)
	if err != nil {
		return err
	}
	return writeCertKubeconfig(path, server, ca, certFile, keyFile, user)
}
