package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/cloudnativelabs/kube-router/v2/pkg/options"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	"k8s.io/client-go/kubernetes/scheme"
)

// TestClientReadsProtobuf: the agent's client asks for protobuf first and
// decodes the apiserver's protobuf answer.
func TestClientReadsProtobuf(t *testing.T) {
	var mu sync.Mutex
	var accepts []string
	list := &corev1.PodList{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "PodList"},
		Items: []corev1.Pod{{
			ObjectMeta: metav1.ObjectMeta{Name: "step", Namespace: "tenant", Labels: map[string]string{"app": "a"}},
			Status:     corev1.PodStatus{PodIP: "10.244.0.7", Phase: corev1.PodRunning},
		}},
	}
	encoder := protobuf.NewSerializer(scheme.Scheme, scheme.Scheme)
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		accepts = append(accepts, r.Header.Get("Accept"))
		mu.Unlock()
		if r.URL.Path != "/api/v1/pods" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", runtime.ContentTypeProtobuf)
		if err := encoder.Encode(list, w); err != nil {
			t.Error(err)
		}
	}))
	defer server.Close()

	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "`+server.URL+`"}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
users: [{name: u, user: {}}]
current-context: c
`), 0o600); err != nil {
		t.Fatal(err)
	}
	config := options.NewKubeRouterConfig()
	config.Kubeconfig = kubeconfig
	client, err := protobufClient(config)
	if err != nil {
		t.Fatal(err)
	}
	got, err := client.CoreV1().Pods("").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Items) != 1 || got.Items[0].Status.PodIP != "10.244.0.7" || got.Items[0].Labels["app"] != "a" {
		t.Errorf("decoded %+v, want the served pod", got.Items)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(accepts) != 1 || !strings.HasPrefix(accepts[0], runtime.ContentTypeProtobuf) {
		t.Errorf("Accept %q, want protobuf first", accepts)
	}
}
