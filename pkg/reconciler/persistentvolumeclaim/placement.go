package persistentvolumeclaim

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kcp-dev/logicalcluster/v3"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/pipelines-service/pipelines-service/pkg/fleet"
	"github.com/pipelines-service/pipelines-service/pkg/reconciler/placement"
)

// waitRequeue is how often a claim waiting for a cluster looks again.
const waitRequeue = 5 * time.Second

// placedMember returns the member the claim lives on, recording the
// placement on the tenant PVC first: a claim made for a run goes (and
// moves) with its run; another is placed once, where the fleet has room,
// and stays (its data is there). With a nil member the claim waits.
func (c *Controller) placedMember(ctx context.Context, log *zap.SugaredLogger, cluster logicalcluster.Name, u *unstructured.Unstructured, tenant *corev1.PersistentVolumeClaim) (*fleet.Member, time.Duration, error) {
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
		_, err := c.objects.UpdateMeta(ctx, cluster, u, tenant.Labels, tenant.Annotations)
		return nil, 0, err // the update brings the claim back
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
			return name, nil
		}
		return "", fmt.Errorf("%w (owner %s %s is not placed yet)", fleet.ErrNoCluster, ref.Kind, ref.Name)
	}
	if name := placement.Of(tenant); name != "" {
		return name, nil
	}
	return c.placer.Place(cluster, tenant.Namespace, tenant, nil)
}
