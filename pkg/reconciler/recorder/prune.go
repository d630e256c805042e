package recorder

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/kcp-dev/logicalcluster/v3"
	"github.com/robfig/cron/v3"
	resultsconfig "github.com/tektoncd/results/pkg/apis/config"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
)

// Pruning deletes finished runs from their workspace once they are
// archived and older than the workspace's retention, as upstream's
// retention agent deletes old Results from the database: same ConfigMap
// (tekton-results-config-results-retention-policy), same keys (runAt, a
// cron schedule; defaultRetention; policies matching namespaces, labels,
// annotations and statuses, the first match winning). The platform's
// ConfigMap data is the default; a tenant's own, in its workspace's
// tekton-pipelines namespace, overrides it key by key.
//
// Only runs marked stored go: a PipelineRun with its TaskRuns once every
// one of them is stored, a standalone TaskRun alone; and only once their
// Record and Log are found in Results (archived). Their pods go from
// the workload clusters with them (the TaskRun finalizer).

// RetentionSource gives a workspace's retention ConfigMap (nil: none).
type RetentionSource interface {
	Retention(cluster logicalcluster.Name) (*corev1.ConfigMap, error)
}

// retention is a workspace's parsed policy.
func retention(platform map[string]string, tenant *corev1.ConfigMap) (*resultsconfig.RetentionPolicy, error) {
	data := map[string]string{}
	for k, v := range platform {
		data[k] = v
	}
	if tenant != nil {
		for k, v := range tenant.Data {
			data[k] = v
		}
	}
	return resultsconfig.NewRetentionPolicyFromConfigMap(&corev1.ConfigMap{Data: data})
}

// retentionOf is how long policy keeps a run: the first policy whose
// selector matches it, else the default. A policy with an unparsable
// retention is an error, as it is for upstream's agent.
func retentionOf(policy *resultsconfig.RetentionPolicy, run *unstructured.Unstructured) (time.Duration, error) {
	for _, p := range policy.Policies {
		if !selects(p.Selector, run) {
			continue
		}
		d, err := resultsconfig.ParseDuration(p.Retention)
		if err != nil {
			return 0, fmt.Errorf("policy %q: retention %q: %w", p.Name, p.Retention, err)
		}
		return d, nil
	}
	return policy.DefaultRetention, nil
}

// selects is upstream's SQL match (pkg/retention/job.go) on the live
// object: every given criterion holds.
func selects(s resultsconfig.Selector, run *unstructured.Unstructured) bool {
	if len(s.MatchNamespaces) > 0 && !slices.Contains(s.MatchNamespaces, run.GetNamespace()) {
		return false
	}
	for k, values := range s.MatchLabels {
		if v, ok := run.GetLabels()[k]; !ok || !slices.Contains(values, v) {
			return false
		}
	}
	for k, values := range s.MatchAnnotations {
		if v, ok := run.GetAnnotations()[k]; !ok || !slices.Contains(values, v) {
			return false
		}
	}
	if len(s.MatchStatuses) > 0 && !slices.Contains(s.MatchStatuses, firstConditionReason(run)) {
		return false
	}
	return true
}

func firstConditionReason(run *unstructured.Unstructured) string {
	conds, _, _ := unstructured.NestedSlice(run.Object, "status", "conditions")
	if len(conds) == 0 {
		return ""
	}
	m, _ := conds[0].(map[string]any)
	reason, _ := m["reason"].(string)
	return reason
}

// completedAt is the run's status.completionTime (zero if unset).
func completedAt(run *unstructured.Unstructured) time.Time {
	s, _, _ := unstructured.NestedString(run.Object, "status", "completionTime")
	t, _ := time.Parse(time.RFC3339, s)
	return t
}

// due says the schedule fired in (last, now]: the workspace's pruning runs
// at the times its runAt names, as upstream's agent does.
func due(schedule string, last, now time.Time) (bool, error) {
	sched, err := cron.ParseStandard(sundayAsZero(schedule))
	if err != nil {
		return false, fmt.Errorf("runAt %q: %w", schedule, err)
	}
	return !sched.Next(last).After(now), nil
}

// storedRun is a run marked stored, with its kind.
type storedRun struct {
	kind string
	*unstructured.Unstructured
}

// sundayAsZero writes a day-of-week 7 as 0: cron takes both for Sunday,
// and upstream's default runAt ("7 7 * * 7") says 7, which the cron
// library refuses.
func sundayAsZero(schedule string) string {
	fields := strings.Fields(schedule)
	if len(fields) != 5 {
		return schedule
	}
	items := strings.Split(fields[4], ",")
	for i, item := range items {
		switch {
		case item == "7":
			items[i] = "0"
		case strings.HasSuffix(item, "-7"):
			items[i] = strings.TrimSuffix(item, "-7") + "-6,0"
		}
	}
	fields[4] = strings.Join(items, ",")
	return strings.Join(fields, " ")
}

