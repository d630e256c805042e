package devstack

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/kcp-dev/kcp/sdk/apis/core"
	kcpclientset "github.com/kcp-dev/kcp/sdk/client/clientset/versioned/cluster"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"
)

// kcp runs sharded, as in production (kcp v0.28.1's sharded mode): the
// root shard (the `kcp` process, which keeps the name, port and etcd of the
// single kcp the stack grew from), a second shard with an etcd of its own,
// and kcp-front-proxy, the one address that serves every workspace whatever
// shard holds it. The root shard runs kcp's cache server in-process (its
// data in the root's etcd, under /cache); the second shard reads the
// shared objects (Shards, APIExports, WorkspaceTypes, RBAC) from it.
const (
	// RootShard is the root shard's name: kcp requires it to be "root".
	RootShard = "root"
	// SecondShard is the other shard's name; workspaces land on it only
	// when asked (AddTenantOn).
	SecondShard = "shard-1"

	secondShardPort     = 6444
	secondShardEtcdPort = 12381
	// FrontProxyPort is kcp-front-proxy's port on HostIP.
	FrontProxyPort = 6445
	// frontProxyName is the common name of the front-proxy's request-header
	// certificate: shards trust it (and the gateway's) to name the caller.
	frontProxyName = "kcp-front-proxy"
)

// Shards are the stack's kcp shards, root first.
func Shards() []string { return []string{RootShard, SecondShard} }

func (c Config) shardPort(shard string) int {
	if shard == SecondShard {
		return secondShardPort
	}
	return c.KCPPort
}

// ShardURL is a shard's own address (its Shard's spec.baseURL).
func (c Config) ShardURL(shard string) string {
	return "https://" + net.JoinHostPort(c.HostIP.String(), strconv.Itoa(c.shardPort(shard)))
}

// FrontProxyURL is kcp's single entry for every workspace.
func (c Config) FrontProxyURL() string {
	return "https://" + net.JoinHostPort(c.HostIP.String(), strconv.Itoa(FrontProxyPort))
}

// kcpServingCA signs every shard's and the front-proxy's serving
// certificate. One CA for all of them, as kcp requires: a shard reaches
// the others with one kubeconfig whose host it swaps for their base URL.
func (c Config) kcpServingCA() (*certAuthority, error) {
	return loadOrCreateCA(c.Path("kcp-serving-pki"), "pipelines-service-kcp-serving-ca")
}

// KCPServingCAFile is the CA file clients verify kcp's shards and its
// front-proxy with.
func (c Config) KCPServingCAFile() string {
	f, _ := (&certAuthority{dir: c.Path("kcp-serving-pki")}).files("ca")
	return f
}

func (c Config) shardDir(shard string) string {
	if shard == SecondShard {
		return c.Path("kcp-" + shard)
	}
	return c.Path("kcp")
}

func (c Config) shardFile(name string) string { return c.Path("kcp-shards", name) }

// kcpShardIdentities are the client certificates (of kcp's client CA) the
// shards and the front-proxy act with, by group:
//   - logical-cluster-admin: a shard creates a LogicalCluster on the shard
//     a new workspace is scheduled to, directly at that shard's base URL;
//   - external-logical-cluster-admin: the same through the front-proxy
//     (workspace initialization, endpoint slices' URLs);
//   - shard-admin (system:masters): the second shard registers itself in
//     root and reads the cache; the front-proxy watches every shard's
//     workspaces to know where each lives;
//   - kcp-admin: the stack's own administration through the front-proxy.
var kcpShardIdentities = []certSpec{
	{name: "logical-cluster-admin", commonName: "logical-cluster-admin", organization: []string{"system:kcp:logical-cluster-admin"}, client: true},
	{name: "external-logical-cluster-admin", commonName: "external-logical-cluster-admin", organization: []string{"system:kcp:external-logical-cluster-admin"}, client: true},
	{name: "shard-admin", commonName: "shard-admin", organization: []string{"system:masters"}, client: true},
	{name: "stack-admin", commonName: "pipelines-service-admin", organization: []string{"system:kcp:admin"}, client: true},
}

