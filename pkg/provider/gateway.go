package provider

import (
	"context"

	corev1alpha1 "github.com/kcp-dev/kcp/sdk/apis/core/v1alpha1"
	"github.com/kcp-dev/logicalcluster/v3"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fleetv1alpha1 "github.com/pipelines-service/pipelines-service/apis/fleet/v1alpha1"
)

// GatewayUser is the gateway's own identity in kcp. It never acts for a
// tenant (tenants' requests reach kcp under their own identity); it reads
// the fleet's kubeconfigs and, in each tenant workspace, reviews tokens and
// access and resolves the workspace's logical cluster.
const GatewayUser = "pipelines-service-gateway"

// gatewayTenantRole is what the gateway may do in a tenant workspace.
const gatewayTenantRole = "pipelines-service:gateway"

func ensureGatewayRBAC(ctx context.Context, c Clients, provider logicalcluster.Path) error {
	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: GatewayUser},
		Rules: []rbacv1.PolicyRule{
			{NonResourceURLs: []string{"/"}, Verbs: []string{"access"}},
			{APIGroups: []string{fleetv1alpha1.Group}, Resources: []string{"workloadclusters"}, Verbs: []string{"get", "list", "watch"}},
			{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get", "list", "watch"}},
		},
	}
	return ensureRBAC(ctx, c, provider, role, bindingTo(GatewayUser, GatewayUser))
}

// grantGateway lets the gateway review tokens and access in a tenant
// workspace, and read which logical cluster it is.
func grantGateway(ctx context.Context, c Clients, tenant logicalcluster.Path) error {
	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: gatewayTenantRole},
		Rules: []rbacv1.PolicyRule{
			{NonResourceURLs: []string{"/"}, Verbs: []string{"access"}},
			{APIGroups: []string{"authentication.k8s.io"}, Resources: []string{"tokenreviews"}, Verbs: []string{"create"}},
			{APIGroups: []string{"authorization.k8s.io"}, Resources: []string{"subjectaccessreviews"}, Verbs: []string{"create"}},
			{APIGroups: []string{corev1alpha1.SchemeGroupVersion.Group}, Resources: []string{"logicalclusters"}, ResourceNames: []string{corev1alpha1.LogicalClusterName}, Verbs: []string{"get"}},
		},
	}
	return ensureRBAC(ctx, c, tenant, role, bindingTo(gatewayTenantRole, GatewayUser))
}

func bindingTo(role, user string) *rbacv1.ClusterRoleBinding {
	return &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: "User", Name: user}},
	}
}
