package fleet

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	fleetv1alpha1 "github.com/pipelines-service/pipelines-service/apis/fleet/v1alpha1"
)

// statusRefresh is how often an unchanged status is written (its
// heartbeat time).
const statusRefresh = 30 * time.Second

// heartbeat probes the member until ctx ends, tells listeners of changes
// of readiness and loss, and keeps the WorkloadCluster's status current.
func (f *Fleet) heartbeat(ctx context.Context, m *Member) {
	ticker := time.NewTicker(f.opts.HeartbeatInterval)
	defer ticker.Stop()
	var written fleetv1alpha1.WorkloadClusterStatus
	var writtenAt time.Time
	// What listeners were last told: loss comes with time, between probes.
	ready, lost := m.Ready(), m.Lost()
	for {
		m.probe(ctx, f.opts.HeartbeatInterval)
		if nowReady, nowLost := m.Ready(), m.Lost(); nowReady != ready || nowLost != lost {
			ready, lost = nowReady, nowLost
			m.log.Infow("workload cluster changed", "ready", ready, "lost", lost)
			f.notify(m, false)
		}
		status := m.status()
		if !f.standby.Load() && (!sameStatus(status, written) || time.Since(writtenAt) > statusRefresh) {
			if err := f.writeStatus(ctx, m.Name, status); err != nil {
				m.log.Warnw("could not write WorkloadCluster status", "error", err)
			} else {
				written, writtenAt = status, time.Now()
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// probe lists the member's nodes: an answer makes it reachable, counts
// its Ready nodes and says whether all of them support user namespaces.
func (m *Member) probe(ctx context.Context, timeout time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	nodes, err := m.Client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		if m.state.reachable {
			m.state.unreachableSince = now
		}
		m.state.reachable, m.state.lastError = false, err.Error()
		return
	}
	m.state.reachable, m.state.lastSeen, m.state.lastError = true, now, ""
	m.state.readyNodes = 0
	m.state.userNamespaces = true
	for i := range nodes.Items {
		n := &nodes.Items[i]
		if !schedulable(n) {
			continue
		}
		m.state.readyNodes++
		m.state.userNamespaces = m.state.userNamespaces && NodeSupportsUserNamespaces(n)
	}
	m.state.userNamespaces = m.state.userNamespaces && m.state.readyNodes > 0
}

func schedulable(n *corev1.Node) bool {
	if n.Spec.Unschedulable {
		return false
	}
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// NodeSupportsUserNamespaces reads what the kubelet reports of its
// runtime's default handler (the one named ""): kubelet 1.33+ with
// containerd 2 and runc 1.2+ on a kernel with idmapped mounts say true.
func NodeSupportsUserNamespaces(n *corev1.Node) bool {
	for _, h := range n.Status.RuntimeHandlers {
		if h.Name == "" {
			return h.Features != nil && h.Features.UserNamespaces != nil && *h.Features.UserNamespaces
		}
	}
	return false
}

// status is the WorkloadCluster status of the member's state.
func (m *Member) status() fleetv1alpha1.WorkloadClusterStatus {
	pods := m.runningPods()
	m.mu.Lock()
	defer m.mu.Unlock()
	st := fleetv1alpha1.WorkloadClusterStatus{ReadyNodes: m.state.readyNodes, RunningPods: pods, UserNamespaces: m.state.userNamespaces}
	if !m.state.lastSeen.IsZero() {
		st.LastHeartbeatTime = &metav1.Time{Time: m.state.lastSeen}
	}
	reachable := metav1.Condition{Type: fleetv1alpha1.ConditionReachable, Status: metav1.ConditionTrue, Reason: "HeartbeatAnswered", Message: "the apiserver answers"}
	if !m.state.reachable {
		reachable.Status, reachable.Reason = metav1.ConditionFalse, "HeartbeatFailed"
		reachable.Message = fmt.Sprintf("no answer since %s: %s", m.state.unreachableSince.UTC().Format(time.RFC3339), m.state.lastError)
		if m.lostLocked(time.Now()) {
			reachable.Reason = "Lost"
		}
	}
	ready := metav1.Condition{Type: fleetv1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: "Ready", Message: fmt.Sprintf("%d Ready nodes", m.state.readyNodes)}
	switch {
	case !m.state.reachable:
		ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, "Unreachable", "the apiserver does not answer"
	case m.state.readyNodes == 0:
		ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, "NoReadyNodes", "no node is Ready and schedulable"
	case !m.state.synced:
		ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, "Syncing", "the controller's informers are syncing"
	}
	st.Conditions = []metav1.Condition{reachable, ready}
	return st
}

func sameStatus(a, b fleetv1alpha1.WorkloadClusterStatus) bool {
	if a.ReadyNodes != b.ReadyNodes || a.RunningPods != b.RunningPods || a.UserNamespaces != b.UserNamespaces || len(a.Conditions) != len(b.Conditions) {
		return false
	}
	for i := range a.Conditions {
		if a.Conditions[i].Status != b.Conditions[i].Status || a.Conditions[i].Reason != b.Conditions[i].Reason {
			return false
		}
	}
	return true
}

// writeStatus writes a WorkloadCluster's status, keeping the transition
// times of conditions that did not change.
func (f *Fleet) writeStatus(ctx context.Context, name string, status fleetv1alpha1.WorkloadClusterStatus) error {
	client := f.provider.Resource(fleetv1alpha1.WorkloadClustersResource)
	u, err := client.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	current, err := DecodeCluster(u)
	if err != nil {
		return err
	}
	conditions := current.Status.Conditions
	for _, c := range status.Conditions {
		meta.SetStatusCondition(&conditions, c)
	}
	status.Conditions = conditions
	content, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&status)
	if err != nil {
		return err
	}
	if err := unstructured.SetNestedField(u.Object, content, "status"); err != nil {
		return err
	}
	_, err = client.UpdateStatus(ctx, u, metav1.UpdateOptions{})
	return err
}

// ReasonInvalidKubeconfig: the WorkloadCluster's kubeconfig Secret is
// missing or does not make a client; the cluster is not used.
const ReasonInvalidKubeconfig = "InvalidKubeconfig"

// reportUnusable records on a WorkloadCluster that no member could be
// started for it, unless its status says so already (the write's own
// update event comes back here).
func (f *Fleet) reportUnusable(wc *fleetv1alpha1.WorkloadCluster, cause error) {
	message := cause.Error()
	if c := meta.FindStatusCondition(wc.Status.Conditions, fleetv1alpha1.ConditionReady); c != nil && c.Reason == ReasonInvalidKubeconfig && c.Message == message {
		return
	}
	f.log.Warnw("workload cluster not used", "cluster", wc.Name, "error", cause)
	status := fleetv1alpha1.WorkloadClusterStatus{Conditions: []metav1.Condition{
		{Type: fleetv1alpha1.ConditionReachable, Status: metav1.ConditionFalse, Reason: ReasonInvalidKubeconfig, Message: message},
		{Type: fleetv1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: ReasonInvalidKubeconfig, Message: message},
	}}
	ctx := f.ctx
	go func() {
		if err := f.writeStatus(ctx, wc.Name, status); err != nil {
			f.log.Warnw("could not write WorkloadCluster status", "cluster", wc.Name, "error", err)
		}
	}()
}