// kcpShardCredentials issues the shards' and the front-proxy's
// certificates and writes the kubeconfigs and the mapping they start
// with.
func (c Config) kcpShardCredentials() error {
	serving, err := c.kcpServingCA()
	if err != nil {
		return err
	}
	names := []string{RootShard, SecondShard, "front-proxy"}
	for _, name := range names {
		if _, _, err := serving.ensure(certSpec{name: name, commonName: "kcp-" + name, server: true,
			dnsNames: []string{"localhost"}, ips: []net.IP{c.HostIP, net.ParseIP("127.0.0.1")}}); err != nil {
			return err
		}
	}
	clients, err := c.kcpClientCA()
	if err != nil {
		return err
	}
	for _, id := range kcpShardIdentities {
		if _, _, err := clients.ensure(id); err != nil {
			return err
		}
	}
	if _, _, err := ensureSigningKey(c.Path("kcp-shards")); err != nil {
		return err
	}
	fp, err := c.frontProxyCA()
	if err != nil {
		return err
	}
	if _, _, err := fp.ensure(certSpec{name: frontProxyName, commonName: frontProxyName, client: true}); err != nil {
		return err
	}
	return c.writeShardKubeconfigs()
}

func (c Config) writeShardKubeconfigs() error {
	ca, err := os.ReadFile(c.KCPServingCAFile())
	if err != nil {
		return err
	}
	clients := &certAuthority{dir: c.Path("kcp-pki")}
	kubeconfig := func(file, server, identity, context string) error {
		cert, key := clients.files(identity)
		return writeCertKubeconfig(c.shardFile(file), server, ca, cert, key, context)
	}
	root := c.ShardURL(RootShard)
	for _, k := range []struct{ file, server, identity, context string }{
		{"logical-cluster-admin.kubeconfig", root, "logical-cluster-admin", "base"},
		{"external-logical-cluster-admin.kubeconfig", c.FrontProxyURL(), "external-logical-cluster-admin", "base"},
		// kcp loads it with context shard-base, whatever is current.
		{"root-shard.kubeconfig", root, "shard-admin", "shard-base"},
		// The front-proxy replaces the server by each Shard's base URL.
		{"proxy-shards.kubeconfig", root, "shard-admin", "base"},
		{"proxy-root.kubeconfig", root, "shard-admin", "base"},
		{"admin.kubeconfig", c.FrontProxyURL() + "/clusters/root", "stack-admin", "root"},
	} {
		if err := kubeconfig(k.file, k.server, k.identity, k.context); err != nil {
			return err
		}
	}
	// The second shard reads the cache (kcp's in-process cache server of
	// the root shard) at the root's bare address; the cache authenticates
	// no one, the certificate is ignored there.
	fpCert, fpKey := (&certAuthority{dir: c.Path("front-proxy-pki")}).files(frontProxyName)
	type mapping struct {
		Path            string `json:"path"`
		Backend         string `json:"backend"`
		BackendServerCA string `json:"backend_server_ca"`
		ProxyClientCert string `json:"proxy_client_cert"`
		ProxyClientKey  string `json:"proxy_client_key"`
	}
	// /clusters/ goes to whatever shard holds the workspace (the backend
	// is ignored); /services/ (virtual workspaces) only to the root's:
	// clients reach another shard's virtual workspaces at its own URL,
	// as the endpoint slices list them.
	var m []mapping
	for _, path := range []string{"/clusters/", "/services/"} {
		m = append(m, mapping{Path: path, Backend: root, BackendServerCA: c.KCPServingCAFile(), ProxyClientCert: fpCert, ProxyClientKey: fpKey})
	}
	data, err := yaml.Marshal(m)
	if err != nil {
		return err
	}
	return writeFile(c.shardFile("mapping.yaml"), string(data))
}