// pruneInterval is how often the pruner looks: runAt's resolution is a
// minute.
const pruneInterval = 20 * time.Second

// pruneState is what the pruner keeps between passes: each workspace's
// last pass, and the problem last told of each tenant object, so that a
// standing problem makes one Event, not one a pass.
type pruneState struct {
	last     map[logicalcluster.Name]time.Time
	reported map[types.UID]string
}

// runPruner prunes until ctx ends.
func (c *Controller) runPruner(ctx context.Context) {
	state := &pruneState{last: map[logicalcluster.Name]time.Time{}, reported: map[types.UID]string{}}
	ticker := time.NewTicker(pruneInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-ticker.C:
			c.pruneOnce(ctx, state, now)
		}
	}
}

// pruneOnce prunes, in each workspace whose schedule fired since its last
// pass, the stored runs older than their retention.
func (c *Controller) pruneOnce(ctx context.Context, state *pruneState, now time.Time) {
	byWorkspace := map[logicalcluster.Name][]storedRun{}
	for _, k := range []string{"PipelineRun", "TaskRun"} {
		for _, obj := range c.kinds[k].informer.Informer().GetStore().List() {
			if u, ok := obj.(*unstructured.Unstructured); ok && u.GetAnnotations()[AnnotationStored] == "true" && u.GetDeletionTimestamp() == nil {
				ws := logicalcluster.From(u)
				byWorkspace[ws] = append(byWorkspace[ws], storedRun{kind: k, Unstructured: u})
			}
		}
	}
	for ws, runs := range byWorkspace {
		if c.gate != nil {
			_, done, ok := c.gate.Enter(ctx, ws.String())
			if !ok {
				continue // another replica prunes it
			}
			// Held only to the end of this pass: giving the part up waits
			// for it, and a pass prunes a few runs.
			defer done()
		}
		log := c.log.With("workspace", ws)
		from, seen := state.last[ws]
		if !seen {
			from = now.Add(-pruneInterval)
		}
		policy, fire, err := c.policyDue(ws, from, now)
		if err != nil {
			log.Infow("retention policy invalid; not pruning", "error", err)
			c.tellTenant(ctx, state, ws, err)
			continue
		}
		state.last[ws] = now
		if fire {
			c.pruneWorkspace(ctx, log, ws, policy, runs, now)
		}
	}
}

// policyDue is the workspace's retention policy, and whether its schedule
// fired in (from, now]. An error is a policy the tenant wrote wrong: an
// invalidConfigError names its ConfigMap.
func (c *Controller) policyDue(ws logicalcluster.Name, from, now time.Time) (*resultsconfig.RetentionPolicy, bool, error) {
	tenant, err := c.retentionSource.Retention(ws)
	if err != nil {
		return nil, false, err
	}
	policy, err := retention(c.retention, tenant)
	if err == nil {
		var fire bool
		if fire, err = due(policy.RunAt, from, now); err == nil {
			return policy, fire, nil
		}
	}
	if tenant != nil {
		err = &invalidConfigError{configMap: tenant, err: err}
	}
	return nil, false, err
}

// invalidConfigError is a tenant's retention ConfigMap that does not
// parse.
type invalidConfigError struct {
	configMap *corev1.ConfigMap
	err       error
}

func (e *invalidConfigError) Error() string {
	return fmt.Sprintf("ConfigMap %s/%s: %v", e.configMap.Namespace, e.configMap.Name, e.err)
}

// tellTenant puts a Warning Event on the tenant's retention ConfigMap that
// does not parse (once per problem): nothing of the workspace is pruned
// until it is fixed, and the tenant is the one to fix it.
func (c *Controller) tellTenant(ctx context.Context, state *pruneState, ws logicalcluster.Name, err error) {
	var invalid *invalidConfigError
	if !errors.As(err, &invalid) || c.events == nil {
		return
	}
	cm := invalid.configMap.DeepCopy()
	if state.reported[cm.UID] == err.Error() {
		return
	}
	state.reported[cm.UID] = err.Error()
	cm.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("ConfigMap"))
	c.warn(ctx, ws, cm, ReasonInvalidRetentionPolicy, "runs of this workspace are not pruned until the retention policy is fixed: "+invalid.err.Error())
}

// Reasons of the Warning Events pruning puts on tenant objects.
const (
	ReasonInvalidRetentionPolicy = "InvalidRetentionPolicy"
	ReasonNotArchived            = "NotArchived"
)

