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

func TestBusySeconds(t *testing.T) {
	for _, tc := range []struct {
		name, stat string
		want       float64
		wantErr    bool
	}{
		{
			// user nice system idle iowait irq softirq steal guest guest_nice
			name: "idle and iowait left out",
			stat: "cpu  1000 50 300 9000 400 10 20 5 0 0\ncpu0 500 25 150 4500 200 5 10 2 0 0\n",
			want: 13.85,
		},
		{name: "no cpu line first", stat: "intr 1 2 3\n", wantErr: true},
		{name: "too few fields", stat: "cpu 1 2 3\n", wantErr: true},
		{name: "not a number", stat: "cpu 1 2 x 4 5 6 7 8\n", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := busySeconds(tc.stat)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error: %v", err, tc.wantErr)
			}
			if !tc.wantErr && (got < tc.want-1e-9 || got > tc.want+1e-9) {
				t.Errorf("busySeconds = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestMachineBusySecondsGrows(t *testing.T) {
	before, err := machineBusySeconds()
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(300 * time.Millisecond)
	for time.Now().Before(deadline) { //nolint:revive // burns CPU on purpose
	}
	after, err := machineBusySeconds()
	if err != nil {
		t.Fatal(err)
	}
	if after-before < 0.1 {
		t.Errorf("the machine's busy time grew %.2f s while this test spun 0.3 s", after-before)
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
