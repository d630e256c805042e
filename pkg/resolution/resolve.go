package resolution

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/kcp-dev/logicalcluster/v3"
	resolverconfig "github.com/tektoncd/pipeline/pkg/apis/config/resolver"
	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	resolutioncommon "github.com/tektoncd/pipeline/pkg/resolution/common"
	clusterresolver "github.com/tektoncd/pipeline/pkg/resolution/resolver/cluster"
	"github.com/tektoncd/pipeline/pkg/resolution/resolver/framework"
	"github.com/tektoncd/pipeline/pkg/resolution/resolver/git"
	"knative.dev/pkg/logging"
)

// The resolvers served, by the name a reference gives, and the ConfigMap
// upstream configures each with.
const (
	ResolverGit     = "git"
	ResolverBundles = "bundles"
	ResolverHTTP    = "http"
	ResolverCluster = "cluster"
)

// ConfigMapOf is the upstream ConfigMap of each served resolver.
var ConfigMapOf = map[string]string{
	ResolverGit:     "git-resolver-config",
	ResolverBundles: "bundleresolver-config",
	ResolverHTTP:    "http-resolver-config",
	ResolverCluster: "cluster-resolver-config",
}

// resolve runs one resolver for a reference of a run in cluster and
// namespace, with the workspace's resolver configuration.
func (s *Service) resolve(ctx context.Context, cluster logicalcluster.Name, namespace, resolver string, params v1.Params, url string) (*resolved, error) {
	if url != "" {
		return nil, fmt.Errorf("references by URL (%q) are not served by pipelines-service; use a resolver's parameters", url)
	}
	cfg, err := s.opts.Config.Resolvers(cluster)
	if err != nil {
		return nil, err
	}
	if err := enabled(cfg.Flags, resolver); err != nil {
		return nil, err
	}
	data := lockConfig(cfg.Data[ConfigMapOf[resolver]], namespace)
	timeout, err := s.fetchTimeout(resolver, data)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ctx = resolverconfig.ToContext(ctx, &resolverconfig.Config{FeatureFlags: cfg.Flags})
	ctx = framework.InjectResolverConfigToContext(ctx, data)
	ctx = resolutioncommon.InjectRequestNamespace(ctx, namespace)
	log := s.log.With("workspace", cluster.String(), "namespace", namespace, "resolver", resolver)
	ctx = logging.WithLogger(ctx, log)
	if err := checkCacheParam(params); err != nil {
		return nil, err
	}
	switch resolver {
	case ResolverGit:
		return s.resolveGit(ctx, cluster, namespace, params)
	case ResolverBundles:
		return s.resolveBundle(ctx, cluster, namespace, params)
	case ResolverHTTP:
		return s.resolveHTTP(ctx, cluster, namespace, params)
	case ResolverCluster:
		tekton, err := s.opts.Workspaces.Tekton(cluster)
		if err != nil {
			return nil, err
		}
		// The workspace's own client: any namespace of the workspace (the
		// tenant's allowed- and blocked-namespaces narrow it), never
		// another workspace.
		return fromFramework(clusterresolver.ResolveFromParams(ctx, params, tekton))
	}
	return nil, fmt.Errorf("resolver %q is not served by pipelines-service (served: git, bundles, http, cluster)", resolver)
}

// enabled applies the tenant's resolvers-feature-flags.
func enabled(flags *resolverconfig.FeatureFlags, resolver string) error {
	on := map[string]bool{
		ResolverGit: flags.EnableGitResolver, ResolverBundles: flags.EnableBundleResolver,
		ResolverHTTP: flags.EnableHttpResolver, ResolverCluster: flags.EnableClusterResolver,
	}
	if v, ok := on[resolver]; ok && !v {
		return fmt.Errorf("the %s resolver is disabled in this workspace (ConfigMap resolvers-feature-flags of %s)", resolver, ResolversNamespace)
	}
	return nil
}

// ResolversNamespace is where a tenant keeps its resolver ConfigMaps, as
// on an upstream Tekton installation.
const ResolversNamespace = "tekton-pipelines-resolvers"

// lockConfig is the tenant's resolver configuration with what only the
// platform decides put back: a token secret is read from the run's own
// namespace, whatever namespace the configuration names (upstream falls
// back to the resolvers' own namespace, which here would be the
// platform's).
func lockConfig(data map[string]string, namespace string) map[string]string {
	out := map[string]string{}
	for k, v := range data {
		out[k] = v
	}
	for k := range out {
		if k == git.APISecretNamespaceKey || strings.HasSuffix(k, "."+git.APISecretNamespaceKey) {
			out[k] = namespace
		}
	}
	out[git.APISecretNamespaceKey] = namespace
	return out
}

// fetchTimeout is the tenant's fetch-timeout, capped by the platform's.
func (s *Service) fetchTimeout(resolver string, data map[string]string) (time.Duration, error) {
	timeout := s.opts.MaxFetchTimeout
	if v := data["fetch-timeout"]; v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return 0, fmt.Errorf("%s resolver: fetch-timeout %q: %w", resolver, v, err)
		}
		timeout = min(timeout, d)
	}
	return timeout, nil
}

// checkCacheParam is upstream's check of the cache parameter; results
// are never shared between runs here, whatever it says.
func checkCacheParam(params v1.Params) error {
	for _, p := range params {
		if p.Name == "cache" {
			switch p.Value.StringVal {
			case "always", "never", "auto":
			default:
				return fmt.Errorf("invalid cache parameter value %q: must be always, never or auto", p.Value.StringVal)
			}
		}
	}
	return nil
}

func fromFramework(r framework.ResolvedResource, err error) (*resolved, error) {
	if err != nil {
		return nil, err
	}
	return &resolved{data: r.Data(), annotations: r.Annotations(), refSource: r.RefSource()}, nil
}

var (
	revisionPattern = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._/-]{0,250}$`)
	namePattern     = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,99}$`)
)

// checkRepoPath refuses a revision that git would take as an option and
// a path outside the repository.
func checkRepoPath(revision, path string) error {
	if !revisionPattern.MatchString(revision) || strings.Contains(revision, "..") {
		return fmt.Errorf("git resolver: invalid revision %q", revision)
	}
	// A leading slash names the repository's root, as upstream reads it
	// (filepath.Join of the clone and the path).
	if rel := strings.TrimLeft(path, "/"); rel == "" || !filepath.IsLocal(rel) {
		return fmt.Errorf("git resolver: pathInRepo %q is not a path inside the repository", path)
	}
	return nil
}
