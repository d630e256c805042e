package partition

import (
	"fmt"
	"testing"
)

func TestPartOfIsStableAndSpreads(t *testing.T) {
	// The contract between versions: these must never change (FNV-1a,
	// 32 bits, modulo 8, worked out apart from the code).
	for ws, want := range map[string]int{"root": 5, "2abc3def": 7, "1dcbzzr423qa54vf": 3} {
		if got := PartOf(ws, 8); got != want {
			t.Errorf("PartOf(%q) = %d, want %d", ws, got, want)
		}
	}
	if got := PartOf("anything", 1); got != 0 {
		t.Errorf("PartOf with one part = %d, want 0", got)
	}
	counts := make([]int, 8)
	for i := range 800 {
		counts[PartOf(fmt.Sprintf("ws%04x", i*7919), 8)]++
	}
	for p, n := range counts {
		if n < 60 || n > 140 {
			t.Errorf("part %d holds %d of 800 workspaces, want about 100", p, n)
		}
	}
}

func TestAssign(t *testing.T) {
	for _, tc := range []struct {
		name    string
		parts   int
		members []string
		want    map[string]int // parts per member
	}{
		{"no member", 8, nil, map[string]int{"": 8}},
		{"alone", 8, []string{"a"}, map[string]int{"a": 8}},
		{"two", 8, []string{"a", "b"}, map[string]int{"a": 4, "b": 4}},
		{"three over eight", 8, []string{"c", "a", "b"}, nil},
		{"a duplicate counts once", 8, []string{"a", "a", "b"}, map[string]int{"a": 4, "b": 4}},
		{"more members than parts", 2, []string{"a", "b", "c"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			owners := Assign(tc.parts, tc.members)
			if len(owners) != tc.parts {
				t.Fatalf("%d owners, want %d", len(owners), tc.parts)
			}
			got := map[string]int{}
			for _, o := range owners {
				got[o]++
			}
			if tc.want != nil && fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("parts per member %v, want %v", got, tc.want)
			}
			share := (tc.parts + max(len(got), 1) - 1) / max(len(got), 1)
			for m, n := range got {
				if m != "" && n > share {
					t.Errorf("member %s holds %d parts, more than its share %d", m, n, share)
				}
			}
			if again := Assign(tc.parts, tc.members); fmt.Sprint(again) != fmt.Sprint(owners) {
				t.Errorf("Assign is not deterministic: %v then %v", owners, again)
			}
		})
	}
}

func TestAssignMovesFewPartsWhenAMemberLeaves(t *testing.T) {
	before := Assign(16, []string{"a", "b", "c", "d"})
	after := Assign(16, []string{"a", "b", "c"})
	moved := 0
	for p := range before {
		if before[p] != "d" && before[p] != after[p] {
			moved++
		}
	}
	// d's four parts move; of the others, at most a few re-balance.
	if moved > 4 {
		t.Errorf("%d parts not held by the member that left moved, want at most 4: %v -> %v", moved, before, after)
	}
}
