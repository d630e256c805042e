package fleet

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

func TestNodeSupportsUserNamespaces(t *testing.T) {
	handler := func(name string, userns *bool) corev1.NodeRuntimeHandler {
		return corev1.NodeRuntimeHandler{Name: name, Features: &corev1.NodeRuntimeHandlerFeatures{UserNamespaces: userns}}
	}
	for _, tc := range []struct {
		name     string
		handlers []corev1.NodeRuntimeHandler
		want     bool
	}{
		{name: "default handler supports them", handlers: []corev1.NodeRuntimeHandler{handler("", ptr.To(true)), handler("runc", ptr.To(true))}, want: true},
		{name: "default handler does not", handlers: []corev1.NodeRuntimeHandler{handler("", ptr.To(false)), handler("crun", ptr.To(true))}},
		{name: "only another handler does", handlers: []corev1.NodeRuntimeHandler{handler("crun", ptr.To(true))}},
		{name: "feature not reported (containerd 1.x)", handlers: []corev1.NodeRuntimeHandler{handler("", nil)}},
		{name: "no handlers (kubelet before 1.30)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := &corev1.Node{Status: corev1.NodeStatus{RuntimeHandlers: tc.handlers}}
			if got := NodeSupportsUserNamespaces(n); got != tc.want {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}
