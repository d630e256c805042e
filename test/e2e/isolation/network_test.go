//go:build e2e

package isolation

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pipelines-service/pipelines-service/pkg/devstack"
	"github.com/pipelines-service/pipelines-service/pkg/workload"
	"github.com/pipelines-service/pipelines-service/test/e2e/framework"
)

// platformPorts are where the platform listens on the stack's machines:
// kcp (the root shard, the second shard, the front-proxy), the workload
// apiservers, the kubelets, a workload etcd, the registry, the gateway,
// Tekton Results (API and metrics).
var platformPorts = []int{6443, 6444, devstack.FrontProxyPort, 7443, 10250, 22379, 5001, devstack.GatewayPort, devstack.ResultsPort, devstack.ResultsMetricsPort}

// server is a step (or sidecar script) that serves its name over HTTP on
// port until the run is cancelled.
func serverScript(name string, port int) string {
	return fmt.Sprintf("mkdir -p /tmp/www && echo %s > /tmp/www/index.html && exec httpd -f -p %d -h /tmp/www", name, port)
}

// TestTenantNetworkIsolation: from a plain step, every platform port on
// every address of the stack's machines, the platform's Services, and
// another tenant's running pod, are refused or time out, while cluster DNS
// answers; in the same run the step reaches its own
// sidecar on localhost and a second pod of its tenant by pod IP. A pod the
// service did not make (no isolation policy) reaches the platform ports,
// so what refuses the tenant is the policy, not an empty port. The policy
// is put back when someone deletes it on the workload cluster.
func TestTenantNetworkIsolation(t *testing.T) {
	ctx := context.Background()
	victim := env.NewFleetTenant(ctx, t, "e2e-victim", pinned(""))
	attacker := env.NewFleetTenant(ctx, t, "e2e-attacker", pinned(""))

	serve := func(tn *framework.Tenant, name string) (ip string) {
		create(ctx, t, tn, run(name, v1.TaskSpec{Steps: []v1.Step{step("serve", serverScript(name, 8080), nil)}}, nil))
		tn.WaitTaskRunRunning(ctx, t, ns, name, 3*time.Minute)
		t.Cleanup(func() { tn.CancelTaskRun(context.Background(), t, ns, name) })
		return servingPodIP(ctx, t, tn, name)
	}
	victimIP := serve(victim, "victim")
	peerIP := serve(attacker, "peer")

	var targets []string
	for _, addr := range env.Stack.Config().NodeAddresses() {
		for _, port := range platformPorts {
			targets = append(targets, fmt.Sprintf("%s %d", addr, port))
		}
	}
	// Through kube-proxy: the apiservers' kubernetes Services and the
	// triggers sink's Service.
	targets = append(targets, env.Stack.Config().PlatformServices()...)
	victimTarget := victimIP + " 8080"
	// busybox's wget -T crashes (1.35): timeout bounds it instead.
	script := `get() { timeout 10 wget -q -O- "$1" 2>&1 | head -1; }
probes() {
` + framework.ProbeScript(append(targets, victimTarget)) + `
  echo "victim-http $(get http://` + victimIP + `:8080/)"
  echo "sidecar-http $(get http://127.0.0.1:8081/)"
  echo "peer-http $(get http://` + peerIP + `:8080/)"
  echo "dns $(nslookup kubernetes.default.svc.cluster.local 2>&1 | awk '/^Address: /{a=$2} END{print a}')"
}
probes > $(results.report.path)
`
	probe := run("probe", v1.TaskSpec{
		Results:  []v1.TaskResult{{Name: "report"}},
		Steps:    []v1.Step{step("probe", script, nil)},
		Sidecars: []v1.Sidecar{{Name: "web", Image: "docker.io/library/busybox:1.36", Script: "#!/bin/sh\n" + serverScript("sidecar", 8081)}},
	}, nil)
	create(ctx, t, attacker, probe)
	tr := attacker.WaitTaskRunDone(ctx, t, ns, "probe", 5*time.Minute)
	if status, reason := framework.Condition(tr); status != "True" {
		t.Fatalf("probe ended %s/%s: %s", status, reason, tr.Status.GetCondition("Succeeded").GetMessage())
	}
	report := map[string]string{}
	for _, r := range tr.Status.Results {
		if r.Name == "report" {
			t.Logf("probe report:\n%s", r.Value.StringVal)
			report = framework.ProbeReport(r.Value.StringVal)
		}
	}
	closed := 0
	for _, target := range append(targets, victimTarget) {
		what := strings.Replace(target, " ", ":", 1)
		if got := report[what]; got == "closed" {
			closed++
		} else {
			t.Errorf("a tenant's step connecting to %s: %q, want closed (refused or timed out)", what, got)
		}
	}
	if got := report["victim-http"]; strings.Contains(got, "victim") {
		t.Errorf("a tenant's step read another tenant's server: %q", got)
	}
	if got := report["sidecar-http"]; got != "sidecar" {
		t.Errorf("a step reading its own sidecar on localhost got %q, want sidecar", got)
	}
	if got := report["peer-http"]; got != "peer" {
		t.Errorf("a step reading its tenant's other pod at %s got %q, want peer", peerIP, got)
	}
	// Cluster DNS is offered on purpose: the name resolves, and what it
	// names (the apiserver's Service, among the targets) stays closed.
	if got := report["dns"]; !strings.HasPrefix(got, "10.96.") {
		t.Errorf("a step resolving kubernetes.default.svc.cluster.local through cluster DNS got %q, want its ClusterIP", got)
	}
	t.Logf("%d of %d targets closed; sidecar %q, peer %q", closed, len(targets)+1, report["sidecar-http"], report["peer-http"])

	checkPlatformReachableWithoutPolicy(ctx, t)
	checkPolicyPutBack(ctx, t, attacker)
}

