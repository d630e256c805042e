package devstack

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
)

// MaxControllerReplicas is how many host controller replicas the stack
// can run side by side (debug addresses 127.0.0.1:6061, then 6162-6169).
const MaxControllerReplicas = 9

// ControllerLease is the Lease (namespace, name) in the provider
// workspace the replicas elect their leader with.
var ControllerLease = [2]string{"default", "pipelines-service-controller"}

// ControllerReplicaDebugAddress is where replica n (1-based) serves
// /readyz, /metrics and /debug/; replica 1's is ControllerDebugAddress.
// The others are apart from 606x, where the gateway's and the triggers
// sink's are (replica 2 on 6062 once met the gateway's /readyz and never
// ran).
func ControllerReplicaDebugAddress(replica int) string {
	if replica == 1 {
		return ControllerDebugAddress
	}
	return fmt.Sprintf("127.0.0.1:%d", 6160+replica)
}

// ControllerReplicaIdentity is replica n's identity in the Lease.
func ControllerReplicaIdentity(replica int) string {
	return fmt.Sprintf("devstack-controller-%d", replica)
}

// StartControllerReplica starts host controller replica n (2 and up: 1 is
// the stack's controller, started by Up) and waits until its informers
// have synced; it stands by while another replica leads. It returns the
// replica's PID.
func (s *Stack) StartControllerReplica(ctx context.Context, replica int) (int, error) {
	if replica < 1 || replica > MaxControllerReplicas {
		return 0, fmt.Errorf("controller replica %d: replicas are 1-%d", replica, MaxControllerReplicas)
	}
	if s.cfg.controllerInCluster() {
		return 0, fmt.Errorf("the controller runs in the workload cluster (devstack deploy): no host replicas")
	}
	if err := s.startControllerReplica(ctx, replica); err != nil {
		return 0, err
	}
	proc := s.cfg.controllerReplicaProcess(replica, "")
	if err := waitReplicaReady(ctx, replica, 5*time.Minute); err != nil {
		return 0, componentErr(proc.name, proc.logFile, err)
	}
	// Ready must have been this replica's answer, not another process's on
	// its address.
	if !proc.running() {
		return 0, componentErr(proc.name, proc.logFile, fmt.Errorf("controller replica %d exited", replica))
	}
	return proc.pid(), nil
}

// KillControllerReplica ends replica n with SIGKILL, as a crash or a lost
// node would: it releases nothing.
func (s *Stack) KillControllerReplica(replica int) error {
	proc := s.cfg.controllerReplicaProcess(replica, "")
	pid := proc.pid()
	if pid == 0 {
		return fmt.Errorf("controller replica %d is not running", replica)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return fmt.Errorf("kill controller replica %d (PID %d): %w", replica, pid, err)
	}
	return proc.stop(10 * time.Second) // waits for the exit, removes the PID file
}

// StopControllerReplica stops replica n gracefully: a leader releases its
// Lease.
func (s *Stack) StopControllerReplica(replica int) error {
	return s.cfg.controllerReplicaProcess(replica, "").stop(20 * time.Second)
}

// ControllerReplicaRunning says whether replica n's process runs.
func (s *Stack) ControllerReplicaRunning(replica int) bool {
	return s.cfg.controllerReplicaProcess(replica, "").running()
}

// ControllerLeader reads the Lease: the identity holding it ("" for
// none) and the replica number of a stack replica (0 for another holder).
func (s *Stack) ControllerLeader(ctx context.Context) (string, int, error) {
	rc, err := s.cfg.KCPBaseRestConfig()
	if err != nil {
		return "", 0, err
	}
	rc.Host += providerPath().RequestPath()
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return "", 0, err
	}
	lease, err := client.CoordinationV1().Leases(ControllerLease[0]).Get(ctx, ControllerLease[1], metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "", 0, nil
	}
	if err != nil {
		return "", 0, err
	}
	holder := leaseHolder(lease)
	for n := 1; n <= MaxControllerReplicas; n++ {
		if holder == ControllerReplicaIdentity(n) {
			return holder, n, nil
		}
	}
	return holder, 0, nil
}

func leaseHolder(l *coordinationv1.Lease) string {
	if l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

// WaitControllerLeader waits until replica n holds the Lease.
func (s *Stack) WaitControllerLeader(ctx context.Context, replica int, timeout time.Duration) error {
	var last string
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		holder, n, err := s.ControllerLeader(ctx)
		last = holder
		return err == nil && n == replica, nil
	})
	if err != nil {
		return fmt.Errorf("replica %d did not take the Lease within %s (holder %q): %w", replica, timeout, last, err)
	}
	return nil
}

// ControllerParts is how many parts the stack's controller replicas split
// the tenant workspaces into (the controller's default).
const ControllerParts = 8

// PartLease is one part's Lease: who holds it and when it was renewed.
type PartLease struct {
	Part   int
	Holder string
	// Replica is the stack replica holding it (0: none, or another).
	Replica int
	Renewed time.Time
}

// ControllerParts reads the Leases of the parts the replicas split the
// tenant workspaces into, by part.
func (s *Stack) ControllerParts(ctx context.Context) ([]PartLease, error) {
	rc, err := s.cfg.KCPBaseRestConfig()
	if err != nil {
		return nil, err
	}
	rc.Host += providerPath().RequestPath()
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, err
	}
	parts := make([]PartLease, ControllerParts)
	for i := range parts {
		parts[i].Part = i
		lease, err := client.CoordinationV1().Leases(ControllerLease[0]).Get(ctx, fmt.Sprintf("%s-part-%d", ControllerLease[1], i), metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		parts[i].Holder = leaseHolder(lease)
		if lease.Spec.RenewTime != nil {
			parts[i].Renewed = lease.Spec.RenewTime.Time
		}
		for n := 1; n <= MaxControllerReplicas; n++ {
			if parts[i].Holder == ControllerReplicaIdentity(n) {
				parts[i].Replica = n
			}
		}
	}
	return parts, nil
}

// PartsSpread says every part is held by one of replicas 1 to n, and each
// of them holds at least least parts.
func PartsSpread(n, least int) func(held map[int]int) bool {
	return func(held map[int]int) bool {
		total := 0
		for r := 1; r <= n; r++ {
			if held[r] < least {
				return false
			}
			total += held[r]
		}
		return total == ControllerParts
	}
}

// WaitControllerParts waits until the parts held per replica (0: none or
// another holder) satisfy ok, and returns the Leases last read.
func (s *Stack) WaitControllerParts(ctx context.Context, timeout time.Duration, ok func(held map[int]int) bool) ([]PartLease, error) {
	var last []PartLease
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		parts, err := s.ControllerParts(ctx)
		if err != nil {
			return false, nil
		}
		last = parts
		held := map[int]int{}
		for _, p := range parts {
			held[p.Replica]++
		}
		return ok(held), nil
	})
	if err != nil {
		return last, fmt.Errorf("parts held %s, not as wanted within %s: %w", DescribeParts(last), timeout, err)
	}
	return last, nil
}

// DescribeParts says which replica holds each part (part:replica).
func DescribeParts(parts []PartLease) string {
	var out []string
	for _, p := range parts {
		out = append(out, fmt.Sprintf("%d:%d", p.Part, p.Replica))
	}
	return strings.Join(out, " ")
}
