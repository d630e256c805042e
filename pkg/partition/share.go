package partition

import (
	"maps"
	"slices"
	"sort"
)

// Demand is what one replica's TaskRuns ask of one workload cluster: the
// ones it runs there, and per workspace with any, its running and waiting
// TaskRuns (at most its own limit).
type Demand struct {
	Running    int   `json:"running"`
	Workspaces []int `json:"workspaces,omitempty"`
}

// Caps divides a workload cluster's limit of running TaskRuns among the
// replicas, from the demands they published.
//
// Within a replica, the fleet's Admission gives a freed slot to the
// waiting workspace with the fewest running TaskRuns. Across replicas the
// same rule, applied to every workspace's demand at once, is max-min
// fairness: each workspace gets up to a common level, and the level is
// as high as the limit allows. A replica's cap is what its workspaces get,
// plus an even part of what no demand takes yet, so that a replica whose
// new runs are not published yet still starts some at once. Every replica
// computes the same caps from the same demands, and they add up to at most
// limit, so that replicas admitting each under its own cap never run more
// than the cluster's limit between them.
func Caps(limit int, demands map[string]Demand) map[string]int {
	caps := map[string]int{}
	members := slices.Sorted(maps.Keys(demands))
	if limit <= 0 || len(members) == 0 {
		return caps
	}
	type entry struct {
		member string
		demand int
	}
	var entries []entry
	var asked []int
	for _, m := range members {
		for _, d := range demands[m].Workspaces {
			if d > 0 {
				entries = append(entries, entry{m, d})
				asked = append(asked, d)
			}
		}
	}
	level := waterLevel(limit, asked)
	given := 0
	for _, e := range entries {
		n := min(e.demand, level)
		caps[e.member] += n
		given += n
	}
	// The slots left below the next level go one each, in a fixed order,
	// to the workspaces that want more.
	for _, e := range entries {
		if given < limit && e.demand > level {
			caps[e.member]++
			given++
		}
	}
	free := limit - given
	for i, m := range members {
		caps[m] += free / len(members)
		if i < free%len(members) {
			caps[m]++
		}
	}
	return caps
}

// waterLevel is the highest level such that the demands, each cut at it,
// add up to at most limit.
func waterLevel(limit int, ds []int) int {
	top := slices.Max(append(ds, 0))
	// The first level too high, less one.
	return sort.Search(top+1, func(level int) bool {
		sum := 0
		for _, d := range ds {
			sum += min(d, level)
		}
		return sum > limit
	}) - 1
}

// Share is this replica's cap on a workload cluster whose limit is limit:
// its part of Caps over the live members' published demands, and never
// more than what the others' running TaskRuns leave (a member whose cap
// shrank runs above it until its runs end). Alone, a replica's cap is the
// limit.
func (p *Partition) Share(cluster string, limit int) int {
	v := p.members.Load()
	if p.whole || v == nil {
		return limit
	}
	demands := map[string]Demand{}
	others := 0
	for id := range v.parts {
		d := v.demands[id][cluster]
		demands[id] = d
		if id != p.cfg.Identity {
			others += d.Running
		}
	}
	return max(0, min(Caps(limit, demands)[p.cfg.Identity], limit-others))
}
