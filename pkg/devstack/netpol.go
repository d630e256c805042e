package devstack

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	rbacapply "k8s.io/client-go/applyconfigurations/rbac/v1"
	"k8s.io/client-go/kubernetes"
)

// KubeRouterVersion is the kube-router release whose network policy
// controller enforces NetworkPolicies on the stack's nodes. It is the only
// release the module proxy serves; its advisories (GO-2026-4724, the
// service proxy; GHSA-v5mh-h5hx-7v92, the BGP router's gRPC server) are in
// controllers the stack does not run.
const KubeRouterVersion = "v2.1.0"

// networkPolicyAgentUser is the identity of every node's agent in a
// cluster; networkPolicyAgentRole grants it what kube-router's informers
// read, and nothing else.
const (
	networkPolicyAgentUser = "pipelines-service:network-policy-agent"
	networkPolicyAgentRole = "pipelines-service:network-policy-agent"
	ipsetBinary            = "/usr/sbin/ipset" // Debian package ipset
)

func (c Config) kubeRouterBuild() goBuild {
	return goBuild{
		component: "kube-router", version: KubeRouterVersion + "+" + c.ownSourceDigest("kube-router"), module: "kube-router",
		typical: 2 * time.Minute,
		// kube-router's network policy controller behind our own main, which
		// passes on only the pod events that change a rule (see there).
		packages: []string{"github.com/pipelines-service/pipelines-service/third_party/kube-router/cmd/network-policy-agent"},
		ldflags:  []string{"-X", "github.com/cloudnativelabs/kube-router/v2/pkg/version.Version=" + KubeRouterVersion},
	}
}

func (c Config) networkPolicyAgentKubeconfig(cl WorkloadCluster) string {
	return c.Path(cl.Dir, "network-policy-agent.kubeconfig")
}

// podSyncInterval is the quiet a node's agent keeps between the end of
// one full sync for pod events and the start of the next (the agent's
// --pod-sync-interval): the first event after a quiet interval is synced at
// once, the events during a sync and the interval after it as one sync at
// the interval's end. Passed only together with the node's fail-closed
// rule, so a pod that waits has no network, not an unfiltered one.
//
// Why 2 s: during the examples a sync took the agent's iptables-nft
// children about 0.7 CPU seconds, and the three agents synced without
// pause (an interval counted from a sync's start), more CPU than kcp. A
// pod's first connection then waits at most a sync, the quiet and a sync;
// its SYN is retried at 1, 3 and 7 s.
const podSyncInterval = 2 * time.Second

