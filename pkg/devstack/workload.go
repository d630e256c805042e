package devstack

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

const etcdBinary = "/usr/bin/etcd" // Debian package etcd-server

// workloadPKI holds the files the workload cluster's components use.
type workloadPKI struct {
	ca, caKey                             string
	apiserverCert, apiserverKey           string
	kubeletClientCert, kubeletClientKey   string // apiserver -> kubelet
	kubeletServingCert, kubeletServingKey string
	saPub, saKey                          string
}

func (c Config) ensureWorkloadPKI() (workloadPKI, error) {
	dir := c.Path("workload", "pki")
	ca, err := loadOrCreateCA(dir, "pipelines-service-workload-ca")
	if err != nil {
		return workloadPKI{}, err
	}
	var pki workloadPKI
	pki.ca, pki.caKey = ca.files("ca")
	svcIP := firstIP(c.ServiceCIDR)
	issue := []struct {
		spec       certSpec
		cert, key  *string
		kubeconfig string // written for client certs that need one
	}{
		{spec: certSpec{name: "apiserver", commonName: "kube-apiserver", server: true,
			dnsNames: []string{"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local", "localhost"},
			ips:      []net.IP{c.HostIP, net.ParseIP("127.0.0.1"), svcIP}}, cert: &pki.apiserverCert, key: &pki.apiserverKey},
		{spec: certSpec{name: "apiserver-kubelet-client", commonName: "kube-apiserver-kubelet-client", organization: []string{"system:masters"}, client: true},
			cert: &pki.kubeletClientCert, key: &pki.kubeletClientKey},
		{spec: certSpec{name: "kubelet-serving", commonName: c.NodeName, server: true, dnsNames: []string{c.NodeName}, ips: []net.IP{c.HostIP}},
			cert: &pki.kubeletServingCert, key: &pki.kubeletServingKey},
		{spec: certSpec{name: "admin", commonName: "kubernetes-admin", organization: []string{"system:masters"}, client: true},
			kubeconfig: c.WorkloadAdminKubeconfig()},
		{spec: certSpec{name: "controller-manager", commonName: "system:kube-controller-manager", client: true},
			kubeconfig: c.Path("workload", "controller-manager.kubeconfig")},
		{spec: certSpec{name: "scheduler", commonName: "system:kube-scheduler", client: true},
			kubeconfig: c.Path("workload", "scheduler.kubeconfig")},
		{spec: certSpec{name: "kubelet", commonName: "system:node:" + c.NodeName, organization: []string{"system:nodes"}, client: true},
			kubeconfig: c.Path("workload", "kubelet.kubeconfig")},
	}
	caData, err := os.ReadFile(pki.ca)
	if err != nil {
		return workloadPKI{}, err
	}
	for _, i := range issue {
		cert, key, err := ca.ensure(i.spec)
		if err != nil {
			return workloadPKI{}, err
		}
		if i.cert != nil {
			*i.cert, *i.key = cert, key
		}
		if i.kubeconfig != "" {
			if err := writeCertKubeconfig(i.kubeconfig, c.workloadAPIURL(), caData, cert, key, "workload"); err != nil {
				return workloadPKI{}, err
			}
		}
	}
	pki.saPub, pki.saKey, err = ensureSigningKey(dir)
	return pki, err
}

func firstIP(n *net.IPNet) net.IP {
	ip := make(net.IP, len(n.IP.To4()))
	copy(ip, n.IP.To4())
	ip[len(ip)-1]++
	return ip
}

func (c Config) etcdProcess() *process {
	client := "http://127.0.0.1:" + strconv.Itoa(c.WorkloadEtcdPort)
	peer := "http://127.0.0.1:" + strconv.Itoa(c.WorkloadEtcdPort+1)
	p := c.newProcess("etcd", etcdBinary,
		"--name=workload", "--data-dir="+c.Path("workload", "etcd"),
		"--listen-client-urls="+client, "--advertise-client-urls="+client,
		"--listen-peer-urls="+peer, "--initial-advertise-peer-urls="+peer,
		"--initial-cluster=workload="+peer, "--listen-metrics-urls=",
		"--quota-backend-bytes=4294967296")
	p.ports = []string{"127.0.0.1:" + strconv.Itoa(c.WorkloadEtcdPort), "127.0.0.1:" + strconv.Itoa(c.WorkloadEtcdPort+1)}
	p.env = []string{"ETCD_UNSUPPORTED_ARCH=amd64"}
	return p
}

func (c Config) startEtcd(ctx context.Context) error {
	p := c.etcdProcess()
	if err := p.start(); err != nil {
		return err
	}
	return p.waitFor(ctx, 60*time.Second, "healthy", func(ctx context.Context) error {
		return httpOK(ctx, fmt.Sprintf("http://127.0.0.1:%d/health", c.WorkloadEtcdPort))
	})
}

func (c Config) apiserverProcess(pki workloadPKI) *process {
	k := c.kubernetesBuild()
	p := c.newProcess("kube-apiserver", c.binary(k, "kube-apiserver"),
		"--etcd-servers=http://127.0.0.1:"+strconv.Itoa(c.WorkloadEtcdPort),
		"--bind-address="+c.HostIP.String(), "--secure-port="+strconv.Itoa(c.WorkloadAPIPort),
		"--advertise-address="+c.HostIP.String(),
		"--service-cluster-ip-range="+c.ServiceCIDR.String(),
		"--client-ca-file="+pki.ca,
		"--tls-cert-file="+pki.apiserverCert, "--tls-private-key-file="+pki.apiserverKey,
		"--kubelet-client-certificate="+pki.kubeletClientCert, "--kubelet-client-key="+pki.kubeletClientKey,
		"--kubelet-certificate-authority="+pki.ca,
		"--kubelet-preferred-address-types=InternalIP",
		"--service-account-key-file="+pki.saPub, "--service-account-signing-key-file="+pki.saKey,
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--authorization-mode=Node,RBAC", "--enable-admission-plugins=NodeRestriction",
		"--allow-privileged=true", "--cert-dir="+c.Path("workload", "apiserver-certs"))
	p.ports = []string{net.JoinHostPort(c.HostIP.String(), strconv.Itoa(c.WorkloadAPIPort))}
	return p
}

