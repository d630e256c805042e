package fleet

import (
	"fmt"
	"testing"
	"time"
)

// step is one call on an Admission in a scenario.
type step struct {
	admit, release string // key "<workspace>/<n>"
	gone           string // the cache no longer has it (Retain)
	cluster        string // default "c"
	want           bool
}

func TestAdmission(t *testing.T) {
	tests := []struct {
		name           string
		workspaceLimit map[string]int
		clusterLimit   int
		steps          []step
	}{{
		name:           "workspace limit",
		workspaceLimit: map[string]int{"a": 2},
		steps: []step{
			{admit: "a/1", want: true}, {admit: "a/2", want: true}, {admit: "a/3", want: false},
			{admit: "b/1", want: true}, // another workspace does not wait behind a
			{release: "a/1"}, {admit: "a/3", want: true}, {admit: "a/4", want: false},
		},
	}, {
		name:           "a workspace's waiting runs start in order",
		workspaceLimit: map[string]int{"a": 1},
		steps: []step{
			{admit: "a/1", want: true}, {admit: "a/2", want: false}, {admit: "a/3", want: false},
			{release: "a/1"}, {admit: "a/3", want: false}, {admit: "a/2", want: true},
		},
	}, {
		name:         "cluster limit, fair share across workspaces",
		clusterLimit: 3,
		steps: []step{
			{admit: "a/1", want: true}, {admit: "a/2", want: true}, {admit: "a/3", want: true},
			{admit: "a/4", want: false}, {admit: "b/1", want: false},
			{release: "a/1"},
			{admit: "a/4", want: false}, // b runs none: its turn
			{admit: "b/1", want: true},
			{admit: "a/4", want: false},
		},
	}, {
		name:         "on a full cluster, a workspace without a limit still starts its runs in order",
		clusterLimit: 2,
		steps: []step{
			{admit: "a/1", want: true}, {admit: "a/2", want: true},
			{admit: "b/1", want: false}, {admit: "b/2", want: false},
			{release: "a/1"},
			{admit: "b/2", want: false}, // b/1 waited longer
			{admit: "b/1", want: true},
			{release: "b/1"},
			{admit: "a/3", want: false}, // b runs fewer: b/2 goes first
			{admit: "b/2", want: true},
		},
	}, {
		name:         "limits are per cluster",
		clusterLimit: 1,
		steps: []step{
			{admit: "a/1", want: true}, {admit: "a/2", want: false}, {admit: "a/2", cluster: "d", want: true},
		},
	}, {
		name:           "a run that moved holds no slot on its old cluster",
		workspaceLimit: map[string]int{"a": 1},
		steps: []step{
			{admit: "a/1", want: true}, {admit: "a/1", cluster: "d", want: true}, {admit: "a/2", want: false},
		},
	}, {
		name:         "a run the cache no longer has frees its slot",
		clusterLimit: 1,
		steps: []step{
			{admit: "a/1", want: true}, {admit: "b/1", want: false},
			{gone: "x/1"}, {admit: "b/1", want: false}, // nothing of ours
			{gone: "a/1"}, {admit: "b/1", want: true},
		},
	}, {
		name: "no limits",
		steps: []step{
			{admit: "a/1", want: true}, {admit: "a/2", want: true}, {admit: "a/1", want: true},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := time.Unix(0, 0)
			a := NewAdmission(func(ws string) int { return tt.workspaceLimit[ws] }, func(string) int { return tt.clusterLimit })
			a.now = func() time.Time { clock = clock.Add(time.Second); return clock }
			for i, s := range tt.steps {
				if s.release != "" {
					a.Release(s.release)
					continue
				}
				if s.gone != "" {
					a.Retain(func(key string) bool { return key != s.gone })
					continue
				}
				cluster := s.cluster
				if cluster == "" {
					cluster = "c"
				}
				ws := s.admit[:1]
				got, why := a.Admit(s.admit, ws, cluster)
				if got != s.want {
					t.Fatalf("step %d: Admit(%s on %s) = %v (%s), want %v", i, s.admit, cluster, got, why, s.want)
				}
			}
		})
	}
}

func TestAdmissionWakesWaiters(t *testing.T) {
	a := NewAdmission(func(string) int { return 1 }, func(string) int { return 0 })
	var woken []string
	a.OnWake(func(keys []string) { woken = append(woken, keys...) })
	a.Admit("a/1", "a", "c")
	a.Admit("a/2", "a", "c")
	a.Release("a/1")
	if fmt.Sprint(woken) != "[a/2]" {
		t.Fatalf("woken %v, want [a/2]", woken)
	}
	a.Admit("a/2", "a", "c")
	a.Admit("a/3", "a", "c")
	woken = nil
	if gone := a.Retain(func(key string) bool { return key != "a/2" }); fmt.Sprint(gone) != "[a/2]" {
		t.Fatalf("Retain dropped %v, want [a/2]", gone)
	}
	if fmt.Sprint(woken) != "[a/3]" {
		t.Fatalf("after Retain woken %v, want [a/3]", woken)
	}
}

func TestAdmissionSharedByReplicas(t *testing.T) {
	a := NewAdmission(func(ws string) int { return map[string]int{"a": 2}[ws] }, func(string) int { return 4 })
	share := 2
	a.SetShare(func(cluster string, limit int) int {
		if cluster != "c" || limit != 4 {
			t.Errorf("share(%q, %d), want (c, 4)", cluster, limit)
		}
		return share
	})
	for _, s := range []struct {
		key  string
		want bool
	}{{"b/1", true}, {"b/2", true}, {"b/3", false}} {
		if ok, why := a.Admit(s.key, "b", "c"); ok != s.want {
			t.Errorf("Admit(%s) = %v (%s), want %v", s.key, ok, why, s.want)
		} else if !ok && why == "" {
			t.Errorf("Admit(%s) refused without a reason", s.key)
		}
	}
	// Another replica's demand shrank: this one's share grows.
	share = 4
	if ok, why := a.Admit("b/3", "b", "c"); !ok {
		t.Errorf("Admit(b/3) after the share grew: %s", why)
	}
	for _, k := range []string{"a/1", "a/2", "a/3"} {
		a.Admit(k, "a", "c") // a/1 takes the last slot; a/2 and a/3 wait
	}
	got := a.Demand()["c"]
	// b: three running; a: one running and two waiting, counted at its
	// limit of 2.
	if got.Running != 4 || fmt.Sprint(got.Workspaces) != "[2 3]" {
		t.Errorf("Demand()[c] = %+v, want 4 running and workspaces [2 3]", got)
	}
}
