package partition

import (
	"fmt"
	"testing"
)

func TestCaps(t *testing.T) {
	for _, tc := range []struct {
		name    string
		limit   int
		demands map[string]Demand
		want    map[string]int
	}{
		{"alone: the whole limit", 10, map[string]Demand{"a": {Workspaces: []int{3}}}, map[string]int{"a": 10}},
		{"alone without demand", 10, map[string]Demand{"a": {}}, map[string]int{"a": 10}},
		{"no limit", 0, map[string]Demand{"a": {Workspaces: []int{3}}}, map[string]int{}},
		{"idle others: slack split evenly", 9, map[string]Demand{"a": {}, "b": {}, "c": {}}, map[string]int{"a": 3, "b": 3, "c": 3}},
		{
			// The burst of a's one workspace does not starve b's two small
			// ones: they get all they ask, a the rest.
			"max-min over workspaces", 10,
			map[string]Demand{"a": {Workspaces: []int{20}}, "b": {Workspaces: []int{2, 1}}},
			map[string]int{"a": 7, "b": 3},
		},
		{
			"a level between demands", 10,
			map[string]Demand{"a": {Workspaces: []int{8, 8}}, "b": {Workspaces: []int{8}}},
			map[string]int{"a": 7, "b": 3}, // level 3, one slot left over goes in order
		},
		{
			"demand below the limit: the rest split", 10,
			map[string]Demand{"a": {Workspaces: []int{2}}, "b": {Workspaces: []int{3}}},
			map[string]int{"a": 2 + 3, "b": 3 + 2},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Caps(tc.limit, tc.demands)
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("Caps(%d, %v) = %v, want %v", tc.limit, tc.demands, got, tc.want)
			}
			sum := 0
			for _, c := range got {
				sum += c
			}
			if tc.limit > 0 && sum != tc.limit {
				t.Errorf("caps add up to %d, want the limit %d", sum, tc.limit)
			}
		})
	}
}

func TestShareLeavesWhatOthersRun(t *testing.T) {
	p := &Partition{cfg: Config{Identity: "a"}}
	p.members.Store(&view{
		parts: map[string]int{"a": 8, "b": 8},
		demands: map[string]map[string]Demand{
			"a": {"w1": {Workspaces: []int{5}}},
			// b's cap shrank below what it runs: a may start only what is left.
			"b": {"w1": {Running: 8, Workspaces: []int{8}}},
		},
	})
	if got := p.Share("w1", 10); got != 2 {
		t.Errorf("Share = %d, want 2 (10 less b's 8 running, below a's cap of 5)", got)
	}
	if got := p.Share("w2", 10); got != 5 {
		t.Errorf("Share of an idle cluster = %d, want half the limit, 5", got)
	}
	if got := Whole().Share("w1", 10); got != 10 {
		t.Errorf("Whole().Share = %d, want the limit", got)
	}
}
