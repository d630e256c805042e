package gateway

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	kcpkubernetes "github.com/kcp-dev/client-go/kubernetes"
	kcpclientset "github.com/kcp-dev/kcp/sdk/client/clientset/versioned/cluster"
	"github.com/kcp-dev/logicalcluster/v3"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/cache"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	x509request "k8s.io/apiserver/pkg/authentication/request/x509"
	"k8s.io/apiserver/pkg/authentication/user"
)

// errUnauthenticated: the request carries no credential kcp would accept.
var errUnauthenticated = errors.New("no valid client certificate or bearer token")

// authn authenticates a client with the credentials kcp accepts: a client
// certificate of kcp's client CA (verified here, as kcp would), or a
// bearer token, which kcp itself reviews (TokenReview in the workspace the
// request is for: kcp's service account tokens are valid in their own
// workspace only).
type authn struct {
	certs  authenticator.Request
	kcp    kcpkubernetes.ClusterInterface
	tokens *cache.LRUExpireCache // sha256(workspace, token) → user.Info
}

func newAuthn(clientCAs *x509.CertPool, kcp kcpkubernetes.ClusterInterface) *authn {
	opts := x509request.DefaultVerifyOptions()
	opts.Roots = clientCAs
	return &authn{
		certs:  x509request.New(opts, x509request.CommonNameUserConversion),
		kcp:    kcp,
		tokens: cache.NewLRUExpireCache(4096),
	}
}

// tokenTTL is how long a reviewed token is trusted without asking again,
// as the apiserver's webhook token cache does (there 2 min).
const tokenTTL = time.Minute

func (a *authn) authenticate(ctx context.Context, r *http.Request, workspace logicalcluster.Path) (user.Info, error) {
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		resp, ok, err := a.certs.AuthenticateRequest(r)
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		if ok {
			return authenticated(resp.User), nil
		}
	}
	token, ok := bearerToken(r)
	if !ok {
		return nil, errUnauthenticated
	}
	if workspace.Empty() {
		workspace = logicalcluster.NewPath("root")
	}
	key := fmt.Sprintf("%x", sha256.Sum256([]byte(workspace.String()+"\x00"+token)))
	if u, ok := a.tokens.Get(key); ok {
		return u.(user.Info), nil
	}
	review, err := a.kcp.Cluster(workspace).AuthenticationV1().TokenReviews().Create(ctx,
		&authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: token}}, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("review the bearer token in %s: %w", workspace, err)
	}
	if !review.Status.Authenticated {
		return nil, errUnauthenticated
	}
	u := &user.DefaultInfo{Name: review.Status.User.Username, UID: review.Status.User.UID, Groups: review.Status.User.Groups, Extra: map[string][]string{}}
	for k, v := range review.Status.User.Extra {
		u.Extra[k] = v
	}
	a.tokens.Add(key, authenticated(u), tokenTTL)
	return authenticated(u), nil
}

// authenticated adds system:authenticated, as kcp's authentication chain
// does, so that access reviews see the groups kcp would.
func authenticated(u user.Info) user.Info {
	for _, g := range u.GetGroups() {
		if g == user.AllAuthenticated {
			return u
		}
	}
	return &user.DefaultInfo{Name: u.GetName(), UID: u.GetUID(), Groups: append(append([]string(nil), u.GetGroups()...), user.AllAuthenticated), Extra: u.GetExtra()}
}

func bearerToken(r *http.Request) (string, bool) {
	auth := strings.TrimSpace(r.Header.Get("Authorization"))
	scheme, token, ok := strings.Cut(auth, " ")
	if !ok || !strings.EqualFold(scheme, "bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// authz asks kcp whether a user may do something in a workspace: a
// SubjectAccessReview there, so that the tenant's own RBAC decides. Answers
// are cached briefly, as the apiserver's webhook authorizer does.
type authz struct {
	kcp     kcpkubernetes.ClusterInterface
	answers *cache.LRUExpireCache
}

func newAuthz(kcp kcpkubernetes.ClusterInterface) *authz {
	return &authz{kcp: kcp, answers: cache.NewLRUExpireCache(8192)}
}

const (
	allowedTTL = 10 * time.Second
	deniedTTL  = 2 * time.Second
)

type access struct {
	group, verb, resource, subresource, namespace, name string
}

func (a *authz) allowed(ctx context.Context, workspace logicalcluster.Path, u user.Info, what access) (bool, string, error) {
	key := fmt.Sprintf("%s\x00%s\x00%v\x00%+v", workspace, u.GetName(), u.GetGroups(), what)
	if v, ok := a.answers.Get(key); ok {
		ans := v.(authorizationv1.SubjectAccessReviewStatus)
		return ans.Allowed, ans.Reason, nil
	}
	extra := map[string]authorizationv1.ExtraValue{}
	for k, v := range u.GetExtra() {
		extra[k] = v
	}
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: u.GetName(), UID: u.GetUID(), Groups: u.GetGroups(), Extra: extra,
		ResourceAttributes: &authorizationv1.ResourceAttributes{
			Group: what.group, Verb: what.verb, Resource: what.resource, Subresource: what.subresource,
			Namespace: what.namespace, Name: what.name,
		},
	}}
	got, err := a.kcp.Cluster(workspace).AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
	if err != nil {
		return false, "", fmt.Errorf("review access in %s: %w", workspace, err)
	}
	ttl := deniedTTL
	if got.Status.Allowed {
		ttl = allowedTTL
	}
	a.answers.Add(key, got.Status, ttl)
	return got.Status.Allowed, got.Status.Reason, nil
}

// workspaces resolves workspace paths (root:team) to logical cluster
// names, which name the workload namespaces; a logical cluster name
// resolves to itself.
type workspaces struct {
	kcp   kcpclientset.ClusterInterface
	names *cache.LRUExpireCache
}

func newWorkspaces(kcp kcpclientset.ClusterInterface) *workspaces {
	return &workspaces{kcp: kcp, names: cache.NewLRUExpireCache(4096)}
}

// A workspace path keeps its logical cluster until the workspace is
// deleted; a minute bounds how long a recreated one is mistaken.
const workspaceTTL = time.Minute

func (w *workspaces) resolve(ctx context.Context, path logicalcluster.Path) (logicalcluster.Name, error) {
	if name, ok := path.Name(); ok {
		return name, nil
	}
	if v, ok := w.names.Get(path.String()); ok {
		return v.(logicalcluster.Name), nil
	}
	lc, err := w.kcp.Cluster(path).CoreV1alpha1().LogicalClusters().Get(ctx, "cluster", metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("resolve workspace %s: %w", path, err)
	}
	name := logicalcluster.From(lc)
	if name.Empty() {
		return "", fmt.Errorf("resolve workspace %s: its LogicalCluster names no cluster", path)
	}
	w.names.Add(path.String(), name, workspaceTTL)
	return name, nil
}
