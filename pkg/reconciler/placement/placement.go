// Package placement decides which workload cluster a tenant run (with its
// PVCs) goes to, on top of the fleet: a run using a tenant PVC goes where
// that PVC is; a PVC made for a run goes where its run is.
package placement

import (
	"errors"
	"fmt"

	kcpcache "github.com/kcp-dev/apimachinery/v2/pkg/cache"
	"github.com/kcp-dev/logicalcluster/v3"
	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pipelines-service/pipelines-service/pkg/fleet"
)

// Reasons of run conditions about placement.
const (
	// ReasonWaitingForWorkloadCluster: no ready cluster fits the run; it
	// waits (Succeeded Unknown).
	ReasonWaitingForWorkloadCluster = "WaitingForWorkloadCluster"
	// ReasonInvalidPlacement: the run's placement cannot be satisfied as
	// written (a selector that does not parse, PVCs on two clusters).
	ReasonInvalidPlacement = "InvalidPlacement"
	// ReasonWorkloadClusterLost: the cluster running the run stopped
	// answering; what ran there is lost.
	ReasonWorkloadClusterLost = "WorkloadClusterLost"
)

// ErrInvalid wraps placement errors the run's author must fix.
var ErrInvalid = errors.New("invalid placement")

// Chooser is what placing uses of the fleet (*fleet.Fleet).
type Chooser interface {
	Place(req fleet.Request) (string, error)
	Allows(req fleet.Request, name string) error
}

// Placer places runs.
type Placer struct {
	Fleet Chooser
	// Claims lists tenant PVCs (cluster-aware).
	Claims kcpcache.GenericClusterLister
}

// Of is the cluster an object is placed on, "" if none yet.
func Of(obj metav1.Object) string { return obj.GetAnnotations()[fleet.AnnotationCluster] }

// Set records the placement on an object.
func Set(obj metav1.Object, cluster string) {
	annotations := obj.GetAnnotations()
	if annotations == nil {
		annotations = map[string]string{}
	}
	annotations[fleet.AnnotationCluster] = cluster
	obj.SetAnnotations(annotations)
}

// Place chooses a cluster for a run of a tenant workspace with these
// annotations and workspace bindings. Errors wrap fleet.ErrNoCluster (the
// run waits) or ErrInvalid (the run fails).
func (p Placer) Place(cluster logicalcluster.Name, namespace string, run metav1.Object, bindings []v1.WorkspaceBinding) (string, error) {
	required, err := p.claimsCluster(cluster, namespace, bindings)
	if err != nil {
		return "", err
	}
	name, err := p.Fleet.Place(fleet.Request{
		Workspace: cluster.String(), Selector: run.GetAnnotations()[fleet.AnnotationClusterSelector], Required: required,
	})
	var invalid fleet.InvalidSelectorError
	if errors.As(err, &invalid) {
		return "", fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return name, err
}

// Allows says whether the fleet would place the run on member name (its
// policy, the run's selector and volumes; readiness aside): see
// fleet.Fleet.Allows. The error wraps fleet.ErrNoCluster when it would not.
func (p Placer) Allows(cluster logicalcluster.Name, namespace string, run metav1.Object, bindings []v1.WorkspaceBinding, name string) error {
	required, err := p.claimsCluster(cluster, namespace, bindings)
	if err != nil {
		return err
	}
	err = p.Fleet.Allows(fleet.Request{
		Workspace: cluster.String(), Selector: run.GetAnnotations()[fleet.AnnotationClusterSelector], Required: required,
	}, name)
	var invalid fleet.InvalidSelectorError
	if errors.As(err, &invalid) {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return err
}

// claimsCluster is the cluster holding the tenant PVCs the bindings use,
// "" if they use none.
func (p Placer) claimsCluster(cluster logicalcluster.Name, namespace string, bindings []v1.WorkspaceBinding) (string, error) {
	required, from := "", ""
	for _, b := range bindings {
		if b.PersistentVolumeClaim == nil {
			continue
		}
		claim := b.PersistentVolumeClaim.ClaimName
		obj, err := p.Claims.ByCluster(cluster).ByNamespace(namespace).Get(claim)
		if apierrors.IsNotFound(err) {
			continue // the pod waits for it, as on Kubernetes
		}
		if err != nil {
			return "", err
		}
		placed := Of(obj.(metav1.Object))
		if placed == "" {
			return "", fmt.Errorf("%w (PersistentVolumeClaim %s is not placed yet)", fleet.ErrNoCluster, claim)
		}
		if required != "" && placed != required {
			return "", fmt.Errorf("%w: PersistentVolumeClaims %s and %s are on different workload clusters (%s, %s)", ErrInvalid, from, claim, required, placed)
		}
		required, from = placed, claim
	}
	return required, nil
}
