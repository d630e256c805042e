package fleet

import (
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/pipelines-service/pipelines-service/pkg/partition"
)

// staleWaiter is how long a waiting TaskRun counts without asking again
// (waiting runs ask at least every few seconds).
const staleWaiter = time.Minute

// Admission decides which TaskRuns may start their pod. At most a
// workspace's limit of its TaskRuns run at once and at most a cluster's
// limit on a cluster; a workspace's waiting runs start in the order they
// came; and when a cluster is full, a freed slot goes to the waiting
// workspace with the fewest running TaskRuns, so that one tenant's burst
// cannot starve the others. A TaskRun runs from admission until Release.
type Admission struct {
	workspaceLimit func(workspace string) int
	clusterLimit   func(cluster string) int
	now            func() time.Time

	mu      sync.Mutex
	share   func(cluster string, limit int) int
	running map[string]slot
	waiting map[string]waiter
	wake    func(keys []string)
}

type slot struct{ workspace, cluster string }

type waiter struct {
	slot
	since, asked time.Time
}

// NewAdmission returns an Admission with the given limits (0: none).
func NewAdmission(workspaceLimit, clusterLimit func(string) int) *Admission {
	return &Admission{
		workspaceLimit: workspaceLimit, clusterLimit: clusterLimit, now: time.Now,
		running: map[string]slot{}, waiting: map[string]waiter{},
	}
}

// OnWake sets what is called with the waiting keys when a slot frees.
func (a *Admission) OnWake(wake func(keys []string)) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.wake = wake
}

// SetShare caps each workload cluster that has a limit at share(cluster,
// limit): this replica's part of the limit, when replicas of the
// controller split the workspaces (partition.Partition.Share). share is
// called with the Admission locked.
func (a *Admission) SetShare(share func(cluster string, limit int) int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.share = share
}

// MarkRunning records a TaskRun that already runs (its pod exists), e.g.
// when the controller starts.
func (a *Admission) MarkRunning(key, workspace, cluster string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.running[key] = slot{workspace, cluster}
	delete(a.waiting, key)
}

// AdmittedOn is the cluster the TaskRun of key was admitted to (or marked
// running on) by this process, if it holds a slot.
func (a *Admission) AdmittedOn(key string) (string, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	s, ok := a.running[key]
	return s.cluster, ok
}

// Admit says whether the TaskRun of key may start its pod on cluster; if
// not, why, and it waits in the queue.
func (a *Admission) Admit(key, workspace, cluster string) (bool, string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if s, ok := a.running[key]; ok {
		if s.cluster == cluster {
			return true, ""
		}
		delete(a.running, key) // it moved: its slot on the old cluster is free
	}
	now := a.now()
	a.pruneWaiters(now)
	me := waiter{slot: slot{workspace, cluster}, since: now, asked: now}
	if w, ok := a.waiting[key]; ok {
		me.since = w.since
	}
	if why := a.mustWait(key, me); why != "" {
		a.waiting[key] = me
		return false, why
	}
	delete(a.waiting, key)
	a.running[key] = me.slot
	return true, ""
}

// mustWait says why the TaskRun me must wait, "" if it may run.
func (a *Admission) mustWait(key string, me waiter) string {
	mine := a.countRunning(func(s slot) bool { return s.workspace == me.workspace })
	if limit := a.workspaceLimit(me.workspace); limit > 0 {
		if mine >= limit {
			return fmt.Sprintf("%d of the workspace's %d concurrent TaskRuns are running", mine, limit)
		}
		if earlier := a.earlierInWorkspace(key, me); earlier >= limit-mine {
			return fmt.Sprintf("%d of the workspace's TaskRuns waited longer", earlier)
		}
	}
	limit := a.clusterLimit(me.cluster)
	if limit <= 0 {
		return ""
	}
	onCluster := a.countRunning(func(s slot) bool { return s.cluster == me.cluster })
	if a.share != nil {
		if share := a.share(me.cluster, limit); share < limit {
			if onCluster >= share {
				return fmt.Sprintf("workload cluster %s is shared by the controller's replicas: %d of this replica's %d of the cluster's %d TaskRuns are running", me.cluster, onCluster, share, limit)
			}
			limit = share
		}
	}
	if onCluster >= limit {
		return fmt.Sprintf("workload cluster %s runs its limit of %d TaskRuns", me.cluster, limit)
	}
	if better := a.fairerWorkspaces(me, mine); better >= limit-onCluster {
		return fmt.Sprintf("workload cluster %s is nearly full; %d workspaces with fewer running TaskRuns go first", me.cluster, better)
	}
	// Within the workspace, the free slots go to the runs that waited
	// longest, also where the workspace has no limit of its own: woken
	// runs ask in no particular order.
	if earlier := a.earlierInWorkspaceOn(key, me); earlier >= limit-onCluster {
		return fmt.Sprintf("workload cluster %s is nearly full; %d of the workspace's TaskRuns waited longer", me.cluster, earlier)
	}
	return ""
}

// earlierInWorkspace counts the workspace's runs that waited longer.
func (a *Admission) earlierInWorkspace(key string, me waiter) int {
	return a.countEarlier(key, me, func(w waiter) bool { return w.workspace == me.workspace })
}

// earlierInWorkspaceOn counts the workspace's runs that waited longer for
// me's cluster.
func (a *Admission) earlierInWorkspaceOn(key string, me waiter) int {
	return a.countEarlier(key, me, func(w waiter) bool { return w.slot == me.slot })
}

