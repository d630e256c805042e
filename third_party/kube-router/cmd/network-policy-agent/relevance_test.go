package main

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
)

func pod(phase corev1.PodPhase, ip string, labels map[string]string) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", Labels: labels}}
	p.Status.Phase, p.Status.PodIP, p.Status.HostIP = phase, ip, "10.0.0.1"
	if ip != "" {
		p.Status.PodIPs = []corev1.PodIP{{IP: ip}}
	}
	return p
}

func TestRuleRelevantPodEvents(t *testing.T) {
	a := map[string]string{"app": "a"}
	cases := []struct {
		name     string
		old, new *corev1.Pod
		want     bool
	}{
		{"created, no IP yet", pod(corev1.PodPending, "", a), pod(corev1.PodPending, "", a), false},
		{"IP assigned", pod(corev1.PodPending, "", a), pod(corev1.PodPending, "10.1.0.5", a), true},
		{"pending to running, same IP", pod(corev1.PodPending, "10.1.0.5", a), pod(corev1.PodRunning, "10.1.0.5", a), false},
		{"IP and running at once", pod(corev1.PodPending, "", a), pod(corev1.PodRunning, "10.1.0.5", a), true},
		{"labels changed", pod(corev1.PodRunning, "10.1.0.5", a), pod(corev1.PodRunning, "10.1.0.5", map[string]string{"app": "b"}), true},
		{"status written, nothing else", pod(corev1.PodRunning, "10.1.0.5", a), pod(corev1.PodRunning, "10.1.0.5", a), false},
		{"succeeded", pod(corev1.PodRunning, "10.1.0.5", a), pod(corev1.PodSucceeded, "10.1.0.5", a), true},
		{"failed", pod(corev1.PodRunning, "10.1.0.5", a), pod(corev1.PodFailed, "10.1.0.5", a), true},
		{"finished pod updated again", pod(corev1.PodSucceeded, "10.1.0.5", a), pod(corev1.PodSucceeded, "", a), false},
		{"labels of a pod without IP", pod(corev1.PodPending, "", a), pod(corev1.PodPending, "", nil), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := false
			h := ruleRelevantPodEvents(func() { got = true })
			h.OnUpdate(tc.old, tc.new)
			if got != tc.want {
				t.Errorf("update passed on = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestRuleRelevantPodAdds(t *testing.T) {
	cases := []struct {
		name string
		pod  *corev1.Pod
		want bool
	}{
		{"no IP yet", pod(corev1.PodPending, "", nil), false},
		{"running with an IP", pod(corev1.PodRunning, "10.1.0.5", nil), true},
		{"finished", pod(corev1.PodSucceeded, "10.1.0.5", nil), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := false
			ruleRelevantPodEvents(func() { got = true }).OnAdd(tc.pod, false)
			if got != tc.want {
				t.Errorf("add passed on = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestRuleRelevantPodDeletes(t *testing.T) {
	cases := []struct {
		name string
		obj  interface{}
		want bool
	}{
		{"running pod", pod(corev1.PodRunning, "10.1.0.5", nil), true},
		{"finished pod", pod(corev1.PodSucceeded, "10.1.0.5", nil), false},
		{"pod that never had an IP", pod(corev1.PodPending, "", nil), false},
		{"tombstone", cache.DeletedFinalStateUnknown{Key: "ns/p", Obj: pod(corev1.PodSucceeded, "10.1.0.5", nil)}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := false
			h := ruleRelevantPodEvents(func() { got = true })
			h.OnDelete(tc.obj)
			if got != tc.want {
				t.Errorf("delete passed on = %v, want %v", got, tc.want)
			}
		})
	}
}