// nodeFailClosed is the stack's chain behind kube-router's in a node's
// filter: new connections from a pod address that kube-router's chains
// did not accept are dropped.
//
// Why: kube-router filters a pod from its own chain, which it writes in a
// full sync after it has seen the pod with its IP; until then the pod's
// traffic passes its chains untouched, and the node would forward it.
// kube-router ACCEPTs inside its own chains whatever a pod's chain allows
// (mark 0x20000), and REJECTs what it refuses, so what comes back from
// them is traffic of no pod it knows of: on this node, a pod whose chain
// is not written yet, or another node's pod addressing this node. Dropped
// (not rejected), a new pod's first connection is retried by TCP and goes
// through once its chain exists. Replies (ESTABLISHED), such as a pod's
// answer to the kubelet's probe, pass.
//
// It is what lets the agents batch their syncs (podSyncInterval), and it
// closes the window that every NetworkPolicy enforcer without it has: a
// pod's first instant before its filter. On a real cluster it is a node
// setting, as the CNI's own is (Calico drops the traffic of a workload
// interface that has no policy programmed yet by the same reasoning).
func (c Config) nodeFailClosed() filterChain {
	return filterChain{
		name: "PS-POD-FAIL-CLOSED",
		rules: [][]string{
			{"-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "RETURN"},
			{"-s", c.PodNetwork.String(), "-m", "comment", "--comment", "a pod without its network policy chain", "-j", "DROP"},
		},
		// After kube-router's jump, which it keeps first in each.
		from: []string{"FORWARD", "INPUT"},
	}
}

// ensureNodeFailClosed puts the fail-closed chain in the node's filter.
func (c Config) ensureNodeFailClosed(n workloadNode) error {
	return componentErr(n.name+" network", "", inNetNS(n.netns(), c.nodeFailClosed().ensure))
}

// networkPolicyAgentProcess is kube-router's network policy controller
// alone (no BGP router, no service proxy, no health, metrics or pprof
// port), in the node's network namespace, whose packet filter it
// owns: each sync rewrites the namespace's whole filter table, so one
// agent per namespace. NODE_NAME names the node (the host name is the
// host's in every namespace).
func (c Config) networkPolicyAgentProcess(cl WorkloadCluster, n workloadNode) *process {
	p := c.newProcess(n.processName("network-policy-agent"), c.binary(c.kubeRouterBuild(), "network-policy-agent"),
		"--kubeconfig="+c.networkPolicyAgentKubeconfig(cl),
		"--hostname-override="+n.name,
		"--run-firewall=true", "--run-router=false", "--run-service-proxy=false",
		"--service-cluster-ip-range="+cl.ServiceCIDR.String(),
		"--health-port=0", "--metrics-port=0",
		"--pod-sync-interval="+podSyncInterval.String())
	p.env = []string{"NODE_NAME=" + n.name}
	p.netns = n.netns()
	return p
}

// startNetworkPolicyAgent starts the node's agent once its node is
// registered (the agent finds its node IP there) and waits until the
// agent has installed its chains in the node's filter. The node fails
// closed before: until the agent's first sync, no pod's new connection
// leaves it.
func (c Config) startNetworkPolicyAgent(ctx context.Context, cl WorkloadCluster, n workloadNode) error {
	name := n.processName("network-policy-agent")
	if err := c.ensureNodeFailClosed(n); err != nil {
		return err
	}
	if _, err := os.Stat(ipsetBinary); err != nil {
		return componentErr(name, "", fmt.Errorf("%s missing: install Debian's iptables and ipset (hack/install-deps.sh)", ipsetBinary))
	}
	if err := c.ensureBuilt(ctx, c.kubeRouterBuild()); err != nil {
		return componentErr(name, c.LogFile("build-kube-router"), err)
	}
	if err := c.ensureNetworkPolicyAgentAccess(ctx, cl); err != nil {
		return componentErr(name, "", err)
	}
	p := c.networkPolicyAgentProcess(cl, n)
	if err := p.start(); err != nil {
		return err
	}
	return p.waitFor(ctx, 90*time.Second, "its chains in the node's filter", func(context.Context) error {
		return inNetNS(n.netns(), func() error {
			if out, err := exec.Command("iptables", "-t", "filter", "-S", "KUBE-ROUTER-FORWARD").CombinedOutput(); err != nil {
				return fmt.Errorf("iptables -S KUBE-ROUTER-FORWARD: %v: %s", err, out)
			}
			return nil
		})
	})
}

// ensureNetworkPolicyAgentAccess issues the agents' kubeconfig and grants
// their identity read access to what kube-router watches.
func (c Config) ensureNetworkPolicyAgentAccess(ctx context.Context, cl WorkloadCluster) error {
	ca, err := c.clusterCA(cl)
	if err != nil {
		return err
	}
	if err := c.issue(ca, cl, []leafCert{{
		spec:       certSpec{name: "network-policy-agent", commonName: networkPolicyAgentUser, client: true},
		kubeconfig: c.networkPolicyAgentKubeconfig(cl),
	}}); err != nil {
		return err
	}
	client, err := c.clusterClient(cl)
	if err != nil {
		return err
	}
	return applyNetworkPolicyAgentRBAC(ctx, client)
}

func applyNetworkPolicyAgentRBAC(ctx context.Context, client kubernetes.Interface) error {
	read := []string{"get", "list", "watch"}
	role := rbacapply.ClusterRole(networkPolicyAgentRole).WithRules(
		rbacapply.PolicyRule().WithAPIGroups("").WithResources("pods", "namespaces", "nodes", "services", "endpoints").WithVerbs(read...),
		rbacapply.PolicyRule().WithAPIGroups("discovery.k8s.io").WithResources("endpointslices").WithVerbs(read...),
		rbacapply.PolicyRule().WithAPIGroups("networking.k8s.io").WithResources("networkpolicies").WithVerbs(read...),
	)
	opts := metav1.ApplyOptions{FieldManager: "pipelines-service-devstack", Force: true}
	if _, err := client.RbacV1().ClusterRoles().Apply(ctx, role, opts); err != nil {
		return err
	}
	binding := rbacapply.ClusterRoleBinding(networkPolicyAgentRole).
		WithRoleRef(rbacapply.RoleRef().WithAPIGroup(rbacv1.GroupName).WithKind("ClusterRole").WithName(networkPolicyAgentRole)).
		WithSubjects(rbacapply.Subject().WithAPIGroup(rbacv1.GroupName).WithKind(rbacv1.UserKind).WithName(networkPolicyAgentUser))
	_, err := client.RbacV1().ClusterRoleBindings().Apply(ctx, binding, opts)
	return err
}

// StopNetworkPolicyAgents stops every node's agent and its fail-closed
// rule (the benchmark's isolation A/B): the rules the agents installed
// stay, but new pods are not filtered until the agents run again.
func (s *Stack) StopNetworkPolicyAgents() error {
	c := s.cfg
	for _, cl := range c.Clusters {
		for _, n := range c.clusterNodes(cl) {
			if err := c.networkPolicyAgentProcess(cl, n).stop(10 * time.Second); err != nil {
				return err
			}
			if err := inNetNS(n.netns(), c.nodeFailClosed().delete); err != nil {
				return componentErr(n.name+" network", "", err)
			}
		}
	}
	return nil
}

// StartNetworkPolicyAgents starts every node's agent that is not running
// and waits for its chains: a full sync at start brings every pod's
// filter up to date.
func (s *Stack) StartNetworkPolicyAgents(ctx context.Context) error {
	c := s.cfg
	for _, cl := range c.Clusters {
		for _, n := range c.clusterNodes(cl) {
			if c.networkPolicyAgentProcess(cl, n).running() {
				continue
			}
			if err := c.startNetworkPolicyAgent(ctx, cl, n); err != nil {
				return err
			}
		}
	}
	return nil
}

// PauseNetworkPolicyAgents freezes every node's agent (SIGSTOP), as an
// agent that has not yet seen a new pod (e2e: the node fails closed);
// resume lets them go on (SIGCONT).
func (s *Stack) PauseNetworkPolicyAgents() (resume func() error, err error) {
	c := s.cfg
	var pids []int
	resume = func() error {
		var errs []error
		for _, pid := range pids {
			errs = append(errs, syscall.Kill(pid, syscall.SIGCONT))
		}
		return errors.Join(errs...)
	}
	for _, cl := range c.Clusters {
		for _, n := range c.clusterNodes(cl) {
			p := c.networkPolicyAgentProcess(cl, n)
			pid := p.pid()
			if pid == 0 {
				return resume, componentErr(p.name, p.logFile, errors.New("not running"))
			}
			if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
				return resume, componentErr(p.name, p.logFile, err)
			}
			pids = append(pids, pid)
		}
	}
	return resume, nil
}

// NodeIPTables runs iptables with args in the named node's network
// namespace and returns what it printed (e2e: what the node's agent keeps
// in the node's filter).
func (s *Stack) NodeIPTables(node string, args ...string) (string, error) {
	for _, n := range s.cfg.workloadNodes() {
		if n.name == node {
			var out string
			err := inNetNS(n.netns(), func() (err error) {
				out, err = iptablesOutput(args...)
				return err
			})
			return out, err
		}
	}
	return "", fmt.Errorf("no node %s", node)
}
