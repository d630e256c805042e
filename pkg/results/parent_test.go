package results

import (
	"regexp"
	"strings"
	"testing"

	"github.com/kcp-dev/logicalcluster/v3"
)

var upstreamParent = regexp.MustCompile(`^[a-z0-9_-]{1,63}$`)

func TestParent(t *testing.T) {
	long := strings.Repeat("n", 63)
	cases := []struct {
		cluster   logicalcluster.Name
		namespace string
		want      string
	}{
		{"2x8kfr7wn5xkq0yz", "default", "2x8kfr7wn5xkq0yz_default"},
		{"root", "team-a", "root_team-a"},
	}
	for _, tc := range cases {
		if got := Parent(tc.cluster, tc.namespace); got != tc.want {
			t.Errorf("Parent(%s, %s) = %q, want %q", tc.cluster, tc.namespace, got, tc.want)
		}
	}
	a, b := Parent("2x8kfr7wn5xkq0yz", long), Parent("2x8kfr7wn5xkq0yz", long[:62]+"m")
	for _, p := range []string{a, b, Parent("2x8kfr7wn5xkq0yz", "default")} {
		if !upstreamParent.MatchString(p) {
			t.Errorf("parent %q is not one Results accepts", p)
		}
	}
	if a == b {
		t.Errorf("two long namespaces share parent %q", a)
	}
	if Parent("aaaa", "default") == Parent("bbbb", "default") {
		t.Error("two workspaces' default namespaces share a parent")
	}
}
