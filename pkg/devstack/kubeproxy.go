package devstack

import (
	"context"
	"fmt"
	"os/exec"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	rbacapply "k8s.io/client-go/applyconfigurations/rbac/v1"
)

// kubeProxyUser is every node's kube-proxy identity in a cluster; it is
// bound to Kubernetes' own system:node-proxier role.
const kubeProxyUser = "system:kube-proxy"

func (c Config) kubeProxyKubeconfig(cl WorkloadCluster) string {
	return c.Path(cl.Dir, "kube-proxy.kubeconfig")
}

// kubeProxyProcess makes Services real on a node: kube-proxy from the same
// Kubernetes build, in iptables mode, in the node's network namespace. It
// leaves the conntrack sysctls alone (0): they are the machine's, not the
// namespace's. Traffic to a ClusterIP from outside the pod network (the
// host) is masqueraded, so that replies come back through this node. Its
// health and metrics ports are moved off the defaults (10256, 10249): the
// kubelets' health ports count up from 10248 in the nodes' namespaces.
func (c Config) kubeProxyProcess(cl WorkloadCluster, n workloadNode) *process {
	p := c.newProcess(n.processName("kube-proxy"), c.binary(c.kubernetesBuild(), "kube-proxy"),
		"--kubeconfig="+c.kubeProxyKubeconfig(cl),
		"--hostname-override="+n.name,
		"--proxy-mode=iptables",
		"--cluster-cidr="+c.PodNetwork.String(),
		"--conntrack-max-per-core=0", "--conntrack-min=0",
		"--conntrack-tcp-timeout-established=0", "--conntrack-tcp-timeout-close-wait=0",
		"--healthz-bind-address=127.0.0.1:10356", "--metrics-bind-address=127.0.0.1:10349")
	p.netns = n.netns()
	return p
}

// startKubeProxy starts the node's kube-proxy and waits until it has
// written its service chains. The cluster's first node also carries the
// host's route to the cluster's Services: the host (the gateway, a
// developer's curl) reaches a ClusterIP as a pod does.
func (c Config) startKubeProxy(ctx context.Context, cl WorkloadCluster, n workloadNode) error {
	name := n.processName("kube-proxy")
	if err := c.ensureKubeProxyAccess(ctx, cl); err != nil {
		return componentErr(name, "", err)
	}
	p := c.kubeProxyProcess(cl, n)
	if err := p.start(); err != nil {
		return err
	}
	if err := p.waitFor(ctx, 90*time.Second, "its service chains in the node's nat table", func(context.Context) error {
		return inNetNS(n.netns(), func() error {
			if out, err := exec.Command("iptables", "-t", "nat", "-S", "KUBE-SERVICES").CombinedOutput(); err != nil {
				return fmt.Errorf("iptables -t nat -S KUBE-SERVICES: %v: %s", err, out)
			}
			return nil
		})
	}); err != nil {
		return err
	}
	if nodes := c.clusterNodes(cl); nodes[0].name == n.name {
		return ipCommand("route", "replace", cl.ServiceCIDR.String(), "via", n.ip.String(), "dev", c.BridgeName)
	}
	return nil
}

// ensureKubeProxyAccess issues kube-proxy's kubeconfig and binds its
// identity to system:node-proxier.
func (c Config) ensureKubeProxyAccess(ctx context.Context, cl WorkloadCluster) error {
	ca, err := c.clusterCA(cl)
	if err != nil {
		return err
	}
	if err := c.issue(ca, cl, []leafCert{{
		spec:       certSpec{name: "kube-proxy", commonName: kubeProxyUser, client: true},
		kubeconfig: c.kubeProxyKubeconfig(cl),
	}}); err != nil {
		return err
	}
	client, err := c.clusterClient(cl)
	if err != nil {
		return err
	}
	binding := rbacapply.ClusterRoleBinding("pipelines-service:kube-proxy").
		WithRoleRef(rbacapply.RoleRef().WithAPIGroup(rbacv1.GroupName).WithKind("ClusterRole").WithName("system:node-proxier")).
		WithSubjects(rbacapply.Subject().WithAPIGroup(rbacv1.GroupName).WithKind(rbacv1.UserKind).WithName(kubeProxyUser))
	_, err = client.RbacV1().ClusterRoleBindings().Apply(ctx, binding, metav1.ApplyOptions{FieldManager: "pipelines-service-devstack", Force: true})
	return err
}

// PlatformServices are the platform's Services on the workload clusters,
// as "<ClusterIP> <port>": every cluster's kubernetes Service (its
// apiserver) and the triggers sink. Tenant pods must reach none of them.
func (c Config) PlatformServices() []string {
	var out []string
	for _, cl := range c.WorkloadClusters() {
		out = append(out, nthIP(cl.ServiceCIDR, 1).String()+" 443")
	}
	return append(out, nthIP(c.triggersSinkCluster().ServiceCIDR, triggersSinkServiceIndex).String()+" 80")
}
