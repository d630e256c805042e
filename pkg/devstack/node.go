package devstack

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// nodePKI holds the files a node's kubelet serves with.
type nodePKI struct {
	ca, servingCert, servingKey string
}

// ensureNodePKI issues the node's serving certificate and the client
// certificate of its kubeconfig (system:node:<name>).
func (c Config) ensureNodePKI(cl WorkloadCluster, n workloadNode) (nodePKI, error) {
	ca, err := c.clusterCA(cl)
	if err != nil {
		return nodePKI{}, err
	}
	var pki nodePKI
	pki.ca, _ = ca.files("ca")
	err = c.issue(ca, cl, []leafCert{
		{spec: certSpec{name: "kubelet-serving" + n.suffix, commonName: n.name, server: true, dnsNames: []string{n.name}, ips: []net.IP{n.ip}},
			cert: &pki.servingCert, key: &pki.servingKey},
		{spec: certSpec{name: "kubelet" + n.suffix, commonName: "system:node:" + n.name, organization: []string{"system:nodes"}, client: true},
			kubeconfig: n.kubeletKubeconfig()},
	})
	return pki, err
}

func (c Config) kubeletProcess(n workloadNode) *process {
	k := c.kubernetesBuild()
	p := c.newProcess(n.processName("kubelet"), c.binary(k, "kubelet"),
		"--config="+n.kubeletConfig(),
		"--kubeconfig="+n.kubeletKubeconfig(),
		"--root-dir="+n.kubeletRootDir(),
		"--node-ip="+n.ip.String(),
		"--hostname-override="+n.name)
	p.ports = []string{n.kubeletAddress(), n.healthzAddress()}
	p.netns = n.netns()
	return p
}

// kubeletConfig is the node's KubeletConfiguration. Kubelets of one machine
// must not share the pod log directory: each removes the directories of
// pods it does not know.
func kubeletConfig(n workloadNode, pki nodePKI, clusterDNS net.IP) string {
	return fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: %[1]s
port: %[2]d
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: %[3]d
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: %[4]s
authorization:
  mode: Webhook
tlsCertFile: %[5]s
tlsPrivateKeyFile: %[6]s
cgroupDriver: cgroupfs
cgroupRoot: %[7]s
failCgroupV1: false
podLogsDir: %[8]s
# Pulls come from the local registry; the default 5 pulls/s turns bursts
# of pods into ErrImagePull ("pull QPS exceeded").
registryPullQPS: 0
failSwapOn: false
containerRuntimeEndpoint: unix://%[9]s
resolvConf: /etc/resolv.conf
clusterDomain: cluster.local
clusterDNS: [%[10]s]
serializeImagePulls: false
imageGCHighThresholdPercent: 99
imageGCLowThresholdPercent: 98
evictionHard:
  memory.available: 100Mi
  nodefs.available: 1%%
  nodefs.inodesFree: 1%%
  imagefs.available: 1%%
maxPods: 110
`, n.ip, kubeletPort, n.healthzPort, pki.ca, pki.servingCert, pki.servingKey,
		n.cgroupRoot, n.podLogsDir, n.containerdSocket(), clusterDNS)
}

// startKubelet starts the node's kubelet, restarting it when its
// configuration changed, and waits until the node is Ready.
func (c Config) startKubelet(ctx context.Context, cl WorkloadCluster, n workloadNode) error {
	pki, err := c.ensureNodePKI(cl, n)
	if err != nil {
		return componentErr(n.name+" pki", "", err)
	}
	if err := writeFile(n.kubeletConfig(), kubeletConfig(n, pki, clusterDNSIP(cl))); err != nil {
		return err
	}
	if n.ownsCgroupRoot() {
		if err := ensureCgroupRoot(n.cgroupRoot); err != nil {
			return componentErr(n.processName("kubelet"), "", err)
		}
	}
	p := c.kubeletProcess(n)
	digest, err := fileDigest(n.kubeletConfig())
	if err != nil {
		return err
	}
	p.env = []string{"PIPELINES_SERVICE_CONFIG=" + digest} // a changed config restarts kubelet
	if err := p.start(); err != nil {
		return err
	}
	client, err := c.clusterClient(cl)
	if err != nil {
		return err
	}
	started, err := p.startTime()
	if err != nil {
		return err
	}
	return p.waitFor(ctx, 120*time.Second, "a Ready node", func(ctx context.Context) error {
		return nodeReady(ctx, client, n.name, started)
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

// labelNodes puts each cluster's NodeLabels on its registered nodes.
func (c Config) labelNodes(ctx context.Context) error {
	for _, cl := range c.Clusters {
		client, err := c.clusterClient(cl)
		if err != nil {
			return err
		}
		for name, labels := range cl.NodeLabels {
			if err := ensureNodeLabels(ctx, client, name, labels); err != nil {
				return componentErr(cl.Name, c.LogFile(cl.ProcessPrefix+"kube-apiserver"), err)
			}
		}
	}
	return nil
}

func ensureNodeLabels(ctx context.Context, client kubernetes.Interface, name string, labels map[string]string) error {
	node, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	missing := map[string]string{}
	for k, v := range labels {
		if node.Labels[k] != v {
			missing[k] = v
		}
	}
	if len(missing) == 0 {
		return nil
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"labels": missing}})
	if err != nil {
		return err
	}
	_, err = client.CoreV1().Nodes().Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{})
	return err
}
