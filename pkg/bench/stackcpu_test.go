package bench

import (
	"testing"
	"time"
)

func TestComponentKind(t *testing.T) {
	for name, want := range map[string]string{
		"network-policy-agent-workload-node-2": "network-policy-agent",
		"workload-2-kube-apiserver":            "kube-apiserver",
		"kube-controller-manager":              "kube-controller-manager",
		"containerd-workload-2-node":           "containerd",
		"workload-2-etcd":                      "etcd",
		"controller":                           "controller",
		"kcp":                                  "kcp",
		"something-new":                        "something-new",
	} {
		if got := componentKind(name); got != want {
			t.Errorf("componentKind(%q) = %q, want %q", name, got, want)
		}
	}
}

func TestCPUDelta(t *testing.T) {
	got := cpuDelta(map[string]float64{"kcp": 10, "kubelet": 2}, map[string]float64{"kcp": 13.5, "kubelet": 2, "gateway": 1})
	if got["kcp"] != 3.5 || got["kubelet"] != 0 || got["gateway"] != 1 {
		t.Errorf("cpuDelta = %v", got)
	}
	if s := formatStackCPU(got); s != "kcp 3.5, gateway 1.0, kubelet 0.0" {
		t.Errorf("formatStackCPU = %q", s)
	}
}

func TestParseMachineCPU(t *testing.T) {
	for _, tc := range []struct {
		name, stat     string
		wantBusy       float64
		wantProcessors int
		wantErr        bool
	}{
		{
			// user nice system idle iowait irq softirq steal guest guest_nice
			name:           "idle and iowait left out",
			stat:           "cpu  1000 50 300 9000 400 10 20 5 0 0\ncpu0 500 25 150 4500 200 5 10 2 0 0\ncpu1 500 25 150 4500 200 5 10 3 0 0\nintr 1 2\n",
			wantBusy:       13.85,
			wantProcessors: 2,
		},
		{name: "no cpu line first", stat: "intr 1 2 3\n", wantErr: true},
		{name: "too few fields", stat: "cpu 1 2 3\n", wantErr: true},
		{name: "not a number", stat: "cpu 1 2 x 4 5 6 7 8\n", wantErr: true},
		{name: "no processor lines", stat: "cpu 1 2 3 4 5 6 7 8\nintr 1\n", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseMachineCPU(tc.stat)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error: %v", err, tc.wantErr)
			}
			if tc.wantErr {
				return
			}
			if got.busySeconds < tc.wantBusy-1e-9 || got.busySeconds > tc.wantBusy+1e-9 {
				t.Errorf("busySeconds = %v, want %v", got.busySeconds, tc.wantBusy)
			}
			if got.processors != tc.wantProcessors {
				t.Errorf("processors = %d, want %d", got.processors, tc.wantProcessors)
			}
		})
	}
}

func TestReadMachineCPUGrows(t *testing.T) {
	before, err := readMachineCPU()
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(300 * time.Millisecond)
	for time.Now().Before(deadline) { //nolint:revive // burns CPU on purpose
	}
	after, err := readMachineCPU()
	if err != nil {
		t.Fatal(err)
	}
	if grew := after.busySeconds - before.busySeconds; grew < 0.1 {
		t.Errorf("the machine's busy time grew %.2f s while this test spun 0.3 s", grew)
	}
	if after.processors < 1 {
		t.Errorf("processors = %d", after.processors)
	}
}

func TestBusyFraction(t *testing.T) {
	for _, tc := range []struct {
		cpu  float64
		wall time.Duration
		cpus int
		want float64
	}{
		{cpu: 40, wall: 20 * time.Second, cpus: 2, want: 1},
		{cpu: 10, wall: 20 * time.Second, cpus: 2, want: 0.25},
		{cpu: 10, wall: 0, cpus: 2, want: 0},
		{cpu: 10, wall: time.Second, cpus: 0, want: 0},
	} {
		if got := busyFraction(tc.cpu, tc.wall, tc.cpus); got != tc.want {
			t.Errorf("busyFraction(%v, %v, %d) = %v, want %v", tc.cpu, tc.wall, tc.cpus, got, tc.want)
		}
	}
}
