package workload

import (
	"strings"
	"testing"

	"github.com/kcp-dev/logicalcluster/v3"
	"k8s.io/apimachinery/pkg/util/validation"
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
