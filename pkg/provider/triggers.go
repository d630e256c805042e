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
