package devstack

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
)

// ensureBridge creates the stack's bridge with every node's address on it
// (the first address of the node's pod range, the gateway of its pods).
// Pods of different nodes reach each other through the host, which
// forwards between the ranges.
func (c Config) ensureBridge() error {
	if _, err := net.InterfaceByName(c.BridgeName); err != nil {
		if out, err := exec.Command("ip", "link", "add", c.BridgeName, "type", "bridge").CombinedOutput(); err != nil {
			return componentErr("network", "", fmt.Errorf("ip link add %s: %v: %s", c.BridgeName, err, out))
		}
	}
	addrs, _ := exec.Command("ip", "-o", "addr", "show", "dev", c.BridgeName).Output()
	for _, n := range c.workloadNodes() {
		if strings.Contains(string(addrs), " "+n.ip.String()+"/") {
			continue
		}
		ones, _ := n.podCIDR.Mask.Size()
		cidr := fmt.Sprintf("%s/%d", n.ip, ones)
		if out, err := exec.Command("ip", "addr", "add", cidr, "dev", c.BridgeName).CombinedOutput(); err != nil {
			return componentErr("network", "", fmt.Errorf("ip addr add %s: %v: %s", cidr, err, out))
		}
	}
	if out, err := exec.Command("ip", "link", "set", c.BridgeName, "up").CombinedOutput(); err != nil {
		return componentErr("network", "", fmt.Errorf("ip link set up: %v: %s", err, out))
	}
	return enableIPForwarding()
}

func enableIPForwarding() error {
	const file = "/proc/sys/net/ipv4/ip_forward"
	if v, err := os.ReadFile(file); err == nil && strings.TrimSpace(string(v)) == "1" {
		return nil
	}
	if err := os.WriteFile(file, []byte("1"), 0o644); err != nil {
		return componentErr("network", "", fmt.Errorf("enable IPv4 forwarding: %w", err))
	}
	return nil
}

func (c Config) bridgeExists() bool {
	_, err := net.InterfaceByName(c.BridgeName)
	return err == nil
}

func (c Config) deleteBridge() error {
	if !c.bridgeExists() {
		return nil
	}
	if out, err := exec.Command("ip", "link", "del", c.BridgeName).CombinedOutput(); err != nil {
		return componentErr("network", "", fmt.Errorf("ip link del %s: %v: %s", c.BridgeName, err, out))
	}
	return nil
}