// servingPodIP waits until the pod of a running TaskRun has an IP.
func servingPodIP(ctx context.Context, t *testing.T, tn *framework.Tenant, taskRun string) string {
	t.Helper()
	var ip string
	framework.Eventually(t, 2*time.Minute, "a pod IP for "+taskRun, func() (bool, string, error) {
		pods, err := framework.TenantPods(ctx, env.Workload, tn)
		if err != nil {
			return false, err.Error(), nil
		}
		for _, p := range pods {
			if strings.HasPrefix(p.Name, taskRun+"-pod") && p.Status.PodIP != "" && p.Status.Phase == corev1.PodRunning {
				ip = p.Status.PodIP
				return true, "", nil
			}
		}
		return false, fmt.Sprintf("%d pods of %s", len(pods), tn.Name), nil
	})
	return ip
}

// checkPlatformReachableWithoutPolicy runs the probe from a pod the service
// did not make, in a namespace without the isolation policy: kcp (both shards and
// its front-proxy), the first cluster's apiserver, the registry, the gateway and its node's
// kubelet answer, and through kube-proxy the cluster's kubernetes Service.
// (The triggers sink admits no pod at all, by a policy of its own.)
func checkPlatformReachableWithoutPolicy(ctx context.Context, t *testing.T) {
	t.Helper()
	report, logs := probeWithoutPolicy(ctx, t, framework.CreateNamespace(ctx, t, env.Workload, "e2e-open"), "probe", nil)
	for what, got := range report {
		if got != "open" {
			t.Errorf("a pod without the isolation policy connecting to %s: %s, want open (so the policy is what closes it); logs:\n%s", what, got, logs)
		}
	}
}

