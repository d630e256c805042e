package persistentvolumeclaim

import (
	"errors"
	"fmt"
	"time"

	"github.com/kcp-dev/logicalcluster/v3"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pipelines-service/pipelines-service/pkg/fleet"
	"github.com/pipelines-service/pipelines-service/pkg/reconciler/placement"
	"github.com/pipelines-service/pipelines-service/pkg/workload"
)

// waitRequeue is how often a claim waiting for a cluster looks again.
const waitRequeue = 5 * time.Second

// placedMember returns the member the claim lives on. A claim made for a
// run goes (and moves) with its run; another is placed once, where the
// fleet has room, and stays (its data is there). With a nil member the
// claim waits; a placement to record first comes back as a nil member
// and no wait: the skeleton writes it, and the update brings the claim
// back, so that no workload claim is made where the tenant PVC does not
// say it is.
func (c *Controller) placedMember(log *zap.SugaredLogger, cluster logicalcluster.Name, tenant *corev1.PersistentVolumeClaim) (*fleet.Member, time.Duration, error) {
	want, err := c.wantedCluster(cluster, tenant)
	if errors.Is(err, fleet.ErrNoCluster) {
		log.Debugw("claim waits for a workload cluster", "why", err)
		return nil, waitRequeue, nil
	}
	if err != nil {
		return nil, 0, err
	}
	if placement.Of(tenant) != want {
		placement.Set(tenant, want)
		return nil, 0, nil
	}
	m := c.fleet.Member(want)
	if m == nil || !m.Reachable() || !m.Synced() {
		return nil, waitRequeue, nil
	}
	return m, 0, nil
}

// wantedCluster is where the claim belongs.
func (c *Controller) wantedCluster(cluster logicalcluster.Name, tenant *corev1.PersistentVolumeClaim) (string, error) {
	for _, ref := range tenant.OwnerReferences {
		owners, ok := c.owners[ref.Kind]
		if !ok {
			continue
		}
		obj, err := owners.Lister().ByCluster(cluster).ByNamespace(tenant.Namespace).Get(ref.Name)
		if err != nil {
			return "", fmt.Errorf("%w (owner %s %s not seen yet)", fleet.ErrNoCluster, ref.Kind, ref.Name)
		}
		if name := placement.Of(obj.(metav1.Object)); name != "" {
			// Until the owner's reconciler has held its record to the
			// fleet's rules (and moved it if need be), the claim waits.
			return name, c.mayLiveOn(cluster, tenant, name)
		}
		return "", fmt.Errorf("%w (owner %s %s is not placed yet)", fleet.ErrNoCluster, ref.Kind, ref.Name)
	}
	if name := placement.Of(tenant); name != "" {
		err := c.mayLiveOn(cluster, tenant, name)
		if err == nil || !errors.Is(err, fleet.ErrNoCluster) {
			return name, err
		}
		// Not the controller's record: the claim is placed anew.
	}
	return c.placer.Place(cluster, tenant.Namespace, tenant, nil)
}

// mayLiveOn says whether the claim may be on member name: it is there
// already (its data is), or the fleet would place it there. Placements are
// annotations the tenant can write too, on the claim or on the run that
// owns it; taken at their word they would put a tenant's volumes on a
// workload cluster its TenantPolicy does not open to it. The error wraps
// fleet.ErrNoCluster when it may not.
func (c *Controller) mayLiveOn(cluster logicalcluster.Name, tenant *corev1.PersistentVolumeClaim, name string) error {
	if m := c.fleet.Member(name); m != nil {
		if _, err := m.Claims.PersistentVolumeClaims(workload.Namespace(cluster, tenant.Namespace)).Get(tenant.Name); err == nil {
			return nil
		}
	}
	err := c.placer.Allows(cluster, tenant.Namespace, tenant, nil, name)
	if errors.Is(err, placement.ErrInvalid) {
		return fmt.Errorf("%w (%v)", fleet.ErrNoCluster, err)
	}
	return err
}
