package devstack

import (
	"fmt"
	"os/exec"
	"strconv"
	"strings"
)

// The stack owns a few chains in packet filters it shares with others:
// the host's (with whatever else runs there) and each node's (with
// kube-router and kube-proxy, which rewrite their own chains but keep the
// rest of the table). Each is a chain of the stack's own, holding exactly
// its rules, and jumped to from built-in chains.

// filterChain is one of the stack's chains in a filter table.
type filterChain struct {
	name  string
	rules [][]string
	// from are the built-in chains that jump to it; first puts the jump
	// before their other rules, otherwise it comes after them.
	from  []string
	first bool
}

// ensure makes the chain hold exactly its rules and the built-in chains
// jump to it. Run it in the filter's network namespace.
func (f filterChain) ensure() error {
	if err := iptables("-S", f.name); err != nil {
		if err := iptables("-N", f.name); err != nil {
			return err
		}
	}
	if err := iptables("-F", f.name); err != nil {
		return err
	}
	for _, rule := range f.rules {
		if err := iptables(append([]string{"-A", f.name}, rule...)...); err != nil {
			return err
		}
	}
	for _, builtin := range f.from {
		if iptables("-C", builtin, "-j", f.name) == nil {
			continue
		}
		add := []string{"-A", builtin}
		if f.first {
			add = []string{"-I", builtin, "1"}
		}
		if err := iptables(append(add, "-j", f.name)...); err != nil {
			return err
		}
	}
	return nil
}

// delete removes the jumps and the chain.
func (f filterChain) delete() error {
	if iptables("-S", f.name) != nil {
		return nil
	}
	for _, builtin := range f.from {
		for iptables("-D", builtin, "-j", f.name) == nil {
		}
	}
	if err := iptables("-F", f.name); err != nil {
		return err
	}
	return iptables("-X", f.name)
}

func iptables(args ...string) error {
	_, err := iptablesOutput(args...)
	return err
}

func iptablesOutput(args ...string) (string, error) {
	out, err := exec.Command("iptables", append([]string{"-w", "5"}, args...)...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("iptables %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// The host's filter holds one rule of the stack's, jumped to first from
// INPUT: the Tekton Results API, which listens on every interface (it has
// no address setting) and authorises no one itself, answers on loopback
// only. Its clients (the controller's recorder, the gateway) use
// 127.0.0.1; tenant pods are kept off the host's addresses by their
// namespaces' policy anyway. What this rule adds: the forge's webhooks may
// be allowed to reach HostIP (the gateway, where Pipelines as Code's
// intake is), without reaching the Results API there.
func (c Config) hostFirewall() filterChain {
	ports := strconv.Itoa(ResultsPort) + "," + strconv.Itoa(ResultsMetricsPort)
	return filterChain{
		name: "PS-INPUT-" + c.BridgeName,
		rules: [][]string{
			{"-p", "tcp", "-m", "multiport", "--dports", ports, "!", "-d", "127.0.0.0/8", "-j", "REJECT", "--reject-with", "tcp-reset"},
		},
		from: []string{"INPUT"}, first: true,
	}
}

func (c Config) ensureHostFirewall() error {
	return componentErr("host firewall", "", c.hostFirewall().ensure())
}

func (c Config) deleteHostFirewall() error {
	return componentErr("host firewall", "", c.hostFirewall().delete())
}
