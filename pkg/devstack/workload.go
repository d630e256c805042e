package devstack

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"
)

const etcdBinary = "/usr/bin/etcd" // Debian package etcd-server

// clusterPKI holds the files a workload cluster's control plane uses.
type clusterPKI struct {
	ca, caKey                           string
	apiserverCert, apiserverKey         string
	kubeletClientCert, kubeletClientKey string // apiserver -> kubelet
	saPub, saKey                        string
}

// leafCert is a certificate to issue and where its files, or the kubeconfig
// authenticating with it, go.
type leafCert struct {
	spec       certSpec
	cert, key  *string
	kubeconfig string
}

func (c Config) clusterCA(cl WorkloadCluster) (*certAuthority, error) {
	return loadOrCreateCA(c.Path(cl.Dir, "pki"), "pipelines-service-"+cl.Dir+"-ca")
}

func (c Config) ensureClusterPKI(cl WorkloadCluster) (clusterPKI, error) {
	ca, err := c.clusterCA(cl)
	if err != nil {
		return clusterPKI{}, err
	}
	var pki clusterPKI
	pki.ca, pki.caKey = ca.files("ca")
	err = c.issue(ca, cl, []leafCert{
		{spec: certSpec{name: "apiserver", commonName: "kube-apiserver", server: true,
			dnsNames: []string{"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local", "localhost"},
			ips:      []net.IP{c.clusterAddress(cl), net.ParseIP("127.0.0.1"), firstIP(cl.ServiceCIDR)}},
			cert: &pki.apiserverCert, key: &pki.apiserverKey},
		{spec: certSpec{name: "apiserver-kubelet-client", commonName: "kube-apiserver-kubelet-client", organization: []string{"system:masters"}, client: true},
			cert: &pki.kubeletClientCert, key: &pki.kubeletClientKey},
		{spec: certSpec{name: "admin", commonName: "kubernetes-admin", organization: []string{"system:masters"}, client: true},
			kubeconfig: c.adminKubeconfig(cl)},
		{spec: certSpec{name: "controller-manager", commonName: "system:kube-controller-manager", client: true},
			kubeconfig: c.controllerManagerKubeconfig(cl)},
		{spec: certSpec{name: "scheduler", commonName: "system:kube-scheduler", client: true},
			kubeconfig: c.schedulerKubeconfig(cl)},
	})
	if err != nil {
		return clusterPKI{}, err
	}
	pki.saPub, pki.saKey, err = ensureSigningKey(ca.dir)
	return pki, err
}

// issue makes the certificates that are missing and writes the kubeconfigs.
func (c Config) issue(ca *certAuthority, cl WorkloadCluster, certs []leafCert) error {
	caFile, _ := ca.files("ca")
	caData, err := os.ReadFile(caFile)
	if err != nil {
		return err
	}
	for _, lc := range certs {
		cert, key, err := ca.ensure(lc.spec)
		if err != nil {
			return err
		}
		if lc.cert != nil {
			*lc.cert, *lc.key = cert, key
		}
		if lc.kubeconfig != "" {
			if err := writeCertKubeconfig(lc.kubeconfig, c.clusterAPIURL(cl), caData, cert, key, cl.Dir); err != nil {
				return err
			}
		}
	}
	return nil
}

func (c Config) controllerManagerKubeconfig(cl WorkloadCluster) string {
	return c.Path(cl.Dir, "controller-manager.kubeconfig")
}

func (c Config) schedulerKubeconfig(cl WorkloadCluster) string {
	return c.Path(cl.Dir, "scheduler.kubeconfig")
}

// etcdProcess is a single-member etcd from Debian's etcd-server, serving
// plain HTTP on loopback only (nothing but its apiserver on this host talks
// to it), with its default fsync on every commit. member is the name in
// its data: a member that was started keeps it.
func (c Config) etcdProcess(name, member, dataDir string, port int) *process {
	client := "http://127.0.0.1:" + strconv.Itoa(port)
	peer := "http://127.0.0.1:" + strconv.Itoa(port+1)
	p := c.newProcess(name, etcdBinary,
		"--name="+member, "--data-dir="+dataDir,
		"--listen-client-urls="+client, "--advertise-client-urls="+client,
		"--listen-peer-urls="+peer, "--initial-advertise-peer-urls="+peer,
		"--initial-cluster="+member+"="+peer, "--listen-metrics-urls=",
		"--quota-backend-bytes=4294967296")
	p.ports = []string{"127.0.0.1:" + strconv.Itoa(port), "127.0.0.1:" + strconv.Itoa(port+1)}
	p.env = []string{"ETCD_UNSUPPORTED_ARCH=amd64"}
	return p
}