// probeWithoutPolicy runs a pod in namespace on the first node and
// probes from it what a pod without the isolation policy reaches (see
// checkPlatformReachableWithoutPolicy), and extra: the result by
// "<host>:<port>".
func probeWithoutPolicy(ctx context.Context, t *testing.T, namespace, name string, extra []string) (report map[string]string, logs string) {
	t.Helper()
	c := env.Stack.Config()
	addrs := c.NodeAddresses()
	hostEnd, nodeIP := addrs[0], addrs[1]
	services := c.PlatformServices() // the first cluster's kubernetes Service, ..., the triggers sink
	want := []string{hostEnd + " 6443", hostEnd + " 6444", fmt.Sprintf("%s %d", hostEnd, devstack.FrontProxyPort), hostEnd + " 7443", hostEnd + " 5001", fmt.Sprintf("%s %d", hostEnd, devstack.GatewayPort), nodeIP + " 10250",
		services[0]}
	want = append(want, extra...)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			NodeName:      "workload-node", // the node whose IP is probed
			Containers: []corev1.Container{{Name: "probe", Image: "docker.io/library/busybox:1.36",
				Command: []string{"sh", "-c", framework.ProbeScript(want)}}},
		},
	}
	logs = framework.RunPodToCompletion(ctx, t, env.Workload, namespace, pod, 3*time.Minute)
	found := framework.ProbeReport(logs)
	report = map[string]string{}
	for _, w := range want {
		what := strings.Replace(w, " ", ":", 1)
		report[what] = found[what]
		if report[what] == "" {
			report[what] = "not probed"
		}
	}
	return report, logs
}

// TestNodeFailsClosedForAPodNotYetFiltered: a pod that the node's network
// policy agent has not seen yet (the agents frozen, as one that is slow to
// sync) reaches nothing, even in a namespace without the isolation policy,
// where the same pod reaches the platform once its agent has seen it
// (checkPlatformReachableWithoutPolicy). So a hostile step that connects
// in its pod's first instant, before its filter exists, gets nowhere.
// Not parallel: while frozen, no other pod of the stack gets its filter.
func TestNodeFailsClosedForAPodNotYetFiltered(t *testing.T) {
	ctx := context.Background()
	namespace := framework.CreateNamespace(ctx, t, env.Workload, "e2e-unfiltered")
	resume, err := env.Stack.PauseNetworkPolicyAgents()
	t.Cleanup(func() {
		if err := resume(); err != nil {
			t.Errorf("resume the network policy agents: %v", err)
		}
	})
	if err != nil {
		t.Fatalf("pause the network policy agents: %v", err)
	}
	// Also the triggers sink: a packet to a pod of the same node that has
	// a filter is judged by that pod's policy alone, so what keeps the
	// unfiltered pod off the sink is the sink's own policy.
	services := env.Stack.Config().PlatformServices()
	report, logs := probeWithoutPolicy(ctx, t, namespace, "unfiltered", services[len(services)-1:])
	if err := resume(); err != nil {
		t.Fatalf("resume the network policy agents: %v", err)
	}
	for what, got := range report {
		if got != "closed" {
			t.Errorf("a pod the agent has not seen connecting to %s: %s, want closed; logs:\n%s", what, got, logs)
		}
	}
	t.Logf("%d targets closed to a pod not yet filtered", len(report))
}

// checkPolicyPutBack deletes the tenant's isolation policy on the
// workload cluster and waits for the controller to put it back.
func checkPolicyPutBack(ctx context.Context, t *testing.T, tn *framework.Tenant) {
	t.Helper()
	name := workload.Namespace(tn.Cluster, ns)
	policies := env.Workload.NetworkingV1().NetworkPolicies(name)
	if err := policies.Delete(ctx, workload.IsolationPolicyName, metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete the isolation policy of %s: %v", name, err)
	}
	framework.Eventually(t, 30*time.Second, "the isolation policy of "+name+" is back", func() (bool, string, error) {
		p, err := policies.Get(ctx, workload.IsolationPolicyName, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, "not found", nil
		}
		if err != nil {
			return false, err.Error(), nil
		}
		return !(workload.Isolation{Egress: env.Stack.Config().TenantEgress()}).Differs(p), fmt.Sprint(p.Spec), nil
	})
}

