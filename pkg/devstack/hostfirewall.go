package devstack

import (
	"fmt"
	"os/exec"
	"strconv"
	"strings"
)

// The host's packet filter holds one rule of the stack's, in a chain of
// its own jumped to from INPUT: the Tekton Results API, which listens on
// every interface (it has no address setting) and authorises no one
// itself, answers on loopback only. Its clients (the controller's
// recorder, the gateway) use 127.0.0.1; tenant pods are kept off the
// host's addresses by their namespaces' policy anyway. What this rule
// adds: the forge's webhooks may be allowed to reach HostIP (the gateway,
// where Pipelines as Code's intake is), without reaching the Results API
// there.

// hostInputChain is the stack's chain in the host's filter table.
func (c Config) hostInputChain() string { return "PS-INPUT-" + c.BridgeName }

func (c Config) hostFirewallRules() [][]string {
	ports := strconv.Itoa(ResultsPort) + "," + strconv.Itoa(ResultsMetricsPort)
	return [][]string{
		{"-p", "tcp", "-m", "multiport", "--dports", ports, "!", "-d", "127.0.0.0/8", "-j", "REJECT", "--reject-with", "tcp-reset"},
	}
}

// ensureHostFirewall makes the chain hold exactly the stack's rules and
// INPUT jump to it first.
func (c Config) ensureHostFirewall() error {
	chain := c.hostInputChain()
	if err := iptables("-S", chain); err != nil {
		if err := iptables("-N", chain); err != nil {
			return componentErr("host firewall", "", err)
		}
	}
	if err := iptables("-F", chain); err != nil {
		return componentErr("host firewall", "", err)
	}
	for _, rule := range c.hostFirewallRules() {
		if err := iptables(append([]string{"-A", chain}, rule...)...); err != nil {
			return componentErr("host firewall", "", err)
		}
	}
	if iptables("-C", "INPUT", "-j", chain) != nil {
		if err := iptables("-I", "INPUT", "1", "-j", chain); err != nil {
			return componentErr("host firewall", "", err)
		}
	}
	return nil
}

// deleteHostFirewall removes the jump and the chain.
func (c Config) deleteHostFirewall() error {
	chain := c.hostInputChain()
	if iptables("-S", chain) != nil {
		return nil
	}
	for iptables("-D", "INPUT", "-j", chain) == nil {
	}
	if err := iptables("-F", chain); err != nil {
		return componentErr("host firewall", "", err)
	}
	return componentErr("host firewall", "", iptables("-X", chain))
}

func iptables(args ...string) error {
	if out, err := exec.Command("iptables", append([]string{"-w", "5"}, args...)...).CombinedOutput(); err != nil {
		return fmt.Errorf("iptables %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return nil
}