// startEtcd starts p (an etcdProcess serving port) and waits until it is
// healthy.
func startEtcd(ctx context.Context, p *process, port int) error {
	if err := p.start(); err != nil {
		return err
	}
	return p.waitFor(ctx, 60*time.Second, "healthy", func(ctx context.Context) error {
		return httpOK(ctx, fmt.Sprintf("http://127.0.0.1:%d/health", port))
	})
}

func (c Config) clusterEtcdProcess(cl WorkloadCluster) *process {
	return c.etcdProcess(cl.ProcessPrefix+"etcd", cl.Dir, c.Path(cl.Dir, "etcd"), cl.EtcdPort)
}

func (c Config) apiserverProcess(cl WorkloadCluster, pki clusterPKI) *process {
	k := c.kubernetesBuild()
	addr := c.clusterAddress(cl).String()
	p := c.newProcess(cl.ProcessPrefix+"kube-apiserver", c.binary(k, "kube-apiserver"),
		"--etcd-servers=http://127.0.0.1:"+strconv.Itoa(cl.EtcdPort),
		"--bind-address="+addr, "--secure-port="+strconv.Itoa(cl.APIPort),
		"--advertise-address="+addr,
		"--service-cluster-ip-range="+cl.ServiceCIDR.String(),
		"--client-ca-file="+pki.ca,
		"--tls-cert-file="+pki.apiserverCert, "--tls-private-key-file="+pki.apiserverKey,
		"--kubelet-client-certificate="+pki.kubeletClientCert, "--kubelet-client-key="+pki.kubeletClientKey,
		"--kubelet-certificate-authority="+pki.ca,
		"--kubelet-preferred-address-types=InternalIP",
		"--service-account-key-file="+pki.saPub, "--service-account-signing-key-file="+pki.saKey,
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--authorization-mode=Node,RBAC", "--enable-admission-plugins=NodeRestriction",
		"--allow-privileged=true", "--cert-dir="+c.Path(cl.Dir, "apiserver-certs"))
	p.ports = []string{net.JoinHostPort(addr, strconv.Itoa(cl.APIPort))}
	return p
}

func (c Config) startAPIServer(ctx context.Context, cl WorkloadCluster, pki clusterPKI) error {
	p := c.apiserverProcess(cl, pki)
	if err := p.start(); err != nil {
		return err
	}
	client, err := c.clusterClient(cl)
	if err != nil {
		return err
	}
	return p.waitFor(ctx, 90*time.Second, "ready", func(ctx context.Context) error {
		_, err := client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return err
	})
}

// The controller manager and the scheduler serve their default secure ports
// on the cluster's address, so those of different clusters do not clash.
func (c Config) controllerManagerProcess(cl WorkloadCluster, pki clusterPKI) *process {
	k := c.kubernetesBuild()
	kubeconfig := c.controllerManagerKubeconfig(cl)
	return c.newProcess(cl.ProcessPrefix+"kube-controller-manager", c.binary(k, "kube-controller-manager"),
		"--kubeconfig="+kubeconfig, "--authentication-kubeconfig="+kubeconfig, "--authorization-kubeconfig="+kubeconfig,
		"--bind-address="+c.clusterAddress(cl).String(), "--leader-elect=false",
		"--service-account-private-key-file="+pki.saKey, "--root-ca-file="+pki.ca,
		"--cluster-signing-cert-file="+pki.ca, "--cluster-signing-key-file="+pki.caKey,
		"--use-service-account-credentials=true",
		"--service-cluster-ip-range="+cl.ServiceCIDR.String())
}

func (c Config) schedulerProcess(cl WorkloadCluster) *process {
	k := c.kubernetesBuild()
	kubeconfig := c.schedulerKubeconfig(cl)
	return c.newProcess(cl.ProcessPrefix+"kube-scheduler", c.binary(k, "kube-scheduler"),
		"--kubeconfig="+kubeconfig, "--authentication-kubeconfig="+kubeconfig, "--authorization-kubeconfig="+kubeconfig,
		"--bind-address="+c.clusterAddress(cl).String(), "--leader-elect=false")
}

// startControlPlane starts a cluster's apiserver (waiting until it is
// ready), controller manager and scheduler.
func (c Config) startControlPlane(ctx context.Context, cl WorkloadCluster) error {
	pki, err := c.ensureClusterPKI(cl)
	if err != nil {
		return componentErr(cl.Name+" pki", "", err)
	}
	if err := c.startAPIServer(ctx, cl, pki); err != nil {
		return err
	}
	if err := c.controllerManagerProcess(cl, pki).start(); err != nil {
		return err
	}
	return c.schedulerProcess(cl).start()
}

// controlPlaneProcesses are a cluster's processes in start order.
func (c Config) controlPlaneProcesses(cl WorkloadCluster) []*process {
	pki := clusterPKI{} // arguments do not matter for finding or stopping
	return []*process{c.clusterEtcdProcess(cl), c.apiserverProcess(cl, pki), c.controllerManagerProcess(cl, pki), c.schedulerProcess(cl)}
}
