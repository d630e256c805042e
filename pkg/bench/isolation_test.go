package bench

import "testing"

// Each part isolates the isolated rows in its one way; a name that is no
// part is refused.
func TestIsolationParts(t *testing.T) {
	for _, tc := range []struct {
		name          string
		level, agents bool
	}{
		{"all", true, true},
		{"user-namespaces", true, false},
		{"network-policy", false, true},
	} {
		part, err := ParseIsolationPart(tc.name)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if part.level() != tc.level || part.agents() != tc.agents {
			t.Errorf("%s: default level %v, agents %v; want %v, %v", tc.name, part.level(), part.agents(), tc.level, tc.agents)
		}
	}
	if _, err := ParseIsolationPart("userns"); err == nil {
		t.Error("an unknown part is taken")
	}
}
