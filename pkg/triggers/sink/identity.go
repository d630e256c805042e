package sink

import (
	"context"
	"fmt"
	"time"

	"github.com/kcp-dev/logicalcluster/v3"
	"go.uber.org/zap"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/cache"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/pipelines-service/pipelines-service/pkg/kcp"
	"github.com/pipelines-service/pipelines-service/pkg/triggers"
)

// identities make clients that act in a workspace as one of its
// ServiceAccounts, with the token kcp issued into the Secret the
// controller minted (triggers.TokenSecretName). The sink's own identity
// only reads; what a listener creates, its ServiceAccount creates.
type identities struct {
	// kcp is kcp's base URL and CA, without credentials.
	kcp     *rest.Config
	secrets *kcp.WorkspaceClients
	// clients caches clients by workspace, identity and token; a token
	// that changes makes a new entry.
	clients *cache.LRUExpireCache
}

type identityClients struct {
	dynamic   dynamic.Interface
	discovery discovery.ServerResourcesInterface
}

func newIdentities(kcpBase *rest.Config, secrets *kcp.WorkspaceClients) *identities {
	return &identities{kcp: rest.AnonymousClientConfig(kcpBase), secrets: secrets, clients: cache.NewLRUExpireCache(4096)}
}

// clientsFor are the clients of id in cluster. A token not there yet is
// waited for up to patience: the controller mints it within seconds of a
// listener or trigger naming the ServiceAccount, and an event that comes
// in meanwhile (a tenant applies a listener and a trigger, and the forge
// posts at once) should not be lost for it.
func (i *identities) clientsFor(ctx context.Context, cluster logicalcluster.Name, id triggers.Identity, patience time.Duration) (*identityClients, error) {
	kube, err := i.secrets.Kube(cluster)
	if err != nil {
		return nil, err
	}
	var token string
	var last error
	_ = wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, patience, true, func(ctx context.Context) (bool, error) {
		secret, err := kube.CoreV1().Secrets(id.Namespace).Get(ctx, triggers.TokenSecretName(id.ServiceAccount), metav1.GetOptions{})
		if err == nil {
			token, err = triggers.TokenOf(secret, id.ServiceAccount)
		}
		last = err
		return err == nil, nil
	})
	if last != nil {
		return nil, fmt.Errorf("token of ServiceAccount %s/%s: %w", id.Namespace, id.ServiceAccount, last)
	}
	key := fmt.Sprintf("%s/%s/%s/%s", cluster, id.Namespace, id.ServiceAccount, token)
	if c, ok := i.clients.Get(key); ok {
		return c.(*identityClients), nil
	}
	cfg := kcp.ForCluster(i.kcp, cluster)
	cfg.BearerToken = token
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	disc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, err
	}
	c := &identityClients{dynamic: v1beta1Dynamic{dyn}, discovery: v1beta1Discovery{disc}}
	i.clients.Add(key, c, 10*time.Minute)
	return c, nil
}

// How long an event waits for an identity's token: the listener's own
// before the sink answers (the forge waits on the answer), a trigger's
// while the event is processed in the background.
const (
	listenerIdentityPatience = 5 * time.Second
	triggerIdentityPatience  = 20 * time.Second
)

// authOverride is upstream's extension point for a trigger's
// serviceAccountName: instead of impersonating it with the sink's own
// credentials (upstream's DefaultAuthOverride), the sink acts with that
// ServiceAccount's own workspace-scoped token.
type authOverride struct {
	ctx        context.Context
	cluster    logicalcluster.Name
	identities *identities
}

func (a authOverride) OverrideAuthentication(sa, namespace string, log *zap.SugaredLogger, _ discovery.ServerResourcesInterface, _ dynamic.Interface) (discovery.ServerResourcesInterface, dynamic.Interface, error) {
	c, err := a.identities.clientsFor(a.ctx, a.cluster, triggers.Identity{Namespace: namespace, ServiceAccount: sa}, triggerIdentityPatience)
	if err != nil {
		log.Errorw("trigger's ServiceAccount has no usable token", "error", err)
		return nil, nil, err
	}
	return c.discovery, c.dynamic, nil
}
