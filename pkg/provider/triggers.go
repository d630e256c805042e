package provider

import (
	"context"

	apisv1alpha1 "github.com/kcp-dev/kcp/sdk/apis/apis/v1alpha1"
	"github.com/kcp-dev/logicalcluster/v3"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TriggersSinkUser is the shared triggers sink's identity in kcp. It only
// reads tenant workspaces (Triggers objects, webhook and token secrets)
// through the export's virtual workspace: the virtual workspace asks for
// the request's own verb on apiexports/content. What a listener creates,
// the listener's ServiceAccount creates.
const TriggersSinkUser = "pipelines-service-triggers-sink"

func ensureTriggersSinkRBAC(ctx context.Context, c Clients, provider logicalcluster.Path) error {
	read := []string{"get", "list", "watch"}
	role := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: TriggersSinkUser},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{apisv1alpha1.SchemeGroupVersion.Group}, Resources: []string{"apiexports/content"}, ResourceNames: []string{ExportName}, Verbs: read},
			{APIGroups: []string{apisv1alpha1.SchemeGroupVersion.Group}, Resources: []string{"apiexports", "apiexportendpointslices"}, Verbs: read},
			{NonResourceURLs: []string{"/"}, Verbs: []string{"access"}},
		},
	}
	return ensureRBAC(ctx, c, provider, role, bindingTo(TriggersSinkUser, TriggersSinkUser))
}

// triggersTenantRoles are upstream's ClusterRoles for listener
// ServiceAccounts (Triggers' config/200-clusterrole.yaml), made in every
// tenant workspace so that the RBAC of Triggers' examples and of tenants'
// existing manifests binds to something. Here a listener's
// ServiceAccount needs only what its templates create; the reads are
// harmless, and any binding stays inside the tenant's own workspace.
func triggersTenantRoles() []*rbacv1.ClusterRole {
	read := []string{"get", "list", "watch"}
	labels := map[string]string{"app.kubernetes.io/part-of": "tekton-triggers"}
	return []*rbacv1.ClusterRole{
		{
			ObjectMeta: metav1.ObjectMeta{Name: "tekton-triggers-eventlistener-roles", Labels: labels},
			Rules: []rbacv1.PolicyRule{
				{APIGroups: []string{"triggers.tekton.dev"}, Resources: []string{"eventlisteners", "triggerbindings", "interceptors", "triggertemplates", "triggers"}, Verbs: read},
				{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: read},
				{APIGroups: []string{"tekton.dev"}, Resources: []string{"pipelineruns", "pipelineresources", "taskruns"}, Verbs: []string{"create"}},
				{APIGroups: []string{""}, Resources: []string{"serviceaccounts"}, Verbs: []string{"impersonate"}},
				{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
			},
		},
		{
			ObjectMeta: metav1.ObjectMeta{Name: "tekton-triggers-eventlistener-clusterroles", Labels: labels},
			Rules: []rbacv1.PolicyRule{
				{APIGroups: []string{"triggers.tekton.dev"}, Resources: []string{"clustertriggerbindings", "clusterinterceptors"}, Verbs: read},
				{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: read},
			},
		},
	}
}

// ensureTriggersTenantRoles makes upstream's listener ClusterRoles in a
// tenant workspace.
func ensureTriggersTenantRoles(ctx context.Context, c Clients, tenant logicalcluster.Path) error {
	for _, role := range triggersTenantRoles() {
		if err := ensureClusterRole(ctx, c, tenant, role); err != nil {
			return err
		}
	}
	return nil
}
