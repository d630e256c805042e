package bench

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/pipelines-service/pipelines-service/pkg/devstack"
)

// componentKinds group the stack's processes for the CPU figures: one per
// kind, summed over clusters and nodes. Longer names first, so that
// kube-apiserver is not counted as an apiserver of something else.
var componentKinds = []string{
	"network-policy-agent", "local-path-provisioner", "kube-controller-manager", "kube-apiserver",
	"kube-scheduler", "containerd", "kubelet", "registry", "gateway", "controller", "etcd", "kcp",
}

// componentKind is the kind of a stack process by its name
// (network-policy-agent-workload-node-2 is a network-policy-agent).
func componentKind(name string) string {
	for _, k := range componentKinds {
		if strings.Contains(name, k) {
			return k
		}
	}
	return name
}

// stackCPU is the CPU time so far of each kind of the stack's running
// processes, their waited-for children included (the network policy
// agents' iptables and ipset, which they wait for).
func stackCPU(statuses []devstack.ComponentStatus) map[string]float64 {
	out := map[string]float64{}
	for _, st := range statuses {
		if !st.Running {
			continue
		}
		if s, err := procCPUSecondsWithChildren(st.PID); err == nil {
			out[componentKind(st.Name)] += s
		}
	}
	return out
}

// cpuDelta is after minus before, per kind.
func cpuDelta(before, after map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for k, v := range after {
		out[k] = v - before[k]
	}
	return out
}

// formatStackCPU lists the kinds by CPU time, largest first.
func formatStackCPU(cpu map[string]float64) string {
	kinds := make([]string, 0, len(cpu))
	for k := range cpu {
		kinds = append(kinds, k)
	}
	sort.Slice(kinds, func(i, j int) bool { return cpu[kinds[i]] > cpu[kinds[j]] })
	parts := make([]string, 0, len(kinds))
	for _, k := range kinds {
		parts = append(parts, fmt.Sprintf("%s %.1f", k, cpu[k]))
	}
	return strings.Join(parts, ", ")
}

// procStatFields are the fields of /proc/<pid>/stat after the command
// name (which may hold spaces), starting at the state.
func procStatFields(pid int) ([]string, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, err
	}
	fields := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
	if len(fields) < 15 {
		return nil, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	return fields, nil
}

const clockTicks = 100 // USER_HZ on Linux

// machineCPU is what /proc/stat says of the machine's processors.
type machineCPU struct {
	// busySeconds is the CPU time every processor has spent on anything
	// but idling and waiting for I/O, kernel included. It counts what the
	// stack's processes do not own: the containerd shims and runc
	// (daemons of their own), the CNI plugins, the pods' processes and the
	// kernel's threads.
	busySeconds float64
	// processors is how many processors the machine has: the cpuN lines,
	// the ones busySeconds sums (this process's affinity may allow fewer).
	processors int
}

func readMachineCPU() (machineCPU, error) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return machineCPU{}, err
	}
	return parseMachineCPU(string(data))
}

// busyFraction is cpuSeconds over what cpus processors offer in wall.
func busyFraction(cpuSeconds float64, wall time.Duration, cpus int) float64 {
	if wall <= 0 || cpus <= 0 {
		return 0
	}
	return cpuSeconds / (wall.Seconds() * float64(cpus))
}

// parseMachineCPU reads a /proc/stat text: its first line, the machine's
// "cpu" line of user, nice, system, idle, iowait, irq, softirq and steal
// (guest time is in user already), and its count of cpuN lines.
func parseMachineCPU(stat string) (machineCPU, error) {
	lines := strings.Split(stat, "\n")
	fields := strings.Fields(lines[0])
	if len(fields) < 9 || fields[0] != "cpu" {
		return machineCPU{}, fmt.Errorf("unexpected first line of /proc/stat: %q", lines[0])
	}
	var m machineCPU
	var ticks float64
	for i, f := range fields[1:9] {
		v, err := strconv.ParseFloat(f, 64)
		if err != nil {
			return machineCPU{}, fmt.Errorf("/proc/stat field %d: %w", i+1, err)
		}
		if i != 3 && i != 4 { // idle, iowait
			ticks += v
		}
	}
	m.busySeconds = ticks / clockTicks
	for _, l := range lines[1:] {
		if name, _, _ := strings.Cut(l, " "); strings.HasPrefix(name, "cpu") && len(name) > 3 {
			m.processors++
		}
	}
	if m.processors == 0 {
		return machineCPU{}, fmt.Errorf("/proc/stat names no processor (cpu0, cpu1, ...)")
	}
	return m, nil
}

// procCPUSeconds is the user+system CPU time of a process so far.
func procCPUSeconds(pid int) (float64, error) {
	return procTicks(pid, 11, 12)
}

// procCPUSecondsWithChildren adds the CPU time of the children it waited
// for (cutime, cstime).
func procCPUSecondsWithChildren(pid int) (float64, error) {
	return procTicks(pid, 11, 12, 13, 14)
}

func procTicks(pid int, indexes ...int) (float64, error) {
	fields, err := procStatFields(pid)
	if err != nil {
		return 0, err
	}
	var ticks float64
	for _, i := range indexes {
		v, _ := strconv.ParseFloat(fields[i], 64)
		ticks += v
	}
	return ticks / clockTicks, nil
}