// pruneWorkspace deletes the runs of one workspace that are due: each
// PipelineRun whose TaskRuns are stored too, with them, and each
// standalone TaskRun. Each is checked in Results first.
func (c *Controller) pruneWorkspace(ctx context.Context, log *zap.SugaredLogger, ws logicalcluster.Name, policy *resultsconfig.RetentionPolicy, runs []storedRun, now time.Time) {
	children := map[types.UID][]*unstructured.Unstructured{}
	for _, r := range runs {
		if owner := pipelineRunOwner(r.Unstructured); r.kind == "TaskRun" && owner != "" {
			children[owner] = append(children[owner], r.Unstructured)
		}
	}
	for _, r := range runs {
		kindName, u := r.kind, r.Unstructured
		if kindName == "TaskRun" && pipelineRunOwner(u) != "" {
			continue // goes with its PipelineRun
		}
		keep, err := retentionOf(policy, u)
		if err != nil {
			log.Infow("retention policy invalid; not pruning", "error", err)
			return
		}
		done := completedAt(u)
		if done.IsZero() || now.Before(done.Add(keep)) {
			continue
		}
		if kindName == "PipelineRun" && !c.childrenStored(ws, u) {
			continue
		}
		group := append([]storedRun{r}, asTaskRuns(children[u.GetUID()])...)
		if !c.allArchived(ctx, log, ws, group) {
			continue
		}
		for _, child := range children[u.GetUID()] {
			c.deleteRun(ctx, log, ws, "TaskRun", child)
		}
		c.deleteRun(ctx, log, ws, kindName, u)
	}
}

func asTaskRuns(us []*unstructured.Unstructured) []storedRun {
	out := make([]storedRun, 0, len(us))
	for _, u := range us {
		out = append(out, storedRun{kind: "TaskRun", Unstructured: u})
	}
	return out
}

// allArchived checks each run of a group in Results. A run whose archive
// is not what its annotations claim loses its stored mark, so that the
// recorder records it again, and its tenant gets a Warning Event; a
// Results API that does not answer just puts the pruning off.
func (c *Controller) allArchived(ctx context.Context, log *zap.SugaredLogger, ws logicalcluster.Name, group []storedRun) bool {
	ok := true
	for _, r := range group {
		err := archived(ctx, c.records, ws, r.Unstructured)
		if err == nil {
			continue
		}
		ok = false
		log := log.With("kind", r.kind, "namespace", r.GetNamespace(), "name", r.GetName())
		if !errors.Is(err, errNotArchived) {
			log.Infow("cannot check the archive; not pruning now", "error", err)
			continue
		}
		log.Infow("marked stored but not archived; recording it again", "error", err)
		annotations := r.GetAnnotations()
		delete(annotations, AnnotationStored)
		if _, uerr := c.objects[r.kind].UpdateMeta(ctx, ws, r.Unstructured.DeepCopy(), r.GetLabels(), annotations); uerr != nil {
			log.Infow("cannot unmark the run", "error", uerr)
			continue
		}
		c.warn(ctx, ws, r.Unstructured, ReasonNotArchived, "not pruned: "+err.Error()+"; it is recorded again")
	}
	return ok
}

// warn puts a Warning Event on a tenant object.
func (c *Controller) warn(_ context.Context, ws logicalcluster.Name, obj runtime.Object, reason, message string) {
	if c.events != nil {
		c.events.Warn(ws, ControllerName, obj, reason, message)
	}
}

// childrenStored says every TaskRun the PipelineRun names is stored, or
// gone.
func (c *Controller) childrenStored(ws logicalcluster.Name, pr *unstructured.Unstructured) bool {
	refs, _, _ := unstructured.NestedSlice(pr.Object, "status", "childReferences")
	for _, ref := range refs {
		m, _ := ref.(map[string]any)
		if m["kind"] != "TaskRun" {
			continue
		}
		name, _ := m["name"].(string)
		obj, err := c.kinds["TaskRun"].informer.Lister().ByCluster(ws).ByNamespace(pr.GetNamespace()).Get(name)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return false
		}
		if u, ok := obj.(*unstructured.Unstructured); !ok || u.GetAnnotations()[AnnotationStored] != "true" {
			return false
		}
	}
	return true
}

func (c *Controller) deleteRun(ctx context.Context, log *zap.SugaredLogger, ws logicalcluster.Name, kindName string, u *unstructured.Unstructured) {
	uid := u.GetUID()
	err := c.objects[kindName].Client.Cluster(ws.Path()).Resource(c.objects[kindName].Resource).Namespace(u.GetNamespace()).
		Delete(ctx, u.GetName(), metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
	if err != nil && !apierrors.IsNotFound(err) {
		log.Infow("prune: delete failed", "kind", kindName, "namespace", u.GetNamespace(), "name", u.GetName(), "error", err)
		return
	}
	log.Infow("pruned (archived in Results)", "kind", kindName, "namespace", u.GetNamespace(), "name", u.GetName())
}

// pipelineRunOwner is the UID of the PipelineRun that owns u, if any.
func pipelineRunOwner(u *unstructured.Unstructured) types.UID {
	for _, ref := range u.GetOwnerReferences() {
		if ref.Kind == "PipelineRun" {
			return ref.UID
		}
	}
	return ""
}