// countEarlier counts the other waiters that match and waited longer.
func (a *Admission) countEarlier(key string, me waiter, match func(waiter) bool) int {
	n := 0
	for k, w := range a.waiting {
		if k != key && match(w) && w.since.Before(me.since) {
			n++
		}
	}
	return n
}

// fairerWorkspaces counts the other workspaces waiting for me's cluster
// that should have a slot first: fewer running, or as many and waiting
// longer.
func (a *Admission) fairerWorkspaces(me waiter, mine int) int {
	oldest := map[string]time.Time{}
	for _, w := range a.waiting {
		if w.cluster != me.cluster || w.workspace == me.workspace {
			continue
		}
		if t, ok := oldest[w.workspace]; !ok || w.since.Before(t) {
			oldest[w.workspace] = w.since
		}
	}
	n := 0
	for ws, since := range oldest {
		theirs := a.countRunning(func(s slot) bool { return s.workspace == ws })
		if limit := a.workspaceLimit(ws); limit > 0 && theirs >= limit {
			continue // they wait for their own limit, not for the cluster
		}
		if theirs < mine || (theirs == mine && since.Before(me.since)) {
			n++
		}
	}
	return n
}

func (a *Admission) countRunning(match func(slot) bool) int {
	n := 0
	for _, s := range a.running {
		if match(s) {
			n++
		}
	}
	return n
}

func (a *Admission) pruneWaiters(now time.Time) {
	for k, w := range a.waiting {
		if now.Sub(w.asked) > staleWaiter {
			delete(a.waiting, k)
		}
	}
}

// Release ends the TaskRun's run (done, failed or deleted) or its wait,
// and wakes the waiting TaskRuns.
func (a *Admission) Release(key string) {
	a.mu.Lock()
	_, wasRunning := a.running[key]
	delete(a.running, key)
	delete(a.waiting, key)
	a.unlockAndWake(wasRunning)
}

// unlockAndWake unlocks the Admission and, if a slot freed, wakes the
// waiting TaskRuns (outside the lock: waking queues them).
func (a *Admission) unlockAndWake(freed bool) {
	var keys []string
	if freed {
		for k := range a.waiting {
			keys = append(keys, k)
		}
	}
	wake := a.wake
	a.mu.Unlock()
	if wake != nil && len(keys) > 0 {
		wake(keys)
	}
}

// Retain ends the run or wait of every TaskRun that keep says no longer
// exists or runs, and wakes the waiting ones if a slot freed. It squares
// the books with what the caller's cache says, should a deletion or a
// finish have gone unseen (a workspace removed at once, say).
func (a *Admission) Retain(keep func(key string) bool) []string {
	a.mu.Lock()
	var gone []string
	for k := range a.running {
		if !keep(k) {
			gone = append(gone, k)
			delete(a.running, k)
		}
	}
	freed := len(gone) > 0
	for k := range a.waiting {
		if !keep(k) {
			gone = append(gone, k)
			delete(a.waiting, k)
		}
	}
	a.unlockAndWake(freed)
	return gone
}

// Running counts the admitted TaskRuns of a workspace.
func (a *Admission) Running(workspace string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.countRunning(func(s slot) bool { return s.workspace == workspace })
}

// Demand is what the admitted and waiting TaskRuns ask of each workload
// cluster: the ones running there, and each workspace's running and
// waiting ones (at most its limit). Replicas that split the workspaces
// publish it to share the clusters' limits (partition.Caps).
func (a *Admission) Demand() map[string]partition.Demand {
	a.mu.Lock()
	defer a.mu.Unlock()
	type at struct{ workspace, cluster string }
	asks := map[at]int{}
	demand := map[string]partition.Demand{}
	for _, s := range a.running {
		asks[at(s)]++
		d := demand[s.cluster]
		d.Running++
		demand[s.cluster] = d
	}
	for _, w := range a.waiting {
		asks[at(w.slot)]++
	}
	for k, n := range asks {
		if limit := a.workspaceLimit(k.workspace); limit > 0 {
			n = min(n, limit)
		}
		d := demand[k.cluster]
		d.Workspaces = append(d.Workspaces, n)
		demand[k.cluster] = d
	}
	for c, d := range demand {
		slices.Sort(d.Workspaces)
		demand[c] = d
	}
	return demand
}

// AdmissionState is what the Admission holds: the admitted TaskRuns and
// the waiting ones, by cluster-aware key.
type AdmissionState struct {
	Running map[string]AdmissionSlot `json:"running"`
	Waiting map[string]AdmissionSlot `json:"waiting"`
}

// AdmissionSlot is the workspace and cluster of an admitted or waiting
// TaskRun.
type AdmissionSlot struct {
	Workspace string    `json:"workspace"`
	Cluster   string    `json:"cluster"`
	Since     time.Time `json:"since,omitzero"`
}

// State returns a copy of what the Admission holds (for /debug/admission).
func (a *Admission) State() AdmissionState {
	a.mu.Lock()
	defer a.mu.Unlock()
	state := AdmissionState{Running: map[string]AdmissionSlot{}, Waiting: map[string]AdmissionSlot{}}
	for k, s := range a.running {
		state.Running[k] = AdmissionSlot{Workspace: s.workspace, Cluster: s.cluster}
	}
	for k, w := range a.waiting {
		state.Waiting[k] = AdmissionSlot{Workspace: w.workspace, Cluster: w.cluster, Since: w.since}
	}
	return state
}
