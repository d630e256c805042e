package workload

import (
	"context"
	"strings"
	"testing"

	"github.com/kcp-dev/logicalcluster/v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes/fake"
)

func TestNamespaceIsValidAndDistinct(t *testing.T) {
	long := strings.Repeat("n", 63)
	cases := []struct {
		cluster   string
		namespace string
	}{
		{"2x4kfu6d1ycxlfpm", "default"},
		{"2x4kfu6d1ycxlfpm", "default-a"},
		{"2x4kfu6d1ycxlfpmdefault", "a"},
		{"root", "default"},
		{"2x4kfu6d1ycxlfpm", long},
		{"2x4kfu6d1ycxlfpm", long[:62] + "m"},
		{"1z8oa1n3qk2y1zd2", long},
	}
	seen := map[string]string{}
	for _, tc := range cases {
		name := Namespace(logicalcluster.Name(tc.cluster), tc.namespace)
		if errs := validation.IsDNS1123Label(name); len(errs) > 0 {
			t.Errorf("Namespace(%s, %s) = %q is not a valid namespace name: %v", tc.cluster, tc.namespace, name, errs)
		}
		key := tc.cluster + "/" + tc.namespace
		if other, ok := seen[name]; ok {
			t.Errorf("%s and %s both map to %s", other, key, name)
		}
		seen[name] = key
	}
}

func TestCheckOwner(t *testing.T) {
	ns := NamespaceObject("2x4kfu6d1ycxlfpm", "default", nil)
	if err := CheckOwner(ns, "2x4kfu6d1ycxlfpm", "default"); err != nil {
		t.Errorf("own namespace refused: %v", err)
	}
	if err := CheckOwner(ns, "1z8oa1n3qk2y1zd2", "default"); err == nil {
		t.Error("namespace of another tenant accepted")
	}
}

func TestEnsureNamespacePutsLabelsBack(t *testing.T) {
	ctx := context.Background()
	level := map[string]string{"pod-security.kubernetes.io/enforce": "baseline"}
	client := fake.NewClientset() // with server-side apply
	if err := EnsureNamespace(ctx, client, Isolation{}, "2x4kfu6d1ycxlfpm", "default", level); err != nil {
		t.Fatal(err)
	}
	name := Namespace("2x4kfu6d1ycxlfpm", "default")
	ns, err := client.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	if err != nil || ns.Labels["pod-security.kubernetes.io/enforce"] != "baseline" || ns.Labels[LabelManagedBy] != ManagedByValue {
		t.Fatalf("created %v, %v: want the level and the service's labels", ns.Labels, err)
	}
	ns.Labels["pod-security.kubernetes.io/enforce"] = "privileged"
	if _, err := client.CoreV1().Namespaces().Update(ctx, ns, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if !NamespaceLabelsDiffer(ns, level) {
		t.Fatal("a relabelled namespace is not seen as changed")
	}
	if err := EnsureNamespace(ctx, client, Isolation{}, "2x4kfu6d1ycxlfpm", "default", level); err != nil {
		t.Fatal(err)
	}
	ns, _ = client.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	if got := ns.Labels["pod-security.kubernetes.io/enforce"]; got != "baseline" {
		t.Errorf("enforce = %q after EnsureNamespace, want baseline", got)
	}
	if err := EnsureNamespace(ctx, client, Isolation{}, "2x4kfu6d1ycxlfpm", "default", level); err != nil {
		t.Fatal(err)
	}
	patches := 0
	for _, a := range client.Actions() {
		if a.GetVerb() == "patch" && a.GetResource().Resource == "namespaces" {
			patches++
		}
	}
	if patches != 1 {
		t.Errorf("%d patches, want 1: a namespace with its labels is left alone", patches)
	}
}
