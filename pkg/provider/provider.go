// Package provider sets up the provider workspace that exports the
// tekton.dev APIs (APIResourceSchemas + APIExport with permission claims)
// and binds tenant workspaces to it.
package provider

import (
	"context"
	"fmt"
	"time"

	apisv1alpha1 "github.com/kcp-dev/kcp/sdk/apis/apis/v1alpha1"
	apisv1alpha2 "github.com/kcp-dev/kcp/sdk/apis/apis/v1alpha2"
	kcpclientset "github.com/kcp-dev/kcp/sdk/client/clientset/versioned/cluster"
	"github.com/kcp-dev/logicalcluster/v3"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	kcpdynamic "github.com/kcp-dev/client-go/dynamic"
	kcpkubernetes "github.com/kcp-dev/client-go/kubernetes"

	"github.com/pipelines-service/pipelines-service/apis"
	fleetv1alpha1 "github.com/pipelines-service/pipelines-service/apis/fleet/v1alpha1"
)

// ExportName is the APIExport (and its endpoint slice) tenants bind.
const ExportName = "tekton.dev"

// ControllerUser is the identity of the controller in kcp.
const ControllerUser = "pipelines-service-controller"

// claimVerbs are the verbs of every claim, identical on export and binding
// (kcp grants their intersection).
var claimVerbs = []string{"*"}

// PermissionClaims are the core resources runs need from a tenant
// workspace: secrets and configmaps (workspaces, credentials, carried to
// the workload namespace), serviceaccounts (a run's identity and its
// secrets) and events (the run events Tekton emits).
func PermissionClaims() []apisv1alpha2.PermissionClaim {
	var out []apisv1alpha2.PermissionClaim
	for _, r := range []string{"secrets", "configmaps", "serviceaccounts", "events"} {
		out = append(out, apisv1alpha2.PermissionClaim{GroupResource: apisv1alpha2.GroupResource{Group: "", Resource: r}, Verbs: claimVerbs})
	}
	return out
}

// Clients are the kcp clients bootstrap needs.
type Clients struct {
	KCP     kcpclientset.ClusterInterface
	Kube    kcpkubernetes.ClusterInterface
	Dynamic kcpdynamic.ClusterInterface
}

// EnsureProvider creates the schemas, the APIExport and the controller's
// RBAC in the provider workspace. It is idempotent.
func EnsureProvider(ctx context.Context, c Clients, provider logicalcluster.Path) error {
	schemas, err := apis.Schemas()
	if err != nil {
		return err
	}
	// Schemas are immutable and named by content: one list says which
	// exist, and only the others are written (a write to kcp costs far
	// more than a read, and a no-op bring-up should write nothing).
	existing, err := c.KCP.Cluster(provider).ApisV1alpha1().APIResourceSchemas().List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list APIResourceSchemas: %w", err)
	}
	have := map[string]bool{}
	for _, s := range existing.Items {
		have[s.Name] = true
	}
	var resources []apisv1alpha2.ResourceSchema
	for _, s := range schemas {
		if !have[s.Name] {
			if _, err := c.KCP.Cluster(provider).ApisV1alpha1().APIResourceSchemas().Create(ctx, s, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
				return fmt.Errorf("create APIResourceSchema %s: %w", s.Name, err)
			}
		}
		resources = append(resources, apisv1alpha2.ResourceSchema{
			Name: s.Spec.Names.Plural, Group: s.Spec.Group, Schema: s.Name,
			Storage: apisv1alpha2.ResourceSchemaStorage{CRD: &apisv1alpha2.ResourceSchemaStorageCRD{}},
		})
	}
	if err := ensureExport(ctx, c, provider, resources); err != nil {
		return err
	}
	if err := ensureFleetAPI(ctx, c, provider); err != nil {
		return err
	}
	if err := ensureControllerRBAC(ctx, c, provider); err != nil {
		return err
	}
	if err := ensureGatewayRBAC(ctx, c, provider); err != nil {
		return err
	}
	return ensureTriggersSinkRBAC(ctx, c, provider)
}

func ensureExport(ctx context.Context, c Clients, provider logicalcluster.Path, resources []apisv1alpha2.ResourceSchema) error {
	exports := c.KCP.Cluster(provider).ApisV1alpha2().APIExports()
	want := apisv1alpha2.APIExportSpec{Resources: resources, PermissionClaims: PermissionClaims()}
	existing, err := exports.Get(ctx, ExportName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = exports.Create(ctx, &apisv1alpha2.APIExport{ObjectMeta: metav1.ObjectMeta{Name: ExportName}, Spec: want}, metav1.CreateOptions{})
		return wrap(err, "create APIExport %s", ExportName)
	}
	if err != nil {
		return err
	}
	if equality.Semantic.DeepEqual(existing.Spec.Resources, want.Resources) && equality.Semantic.DeepEqual(existing.Spec.PermissionClaims, want.PermissionClaims) {
		return nil
	}
	existing.Spec.Resources, existing.Spec.PermissionClaims = want.Resources, want.PermissionClaims
	_, err = exports.Update(ctx, existing, metav1.UpdateOptions{})
	return wrap(err, "update APIExport %s", ExportName)
}

