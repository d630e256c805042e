package fleet

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// Request is what placement needs to know of a run (or PVC).
type Request struct {
	// Workspace is the tenant's logical cluster: its TenantPolicy's
	// selector applies.
	Workspace string
	// Selector is the tenant's own selector on the run
	// (AnnotationClusterSelector), may be empty.
	Selector string
	// Required, when set, is the only cluster the run may use (the one
	// holding its PVCs).
	Required string
}

// ErrNoCluster is wrapped by placement errors that a change in the fleet
// can resolve: the run waits.
var ErrNoCluster = errors.New("no workload cluster fits")

// InvalidSelectorError is a selector that does not parse: the run fails.
type InvalidSelectorError struct{ Err error }

func (e InvalidSelectorError) Error() string {
	return fmt.Sprintf("invalid workload cluster selector: %v", e.Err)
}

// candidate is a member as placement sees it.
type candidate struct {
	name          string
	labels        labels.Set
	ready         bool
	unschedulable bool
	load          int
}

// Place chooses a ready member for a run: one that every selector
// matches, with the least load (unfinished pods and recent placements).
func (f *Fleet) Place(req Request) (string, error) {
	selectors, err := f.selectors(req)
	if err != nil {
		return "", err
	}
	var cands []candidate
	for _, m := range f.Members() {
		cands = append(cands, candidate{
			name: m.Name, labels: m.Labels(), ready: m.Ready(), unschedulable: m.spec().Unschedulable,
			load: m.runningPods() + f.recent.count(m.Name),
		})
	}
	name, err := choose(cands, selectors, req.Required)
	if err == nil {
		f.recent.add(name)
	}
	return name, err
}

// Allows says whether the fleet would place a run of req on member name,
// readiness aside: the member is registered and not cordoned, matches the
// workspace's TenantPolicy and the run's own selector, and holds the run's
// volumes. A placement recorded on a run is an annotation in the tenant's
// workspace, which the tenant can write as well as the controller: one the
// controller did not make passes this before a pod goes where it says. The
// error wraps ErrNoCluster, or is an InvalidSelectorError.
func (f *Fleet) Allows(req Request, name string) error {
	selectors, err := f.selectors(req)
	if err != nil {
		return err
	}
	m := f.Member(name)
	if m == nil {
		return fmt.Errorf("%w (%s: not registered)", ErrNoCluster, name)
	}
	c := candidate{name: name, labels: m.Labels(), ready: true, unschedulable: m.spec().Unschedulable}
	if why := unfit(c, selectors, req.Required); why != "" {
		return fmt.Errorf("%w (%s: %s)", ErrNoCluster, name, why)
	}
	return nil
}

func (f *Fleet) selectors(req Request) ([]labels.Selector, error) {
	var out []labels.Selector
	if policy := f.policy(req.Workspace); policy.ClusterSelector != nil {
		s, err := metav1.LabelSelectorAsSelector(policy.ClusterSelector)
		if err != nil {
			return nil, InvalidSelectorError{fmt.Errorf("the platform's TenantPolicy: %w", err)}
		}
		out = append(out, s)
	}
	if req.Selector != "" {
		s, err := labels.Parse(req.Selector)
		if err != nil {
			return nil, InvalidSelectorError{fmt.Errorf("annotation %s: %w", AnnotationClusterSelector, err)}
		}
		out = append(out, s)
	}
	return out, nil
}

// choose is the placement decision: the least loaded fitting candidate
// (by name on a tie), or an error saying why each one does not fit.
func choose(cands []candidate, selectors []labels.Selector, required string) (string, error) {
	var fits []candidate
	var why []string
	for _, c := range cands {
		if reason := unfit(c, selectors, required); reason != "" {
			why = append(why, c.name+": "+reason)
			continue
		}
		fits = append(fits, c)
	}
	if len(fits) == 0 {
		if len(cands) == 0 {
			why = append(why, "none is registered")
		}
		return "", fmt.Errorf("%w (%s)", ErrNoCluster, strings.Join(why, "; "))
	}
	sort.Slice(fits, func(i, j int) bool {
		if fits[i].load != fits[j].load {
			return fits[i].load < fits[j].load
		}
		return fits[i].name < fits[j].name
	})
	return fits[0].name, nil
}

func unfit(c candidate, selectors []labels.Selector, required string) string {
	if required != "" && c.name != required {
		return "the run's volumes are on " + required
	}
	for _, s := range selectors {
		if !s.Matches(c.labels) {
			return "does not match " + s.String()
		}
	}
	if c.unschedulable {
		return "unschedulable"
	}
	if !c.ready {
		return "not ready"
	}
	return ""
}

// recentPlacements counts placements not yet visible as pods, so that a
// burst of runs spreads instead of all choosing the same least-loaded
// cluster.
type recentPlacements struct {
	window time.Duration
	mu     sync.Mutex
	times  map[string][]time.Time
}

func newRecentPlacements(window time.Duration) *recentPlacements {
	return &recentPlacements{window: window, times: map[string][]time.Time{}}
}

func (r *recentPlacements) add(cluster string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.times[cluster] = append(r.prune(cluster), time.Now())
}

func (r *recentPlacements) count(cluster string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.prune(cluster))
}

func (r *recentPlacements) prune(cluster string) []time.Time {
	kept := r.times[cluster][:0]
	for _, t := range r.times[cluster] {
		if time.Since(t) < r.window {
			kept = append(kept, t)
		}
	}
	r.times[cluster] = kept
	return kept
}
