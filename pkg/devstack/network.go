package devstack

import (
	"fmt"
	"net"
	"os/exec"
	"strings"
)

// ensureBridge creates the stack's bridge with HostIP on it. The CNI bridge
// plugin attaches pods to it and uses HostIP as their gateway.
func (c Config) ensureBridge() error {
	ones, _ := c.PodCIDR.Mask.Size()
	if _, err := net.InterfaceByName(c.BridgeName); err != nil {
		if out, err := exec.Command("ip", "link", "add", c.BridgeName, "type", "bridge").CombinedOutput(); err != nil {
			return componentErr("network", "", fmt.Errorf("ip link add %s: %v: %s", c.BridgeName, err, out))
		}
	}
	addrs, _ := exec.Command("ip", "-o", "addr", "show", "dev", c.BridgeName).Output()
	if !strings.Contains(string(addrs), " "+c.HostIP.String()+"/") {
		cidr := fmt.Sprintf("%s/%d", c.HostIP, ones)
		if out, err := exec.Command("ip", "addr", "add", cidr, "dev", c.BridgeName).CombinedOutput(); err != nil {
			return componentErr("network", "", fmt.Errorf("ip addr add %s: %v: %s", cidr, err, out))
		}
	}
	if out, err := exec.Command("ip", "link", "set", c.BridgeName, "up").CombinedOutput(); err != nil {
		return componentErr("network", "", fmt.Errorf("ip link set up: %v: %s", err, out))
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