func ensureControllerRBAC(ctx context.Context, c Clients, provider logicalcluster.Path) error {
	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: ControllerUser},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{apisv1alpha1.SchemeGroupVersion.Group}, Resources: []string{"apiexports/content"}, ResourceNames: []string{ExportName}, Verbs: []string{"*"}},
			{APIGroups: []string{apisv1alpha1.SchemeGroupVersion.Group}, Resources: []string{"apiexports", "apiexportendpointslices"}, Verbs: []string{"get", "list", "watch"}},
			{NonResourceURLs: []string{"/"}, Verbs: []string{"access"}},
			// The fleet: workload clusters (their status is the
			// controller's heartbeat), tenant policies, kubeconfigs.
			{APIGroups: []string{fleetv1alpha1.Group}, Resources: []string{"workloadclusters", "tenantpolicies"}, Verbs: []string{"get", "list", "watch"}},
			{APIGroups: []string{fleetv1alpha1.Group}, Resources: []string{"workloadclusters/status"}, Verbs: []string{"get", "update", "patch"}},
			{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get", "list", "watch"}},
			// The replicas' leader election, their parts' Leases (get,
			// create, update) and their member Leases (applied, watched,
			// deleted on the way out: pkg/partition).
			{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete"}},
		},
	}
	return ensureRBAC(ctx, c, provider, role, bindingTo(ControllerUser, ControllerUser))
}

func ensureRBAC(ctx context.Context, c Clients, path logicalcluster.Path, role *rbacv1.ClusterRole, binding *rbacv1.ClusterRoleBinding) error {
	rbac := c.Kube.Cluster(path).RbacV1()
	if role != nil {
		if err := ensureClusterRole(ctx, c, path, role); err != nil {
			return err
		}
	}
	if _, err := rbac.ClusterRoleBindings().Get(ctx, binding.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		return err
	}
	if _, err := rbac.ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create ClusterRoleBinding %s in %s: %w", binding.Name, path, err)
	}
	return nil
}

// BindTenant creates the APIBinding to the export in a tenant workspace,
// accepting the permission claims, waits until it is bound and its claims
// applied, and grants user admin rights in the workspace.
func BindTenant(ctx context.Context, c Clients, tenant, provider logicalcluster.Path, user string) error {
	var claims []apisv1alpha2.AcceptablePermissionClaim
	for _, pc := range PermissionClaims() {
		claims = append(claims, apisv1alpha2.AcceptablePermissionClaim{
			ScopedPermissionClaim: apisv1alpha2.ScopedPermissionClaim{PermissionClaim: pc, Selector: apisv1alpha2.PermissionClaimSelector{MatchAll: true}},
			State:                 apisv1alpha2.ClaimAccepted,
		})
	}
	binding := &apisv1alpha2.APIBinding{
		ObjectMeta: metav1.ObjectMeta{Name: ExportName},
		Spec: apisv1alpha2.APIBindingSpec{
			Reference:        apisv1alpha2.BindingReference{Export: &apisv1alpha2.ExportBindingReference{Path: provider.String(), Name: ExportName}},
			PermissionClaims: claims,
		},
	}
	bindings := c.KCP.Cluster(tenant).ApisV1alpha2().APIBindings()
	if _, err := bindings.Create(ctx, binding, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create APIBinding %s in %s: %w", ExportName, tenant, err)
	}
	if err := waitBound(ctx, c, tenant); err != nil {
		return err
	}
	if err := grantGateway(ctx, c, tenant); err != nil {
		return err
	}
	if err := ensureTriggersTenantRoles(ctx, c, tenant); err != nil {
		return err
	}
	if user == "" {
		return nil
	}
	return ensureRBAC(ctx, c, tenant, nil, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "tenant-admin"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: "User", Name: user}},
	})
}

// ensureClusterRole creates role or brings the existing one's rules up to
// date (a newer controller may need more).
func ensureClusterRole(ctx context.Context, c Clients, path logicalcluster.Path, role *rbacv1.ClusterRole) error {
	roles := c.Kube.Cluster(path).RbacV1().ClusterRoles()
	existing, err := roles.Get(ctx, role.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = roles.Create(ctx, role, metav1.CreateOptions{})
		return wrap(err, "create ClusterRole %s in %s", role.Name, path)
	}
	if err != nil || equality.Semantic.DeepEqual(existing.Rules, role.Rules) {
		return err
	}
	existing.Rules = role.Rules
	_, err = roles.Update(ctx, existing, metav1.UpdateOptions{})
	return wrap(err, "update ClusterRole %s in %s", role.Name, path)
}

func waitBound(ctx context.Context, c Clients, tenant logicalcluster.Path) error {
	var last *apisv1alpha2.APIBinding
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		b, err := c.KCP.Cluster(tenant).ApisV1alpha2().APIBindings().Get(ctx, ExportName, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		last = b
		return b.Status.Phase == apisv1alpha2.APIBindingPhaseBound && len(b.Status.AppliedPermissionClaims) == len(PermissionClaims()), nil
	})
	if err != nil && last != nil {
		return fmt.Errorf("APIBinding %s in %s not bound (phase %q, conditions %v): %w", ExportName, tenant, last.Status.Phase, last.Status.Conditions, err)
	}
	return err
}

func wrap(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf(format+": %w", append(args, err)...)
}