// shardArgs are the flags every shard starts with: the same client,
// request-header and serving CAs, service-account keys and cross-shard
// identities on all, as kcp's sharded mode requires.
func (c Config) shardArgs(shard string) []string {
	clientCA, _ := (&certAuthority{dir: c.Path("kcp-pki")}).files("ca")
	cert, key := (&certAuthority{dir: c.Path("kcp-serving-pki")}).files(shard)
	saPub, saKey := c.shardFile("sa.pub"), c.shardFile("sa.key")
	args := []string{"start",
		"--root-directory=" + c.shardDir(shard),
		"--client-ca-file=" + clientCA,
		"--bind-address=" + c.HostIP.String(),
		"--secure-port=" + strconv.Itoa(c.shardPort(shard)),
		"--external-hostname=" + c.HostIP.String(),
		"--tls-cert-file=" + cert, "--tls-private-key-file=" + key,
		"--shard-base-url=" + c.ShardURL(shard),
		"--shard-external-url=" + c.FrontProxyURL(),
		"--logical-cluster-admin-kubeconfig=" + c.shardFile("logical-cluster-admin.kubeconfig"),
		"--external-logical-cluster-admin-kubeconfig=" + c.shardFile("external-logical-cluster-admin.kubeconfig"),
		"--service-account-key-file=" + saPub,
		"--service-account-private-key-file=" + saKey,
		"--service-account-signing-key-file=" + saKey,
	}
	return append(args, c.requestHeaderArgs()...)
}

// kcpShardProcess is the second shard.
func (c Config) kcpShardProcess() *process {
	args := append(c.shardArgs(SecondShard),
		"--shard-name="+SecondShard,
		"--root-shard-kubeconfig-file="+c.shardFile("root-shard.kubeconfig"),
		"--cache-kubeconfig="+c.shardFile("root-shard.kubeconfig"),
		"--etcd-servers=http://127.0.0.1:"+strconv.Itoa(secondShardEtcdPort))
	p := c.newProcess("kcp-"+SecondShard, c.binary(c.kcpBuild(), "kcp"), args...)
	p.ports = []string{net.JoinHostPort(c.HostIP.String(), strconv.Itoa(secondShardPort))}
	return p
}

// shardProcesses are a shard's kcp and etcd processes.
func (c Config) shardProcesses(shard string) (kcp, etcd *process) {
	if shard == SecondShard {
		return c.kcpShardProcess(), c.kcpShardEtcdProcess()
	}
	return c.kcpProcess(), c.kcpEtcdProcess()
}

func (c Config) kcpShardEtcdProcess() *process {
	return c.etcdProcess("kcp-"+SecondShard+"-etcd", "kcp-"+SecondShard, c.Path("kcp-"+SecondShard+"-etcd"), secondShardEtcdPort)
}

func (c Config) frontProxyProcess() *process {
	clientCA, _ := (&certAuthority{dir: c.Path("kcp-pki")}).files("ca")
	cert, key := (&certAuthority{dir: c.Path("kcp-serving-pki")}).files("front-proxy")
	args := append([]string{
		"--bind-address=" + c.HostIP.String(),
		"--secure-port=" + strconv.Itoa(FrontProxyPort),
		"--root-directory=" + c.Path("kcp-front-proxy"),
		"--mapping-file=" + c.shardFile("mapping.yaml"),
		"--root-kubeconfig=" + c.shardFile("proxy-root.kubeconfig"),
		"--shards-kubeconfig=" + c.shardFile("proxy-shards.kubeconfig"),
		"--client-ca-file=" + clientCA,
		"--tls-cert-file=" + cert, "--tls-private-key-file=" + key,
	}, c.requestHeaderArgs()...) // the gateway names its callers to it
	p := c.newProcess("kcp-front-proxy", c.binary(c.kcpBuild(), "kcp-front-proxy"), args...)
	p.ports = []string{net.JoinHostPort(c.HostIP.String(), strconv.Itoa(FrontProxyPort))}
	return p
}

// startSecondShard starts the second shard's etcd and the shard, once the
// root shard is ready (it registers itself there), and waits until it is
// ready.
func (s *Stack) startSecondShard(ctx context.Context) error {
	c := s.cfg
	if err := startEtcd(ctx, c.kcpShardEtcdProcess(), secondShardEtcdPort); err != nil {
		return componentErr("kcp "+SecondShard+" etcd", c.LogFile("kcp-"+SecondShard+"-etcd"), err)
	}
	p := c.kcpShardProcess()
	if err := p.start(); err != nil {
		return err
	}
	return p.waitFor(ctx, 180*time.Second, "ready", func(ctx context.Context) error {
		return c.answers(ctx, c.ShardURL(SecondShard)+"/readyz", "shard-admin")
	})
}

