package repository

import (
	"context"
	"fmt"
	"strings"
	"time"

	kcpcache "github.com/kcp-dev/apimachinery/v2/pkg/cache"
	"github.com/kcp-dev/logicalcluster/v3"
	"github.com/openshift-pipelines/pipelines-as-code/pkg/apis/pipelinesascode/v1alpha1"
	"github.com/openshift-pipelines/pipelines-as-code/pkg/pipelineascode"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/pipelines-service/pipelines-service/pkg/pac"
	"github.com/pipelines-service/pipelines-service/pkg/reconciler"
)

// ConditionAccepted says whether events for the Repository's URL run its
// pipelines.
const ConditionAccepted = "Accepted"

// Reasons of the Accepted condition.
const (
	ReasonAccepted              = "Accepted"
	ReasonInvalidURL            = "InvalidURL"
	ReasonURLClaimed            = "URLClaimed"
	ReasonGitProviderIncomplete = "GitProviderIncomplete"
	ReasonGitProviderNotServed  = "GitProviderNotServed"
	ReasonForgeNotAllowed       = "ForgeNotAllowed"
	ReasonSecretNotFound        = "SecretNotFound"
	ReasonInvalidRepository     = "InvalidRepository"
)

// Status is what the service writes of a Repository.
type Status struct {
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// secretReader reads a key of a secret in a tenant's namespace.
type secretReader interface {
	Secret(ctx context.Context, cluster logicalcluster.Name, namespace, name, key string) ([]byte, error)
}

type workspaceSecrets struct{ workspaces Workspaces }

func (w workspaceSecrets) Secret(ctx context.Context, cluster logicalcluster.Name, namespace, name, key string) ([]byte, error) {
	kube, err := w.workspaces.Kube(cluster)
	if err != nil {
		return nil, err
	}
	s, err := kube.CoreV1().Secrets(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	v, ok := s.Data[key]
	if !ok {
		return nil, apierrors.NewNotFound(s.GroupVersionKind().GroupVersion().WithResource("secrets").GroupResource(), name+" key "+key)
	}
	return v, nil
}

// reconcileKey decides whether the Repository of key is accepted, keeps
// its webhook secret for the intake when it is, and writes the condition.
func (c *Controller) reconcileKey(ctx context.Context, key string) (time.Duration, error) {
	repo := &v1alpha1.Repository{}
	obj, err := reconciler.Get(c.repositories.Lister(), key, repo)
	if obj == nil {
		c.index.SetWebhookSecret(key, nil)
		return 0, nil
	}
	var cond metav1.Condition
	if err != nil {
		cond = refused(ReasonInvalidRepository, "the Repository cannot be read: %v", err)
	} else {
		holder, _ := c.index.Holder(repo.Spec.URL)
		cond = judge(repo, key, holder, c.egress)
	}
	var secret []byte
	if cond.Status == metav1.ConditionTrue {
		secret, cond, err = c.readSecrets(ctx, obj.Cluster, repo)
		if err != nil {
			return 0, err
		}
	}
	c.index.SetWebhookSecret(key, secret)
	st := statusOf(obj.Unstructured)
	before := st.Conditions
	st.Conditions = append([]metav1.Condition(nil), before...)
	cond.ObservedGeneration = obj.Unstructured.GetGeneration()
	meta.SetStatusCondition(&st.Conditions, cond)
	requeue := time.Duration(0)
	if cond.Status == metav1.ConditionTrue {
		requeue = refresh
	}
	if equality.Semantic.DeepEqual(before, st.Conditions) {
		return requeue, nil
	}
	c.log.Infow("Repository", "workspace", obj.Cluster.String(), "namespace", obj.Namespace, "name", obj.Name,
		"accepted", cond.Status, "reason", cond.Reason)
	return requeue, c.objects.UpdateStatus(ctx, obj.Cluster, obj.Unstructured, st)
}

// readSecrets reads the webhook secret (returned, for the intake) and
// checks that the forge token exists, both in the Repository's namespace.
func (c *Controller) readSecrets(ctx context.Context, cluster logicalcluster.Name, repo *v1alpha1.Repository) ([]byte, metav1.Condition, error) {
	gp := repo.Spec.GitProvider
	tokenKey := orDefault(gp.Secret.Key, pipelineascode.DefaultGitProviderSecretKey)
	if _, err := c.secrets.Secret(ctx, cluster, repo.Namespace, gp.Secret.Name, tokenKey); err != nil {
		cond, err := secretCondition("git_provider.secret", gp.Secret.Name, tokenKey, err)
		return nil, cond, err
	}
	hookKey := orDefault(gp.WebhookSecret.Key, pipelineascode.DefaultGitProviderWebhookSecretKey)
	secret, err := c.secrets.Secret(ctx, cluster, repo.Namespace, gp.WebhookSecret.Name, hookKey)
	if err != nil {
		cond, err := secretCondition("git_provider.webhook_secret", gp.WebhookSecret.Name, hookKey, err)
		return nil, cond, err
	}
	if len(secret) == 0 {
		return nil, refused(ReasonSecretNotFound, "git_provider.webhook_secret: key %q of secret %q is empty", hookKey, gp.WebhookSecret.Name), nil
	}
	return secret, metav1.Condition{Type: ConditionAccepted, Status: metav1.ConditionTrue, Reason: ReasonAccepted,
		Message: fmt.Sprintf("events for %s signed with the webhook secret run the pipelines of its .tekton/ folder", repo.Spec.URL)}, nil
}

// secretCondition is the condition for a secret that cannot be read; an
// error other than not found is retried.
func secretCondition(field, name, key string, err error) (metav1.Condition, error) {
	if apierrors.IsNotFound(err) || apierrors.IsForbidden(err) {
		return refused(ReasonSecretNotFound, "%s: secret %q with key %q not found in the Repository's namespace", field, name, key), nil
	}
	return metav1.Condition{}, fmt.Errorf("read %s: %w", field, err)
}

// judge checks what needs no secret: the URL is valid and this
// Repository's alone, the forge is Gitea and allowed, the secrets are
// named.
func judge(repo *v1alpha1.Repository, key string, holder pac.Claim, egress interface{ CheckURL(string, string) error }) metav1.Condition {
	normal := pac.NormalizeURL(repo.Spec.URL)
	if normal == "" {
		return refused(ReasonInvalidURL, "spec.url %q is not an http(s) URL of a repository", repo.Spec.URL)
	}
	if strings.TrimSuffix(repo.Spec.URL, "/") != normal {
		// Pipelines as Code matches an event's URL to spec.url exactly.
		return refused(ReasonInvalidURL, "spec.url %q: write it as the forge shows the repository, %q (no .git, credentials or query, host in lower case)", repo.Spec.URL, normal)
	}
	if holder.Key != key {
		if holder.Workspace == logicalcluster.From(repo).String() && holder.Workspace != "" {
			_, ns, name, _ := kcpcache.SplitMetaClusterNamespaceKey(holder.Key)
			return refused(ReasonURLClaimed, "%s is already claimed by Repository %s/%s of this workspace: events for it run there", repo.Spec.URL, ns, name)
		}
		return refused(ReasonURLClaimed, "%s is already claimed by a Repository of another workspace: a repository URL belongs to one Repository of the whole service", repo.Spec.URL)
	}
	gp := repo.Spec.GitProvider
	var missing []string
	switch {
	case gp == nil:
		missing = []string{"git_provider"}
	default:
		if gp.URL == "" {
			missing = append(missing, "git_provider.url")
		}
		if gp.Secret == nil || gp.Secret.Name == "" {
			missing = append(missing, "git_provider.secret")
		}
		if gp.WebhookSecret == nil || gp.WebhookSecret.Name == "" {
			missing = append(missing, "git_provider.webhook_secret")
		}
	}
	if len(missing) > 0 {
		return refused(ReasonGitProviderIncomplete, "missing %s: the forge's API URL, a token and the webhook secret (events without a valid signature are refused) are required", strings.Join(missing, ", "))
	}
	if gp.Type != "" && gp.Type != pac.GitProvider {
		return refused(ReasonGitProviderNotServed, "git_provider.type %q is not served: this service serves %s", gp.Type, pac.GitProvider)
	}
	if err := egress.CheckURL("pipelines-as-code", gp.URL); err != nil {
		return refused(ReasonForgeNotAllowed, "git_provider.url: %v", err)
	}
	return metav1.Condition{Type: ConditionAccepted, Status: metav1.ConditionTrue, Reason: ReasonAccepted}
}

// statusOf is the service's status of a Repository as last written.
func statusOf(u *unstructured.Unstructured) *Status {
	st := &Status{}
	if raw, ok, _ := unstructured.NestedMap(u.Object, "status"); ok {
		_ = runtime.DefaultUnstructuredConverter.FromUnstructured(raw, st)
	}
	return st
}

func refused(reason, format string, args ...any) metav1.Condition {
	return metav1.Condition{Type: ConditionAccepted, Status: metav1.ConditionFalse, Reason: reason, Message: fmt.Sprintf(format, args...)}
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
