// Package partition splits the tenant workspaces over the controller's
// replicas, so that throughput grows with them.
//
// A workspace belongs to one of a fixed number of parts (PartOf). Each
// part has a Lease in the provider workspace, and only the replica holding
// it reconciles the part's workspaces: client-go's leader election, once
// per part, so that no two replicas ever reconcile the same workspace.
// Which replica stands for which part follows the live members (Assign),
// each known by a Lease of its own that it renews; a replica that no
// longer should hold a part stops reconciling it, waits for the reconciles
// in flight, and releases the Lease for the new owner to take at once.
package partition

import (
	"cmp"
	"hash/fnv"
	"slices"
)

// PartOf is the part of a workspace (its logical cluster name): FNV-1a,
// modulo parts. Every replica must compute the same, so the function is a
// contract between versions of the controller, and replicas that differ
// in parts take none (see Partition).
func PartOf(workspace string, parts int) int {
	if parts <= 1 {
		return 0
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(workspace))
	return int(h.Sum32() % uint32(parts))
}

// Assign chooses the member that stands for each part: rendezvous hashing
// (the member with the highest score for a part), but no member takes more
// than its even share (parts/members, rounded up), so that three replicas
// over eight parts hold 3, 3 and 2. A member joining or leaving moves only
// a few parts, and every replica that sees the same members computes the
// same owners. It returns the owner of each part ("" with no members).
func Assign(parts int, members []string) []string {
	owners := make([]string, parts)
	members = slices.Compact(slices.Sorted(slices.Values(members)))
	if len(members) == 0 {
		return owners
	}
	share := (parts + len(members) - 1) / len(members)
	load := map[string]int{}
	ranked := slices.Clone(members)
	for p := range owners {
		slices.SortStableFunc(ranked, func(a, b string) int { return cmp.Compare(score(p, b), score(p, a)) })
		for _, m := range ranked {
			if load[m] < share {
				owners[p] = m
				load[m]++
				break
			}
		}
	}
	return owners
}

// score is member's rendezvous weight for part.
func score(part int, member string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte{byte(part >> 24), byte(part >> 16), byte(part >> 8), byte(part)})
	_, _ = h.Write([]byte(member))
	return mix(h.Sum64())
}

// mix is splitmix64's finalizer: FNV's low bits of inputs that differ in
// one byte are too alike to rank members fairly.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}
