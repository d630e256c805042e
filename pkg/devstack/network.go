package devstack

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
)

// The stack's network is a small routed cluster network, the shape of a
// real one: the host and every node are linked by the bridge (a switch);
// each node is a network namespace with its own address, its pods on
// point-to-point links behind it, and its own packet filter. The host
// routes each node's pod range to the node; nodes route everything else to
// the host. So a pod's traffic to another pod, to another node or to the
// control planes on the host passes through its node's filter, which the
// node's network policy agent owns, as it would on a machine of its own.

// ensureBridge creates the stack's bridge with the host's address towards
// every node on it (the node's default gateway).
func (c Config) ensureBridge() error {
	if _, err := net.InterfaceByName(c.BridgeName); err != nil {
		if err := ipCommand("link", "add", c.BridgeName, "type", "bridge"); err != nil {
			return componentErr("network", "", err)
		}
	}
	addrs, _ := exec.Command("ip", "-o", "addr", "show", "dev", c.BridgeName).Output()
	for _, n := range c.workloadNodes() {
		if strings.Contains(string(addrs), " "+n.hostIP.String()+"/") {
			continue
		}
		if err := ipCommand("addr", "add", linkAddress(n.hostIP), "dev", c.BridgeName); err != nil {
			return componentErr("network", "", err)
		}
	}
	if err := ipCommand("link", "set", c.BridgeName, "up"); err != nil {
		return componentErr("network", "", err)
	}
	return enableIPForwarding("")
}

// ensureNodeNetwork creates the node's network namespace, links it to the
// bridge, gives it its address and routes, and routes its pod range from
// the host. Each step checks first, so that it is idempotent.
func (c Config) ensureNodeNetwork(n workloadNode) error {
	fail := func(err error) error { return componentErr(n.name+" network", "", err) }
	if _, err := os.Stat(n.netns()); err != nil {
		if err := ipCommand("netns", "add", n.netnsName()); err != nil {
			return fail(err)
		}
	}
	if _, err := net.InterfaceByName(n.hostVeth()); err == nil && ipCommand("-n", n.netnsName(), "link", "show", "eth0") != nil {
		// The link's other end is in a namespace no longer at its path
		// (a leftover process still holds it): a new link.
		if err := ipCommand("link", "del", n.hostVeth()); err != nil {
			return fail(err)
		}
	}
	if _, err := net.InterfaceByName(n.hostVeth()); err != nil {
		if err := ipCommand("link", "add", n.hostVeth(), "type", "veth", "peer", "name", "eth0", "netns", n.netnsName()); err != nil {
			return fail(err)
		}
	}
	for _, args := range [][]string{
		{"link", "set", n.hostVeth(), "master", c.BridgeName, "up"},
		{"-n", n.netnsName(), "addr", "replace", linkAddress(n.ip), "dev", "eth0"},
		{"-n", n.netnsName(), "link", "set", "eth0", "up"},
		{"-n", n.netnsName(), "link", "set", "lo", "up"},
		{"-n", n.netnsName(), "route", "replace", "default", "via", n.hostIP.String()},
		{"route", "replace", n.podCIDR.String(), "via", n.ip.String(), "dev", c.BridgeName},
	} {
		if err := ipCommand(args...); err != nil {
			return fail(err)
		}
	}
	if err := enableIPForwarding(n.netns()); err != nil {
		return fail(err)
	}
	return nil
}

// linkAddress is ip with the prefix length of the node links.
func linkAddress(ip net.IP) string { return ip.String() + "/24" }

func ipCommand(args ...string) error {
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

// enableIPForwarding turns on IPv4 forwarding in the network namespace at
// netns ("" for the host's).
func enableIPForwarding(netns string) error {
	const file = "/proc/sys/net/ipv4/ip_forward"
	return inNetNS(netns, func() error {
		if v, err := os.ReadFile(file); err == nil && strings.TrimSpace(string(v)) == "1" {
			return nil
		}
		if err := os.WriteFile(file, []byte("1"), 0o644); err != nil {
			return componentErr("network", "", fmt.Errorf("enable IPv4 forwarding: %w", err))
		}
		return nil
	})
}

func (c Config) bridgeExists() bool {
	_, err := net.InterfaceByName(c.BridgeName)
	return err == nil
}

func (c Config) deleteBridge() error {
	if !c.bridgeExists() {
		return nil
	}
	return componentErr("network", "", ipCommand("link", "del", c.BridgeName))
}

// deleteNodeNetwork removes the node's network namespace, and with it
// both ends of its link and the host's route to its pods.
func (c Config) deleteNodeNetwork(n workloadNode) error {
	if _, err := os.Stat(n.netns()); err != nil {
		return nil
	}
	return componentErr(n.name+" network", "", ipCommand("netns", "del", n.netnsName()))
}
