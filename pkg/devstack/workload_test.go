package devstack

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func TestNodeReadyNeedsAHeartbeatFromTheRunningKubelet(t *testing.T) {
	started := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		name      string
		status    corev1.ConditionStatus
		heartbeat time.Time
		wantErr   string
	}{
		{name: "fresh and ready", status: corev1.ConditionTrue, heartbeat: started.Add(2 * time.Second)},
		{name: "stale from before restart", status: corev1.ConditionTrue, heartbeat: started.Add(-time.Minute), wantErr: "no heartbeat"},
		{name: "fresh but not ready", status: corev1.ConditionFalse, heartbeat: started.Add(time.Second), wantErr: "not ready"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n"}, Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{
				Type: corev1.NodeReady, Status: tc.status, LastHeartbeatTime: metav1.NewTime(tc.heartbeat), Reason: "KubeletReady",
			}}}}
			err := nodeReady(context.Background(), fake.NewSimpleClientset(node), "n", started)
			if tc.wantErr == "" && err != nil {
				t.Fatalf("nodeReady() = %v, want nil", err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("nodeReady() = %v, want %q", err, tc.wantErr)
			}
		})
	}
}