// startFrontProxy starts kcp-front-proxy and waits until it routes to the
// root workspace (its own /readyz answers before it knows any shard).
func (s *Stack) startFrontProxy(ctx context.Context) error {
	c := s.cfg
	p := c.frontProxyProcess()
	if err := p.start(); err != nil {
		return err
	}
	return p.waitFor(ctx, 60*time.Second, "routing", func(ctx context.Context) error {
		return c.answers(ctx, c.FrontProxyURL()+"/clusters/root/apis/tenancy.kcp.io/v1alpha1/workspaces", "stack-admin")
	})
}

// answers says whether url answers 200 to a GET as identity (a client
// certificate of kcp's client CA).
func (c Config) answers(ctx context.Context, url, identity string) error {
	cert, key := (&certAuthority{dir: c.Path("kcp-pki")}).files(identity)
	client, err := rest.HTTPClientFor(&rest.Config{Host: url, TLSClientConfig: rest.TLSClientConfig{
		CAFile: c.KCPServingCAFile(), CertFile: cert, KeyFile: key}})
	if err != nil {
		return err
	}
	return answersOK(ctx, client, http.MethodGet, url)
}

// KCPProxyRestConfig is the stack's admin (group system:kcp:admin) at
// the front-proxy, in the root workspace: it reaches every workspace,
// whatever shard holds it.
func (c Config) KCPProxyRestConfig() (*rest.Config, error) {
	rc, err := clientcmd.BuildConfigFromFlags("", c.shardFile("admin.kubeconfig"))
	if err != nil {
		return nil, err
	}
	return adminLimits(rc), nil
}

// KCPProxyBaseRestConfig is KCPProxyRestConfig without a workspace in its
// URL, as cluster-aware clients need it.
func (c Config) KCPProxyBaseRestConfig() (*rest.Config, error) {
	rc, err := c.KCPProxyRestConfig()
	if err != nil {
		return nil, err
	}
	rc.Host = strings.TrimSuffix(rc.Host, "/clusters/root")
	return rc, nil
}

// ShardOf names the shard that holds the logical cluster: the one whose
// own address serves it (as a shard admin, not through the front-proxy).
func (c Config) ShardOf(ctx context.Context, cluster string) (string, error) {
	for _, shard := range Shards() {
		if c.answers(ctx, c.ShardURL(shard)+"/clusters/"+cluster+"/apis/core.kcp.io/v1alpha1/logicalclusters/cluster", "shard-admin") == nil {
			return shard, nil
		}
	}
	return "", fmt.Errorf("no shard of the stack serves logical cluster %s", cluster)
}

// ShardWorkspaces counts, on each shard, the logical clusters whose
// workspace path starts with prefix (as a shard admin, on the shard's own
// address: what each shard really holds).
func (c Config) ShardWorkspaces(ctx context.Context, prefix string) (map[string]int, error) {
	counts := map[string]int{}
	cert, key := (&certAuthority{dir: c.Path("kcp-pki")}).files("shard-admin")
	for _, shard := range Shards() {
		rc := &rest.Config{Host: c.ShardURL(shard), TLSClientConfig: rest.TLSClientConfig{CAFile: c.KCPServingCAFile(), CertFile: cert, KeyFile: key}}
		client, err := kcpclientset.NewForConfig(rc)
		if err != nil {
			return nil, err
		}
		list, err := client.CoreV1alpha1().LogicalClusters().List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, fmt.Errorf("logical clusters of shard %s: %w", shard, err)
		}
		for _, lc := range list.Items {
			if strings.HasPrefix(lc.Annotations[core.LogicalClusterPathAnnotationKey], prefix) {
				counts[shard]++
			}
		}
	}
	return counts, nil
}

// StopSecondShard stops the second kcp shard by PID (until
// StartSecondShard or Up); its etcd keeps running.
func (s *Stack) StopSecondShard() error { return s.cfg.kcpShardProcess().stop(20 * time.Second) }

// StartSecondShard starts the second shard again and waits until it is
// ready.
func (s *Stack) StartSecondShard(ctx context.Context) error { return s.startSecondShard(ctx) }