// TestAgentPutsItsJumpsBack: a node's filter with kube-router's jump from
// INPUT deleted and a rule that lets everything through put ahead of its
// jump from FORWARD (what an operator's rule or another agent's insert
// could leave) is repaired at the agent's next sync: both jumps first
// again. The agent checks its chains against one iptables-save per sync
// (third_party/kube-router/cmd/network-policy-agent/snapshot.go); this is
// that those checks still see the node's filter as it is.
// Not parallel: until repaired, the node lets unfiltered traffic through.
func TestAgentPutsItsJumpsBack(t *testing.T) {
	ctx := context.Background()
	const node = "workload-node"
	jumps := map[string]string{}
	for _, chain := range []string{"INPUT", "FORWARD"} {
		first := firstRule(nodeIPTables(t, node, "-S", chain))
		if !strings.HasSuffix(first, "-j KUBE-ROUTER-"+chain) {
			t.Fatalf("%s of %s begins with %q, want kube-router's jump", chain, node, first)
		}
		jumps[chain] = first
	}
	ahead := []string{"-m", "comment", "--comment", "e2e: ahead of kube-router", "-j", "RETURN"}
	t.Cleanup(func() {
		// As many as were put (none left when a sync's restore of the
		// whole table came after them).
		for range 10 {
			if _, err := env.Stack.NodeIPTables(node, append([]string{"-C", "FORWARD"}, ahead...)...); err != nil {
				return
			}
			if _, err := env.Stack.NodeIPTables(node, append([]string{"-D", "FORWARD"}, ahead...)...); err != nil {
				t.Errorf("delete the e2e rule: %v", err)
				return
			}
		}
	})
	// Each sync replaces the whole filter table with what it saved after
	// its checks plus its own changes, so a sync under way (the pods of
	// the tests before) undoes a change made meanwhile: tamper until
	// the change outlives a quiet interval, so that what repairs it is
	// a sync that began after it.
	framework.Eventually(t, time.Minute, "the tampered filter of "+node+" stays as tampered", func() (bool, string, error) {
		if first := firstRule(nodeIPTables(t, node, "-S", "FORWARD")); first == jumps["FORWARD"] {
			nodeIPTables(t, node, append([]string{"-I", "FORWARD", "1"}, ahead...)...)
		}
		if first := firstRule(nodeIPTables(t, node, "-S", "INPUT")); first == jumps["INPUT"] {
			nodeIPTables(t, node, "-D", "INPUT", "1")
		}
		time.Sleep(5 * time.Second)
		forward, input := firstRule(nodeIPTables(t, node, "-S", "FORWARD")), firstRule(nodeIPTables(t, node, "-S", "INPUT"))
		return forward != jumps["FORWARD"] && input != jumps["INPUT"], "FORWARD begins with " + forward + ", INPUT with " + input, nil
	})

	// A pod of the cluster makes each of its nodes' agents sync.
	namespace := framework.CreateNamespace(ctx, t, env.Workload, "e2e-resync")
	framework.RunPodToCompletion(ctx, t, env.Workload, namespace, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "resync"},
		Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever,
			Containers: []corev1.Container{{Name: "true", Image: "docker.io/library/busybox:1.36", Command: []string{"true"}}}},
	}, 3*time.Minute)
	framework.Eventually(t, time.Minute, "kube-router's jumps first again on "+node, func() (bool, string, error) {
		for chain, jump := range jumps {
			out, err := env.Stack.NodeIPTables(node, "-S", chain)
			if err != nil {
				return false, "", err
			}
			if first := firstRule(out); first != jump {
				return false, chain + " begins with " + first, nil
			}
		}
		return true, "", nil
	})
}

func nodeIPTables(t *testing.T, node string, args ...string) string {
	t.Helper()
	out, err := env.Stack.NodeIPTables(node, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// firstRule is the first rule of `iptables -S chain`.
func firstRule(listed string) string {
	for _, line := range strings.Split(listed, "\n") {
		if strings.HasPrefix(line, "-A ") {
			return line
		}
	}
	return ""
}