func (c Config) startAPIServer(ctx context.Context, pki workloadPKI) error {
	p := c.apiserverProcess(pki)
	if err := p.start(); err != nil {
		return err
	}
	client, err := c.WorkloadClient()
	if err != nil {
		return err
	}
	return p.waitFor(ctx, 90*time.Second, "ready", func(ctx context.Context) error {
		_, err := client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return err
	})
}

func (c Config) controllerManagerProcess(pki workloadPKI) *process {
	k := c.kubernetesBuild()
	kubeconfig := c.Path("workload", "controller-manager.kubeconfig")
	return c.newProcess("kube-controller-manager", c.binary(k, "kube-controller-manager"),
		"--kubeconfig="+kubeconfig, "--authentication-kubeconfig="+kubeconfig, "--authorization-kubeconfig="+kubeconfig,
		"--bind-address=127.0.0.1", "--leader-elect=false",
		"--service-account-private-key-file="+pki.saKey, "--root-ca-file="+pki.ca,
		"--cluster-signing-cert-file="+pki.ca, "--cluster-signing-key-file="+pki.caKey,
		"--use-service-account-credentials=true",
		"--service-cluster-ip-range="+c.ServiceCIDR.String())
}

func (c Config) schedulerProcess() *process {
	k := c.kubernetesBuild()
	kubeconfig := c.Path("workload", "scheduler.kubeconfig")
	return c.newProcess("kube-scheduler", c.binary(k, "kube-scheduler"),
		"--kubeconfig="+kubeconfig, "--authentication-kubeconfig="+kubeconfig, "--authorization-kubeconfig="+kubeconfig,
		"--bind-address=127.0.0.1", "--leader-elect=false")
}

func (c Config) kubeletProcess() *process {
	k := c.kubernetesBuild()
	return c.newProcess("kubelet", c.binary(k, "kubelet"),
		"--config="+c.Path("workload", "kubelet-config.yaml"),
		"--kubeconfig="+c.Path("workload", "kubelet.kubeconfig"),
		"--root-dir="+c.kubeletRootDir(),
		"--node-ip="+c.HostIP.String(),
		"--hostname-override="+c.NodeName)
}

func (c Config) kubeletRootDir() string { return c.Path("workload", "kubelet") }

func (c Config) startKubelet(ctx context.Context, pki workloadPKI) error {
	config := fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: %[1]s
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: %[2]s
authorization:
  mode: Webhook
tlsCertFile: %[3]s
tlsPrivateKeyFile: %[4]s
cgroupDriver: cgroupfs
failCgroupV1: false
# Pulls come from the local registry; the default 5 pulls/s turns bursts
# of pods into ErrImagePull ("pull QPS exceeded").
registryPullQPS: 0
failSwapOn: false
containerRuntimeEndpoint: unix://%[5]s
resolvConf: /etc/resolv.conf
clusterDomain: cluster.local
serializeImagePulls: false
imageGCHighThresholdPercent: 99
imageGCLowThresholdPercent: 98
evictionHard:
  memory.available: 100Mi
  nodefs.available: 1%%
  nodefs.inodesFree: 1%%
  imagefs.available: 1%%
maxPods: 110
`, c.HostIP, pki.ca, pki.kubeletServingCert, pki.kubeletServingKey, c.containerdSocket())
	if err := writeFile(c.Path("workload", "kubelet-config.yaml"), config); err != nil {
		return err
	}
	p := c.kubeletProcess()
	digest, err := fileDigest(c.Path("workload", "kubelet-config.yaml"))
	if err != nil {
		return err
	}
	p.env = []string{"PIPELINES_SERVICE_CONFIG=" + digest} // a changed config restarts kubelet
	if err := p.start(); err != nil {
		return err
	}
	client, err := c.WorkloadClient()
	if err != nil {
		return err
	}
	started, err := p.startTime()
	if err != nil {
		return err
	}
	return p.waitFor(ctx, 120*time.Second, "a Ready node", func(ctx context.Context) error {
		return nodeReady(ctx, client, c.NodeName, started)
	})
}

// nodeReady requires a Ready condition heartbeat from the running kubelet:
// after a restart the stored condition is stale until it reports again.
func nodeReady(ctx context.Context, client kubernetes.Interface, name string, since time.Time) error {
	node, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	for _, cond := range node.Status.Conditions {
		if cond.Type == corev1.NodeReady {
			if cond.LastHeartbeatTime.Time.Before(since.Truncate(time.Second)) {
				return fmt.Errorf("node %s: no heartbeat from the running kubelet yet", name)
			}
			if cond.Status == corev1.ConditionTrue {
				return nil
			}
			return fmt.Errorf("node %s not ready: %s: %s", name, cond.Reason, cond.Message)
		}
	}
	return fmt.Errorf("node %s has no Ready condition yet", name)
}

// WorkloadClient is an admin client of the workload cluster.
func (c Config) WorkloadClient() (kubernetes.Interface, error) {
	rc, err := clientcmd.BuildConfigFromFlags("", c.WorkloadAdminKubeconfig())
	if err != nil {
		return nil, err
	}
	rc.Timeout = 10 * time.Second
	return kubernetes.NewForConfig(rc)
}
