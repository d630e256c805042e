package resolution

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"time"

	giteasdk "code.gitea.io/sdk/gitea"
	"github.com/jenkins-x/go-scm/scm"
	"github.com/jenkins-x/go-scm/scm/factory"
	"github.com/jenkins-x/go-scm/scm/transport"
	"github.com/kcp-dev/logicalcluster/v3"
	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	"github.com/tektoncd/pipeline/pkg/resolution/resolver/git"
	"k8s.io/apimachinery/pkg/util/cache"
	"knative.dev/pkg/logging"
)

// resolveGit runs upstream's git resolver: a clone (url) through git and
// the egress proxy, or the forge's API (org/repo) through the egress
// transport. Its secret cache is fresh per request: upstream's is shared
// by every request of the process, keyed without workspace.
func (s *Service) resolveGit(ctx context.Context, cluster logicalcluster.Name, namespace string, params v1.Params) (*resolved, error) {
	p, err := git.PopulateDefaultParams(ctx, params)
	if err != nil {
		return nil, err
	}
	if err := checkRepoPath(p[git.RevisionParam], p[git.PathParam]); err != nil {
		return nil, err
	}
	kube, err := s.opts.Workspaces.Kube(cluster)
	if err != nil {
		return nil, err
	}
	g := &git.GitResolver{
		Params: p, Logger: logging.FromContext(ctx), Cache: cache.NewLRUExpireCache(1), TTL: time.Minute,
		KubeClient: lockedKube(kube, namespace),
	}
	if repoURL := p[git.UrlParam]; repoURL != "" {
		if err := s.opts.Egress.CheckURL("git", repoURL); err != nil {
			return nil, err
		}
		r, err := g.ResolveGitClone(ctx)
		if err != nil {
			return nil, fmt.Errorf("repository %s: %w", repoURL, err)
		}
		return fromFramework(r, nil)
	}
	if !namePattern.MatchString(p[git.OrgParam]) || !namePattern.MatchString(p[git.RepoParam]) {
		return nil, fmt.Errorf("git resolver: invalid org %q or repo %q", p[git.OrgParam], p[git.RepoParam])
	}
	// The server is checked before anything else, its token included, is
	// read (scmClient checks it again, as it connects).
	if err := s.checkSCMServer(ctx, p); err != nil {
		return nil, err
	}
	r, err := g.ResolveAPIGit(ctx, s.scmClient(ctx))
	if err != nil {
		return nil, fmt.Errorf("repository %s/%s: %w", p[git.OrgParam], p[git.RepoParam], err)
	}
	return fromFramework(r, nil)
}

// checkSCMServer checks the API server a reference (or the tenant's
// configuration for it) names against the allow-list.
func (s *Service) checkSCMServer(ctx context.Context, p map[string]string) error {
	conf, err := git.GetScmConfigForParamConfigKey(ctx, p)
	if err != nil {
		return err
	}
	scmType, serverURL := conf.SCMType, conf.ServerURL
	if v := p[git.ScmTypeParam]; v != "" {
		scmType = v
	}
	if v := p[git.ServerURLParam]; v != "" {
		serverURL = v
	}
	switch {
	case serverURL != "":
		return s.opts.Egress.CheckURL("git", serverURL)
	case scmType == "" || scmType == "github":
		return s.opts.Egress.CheckHost("git", "api.github.com:443")
	case scmType == "gitlab":
		return s.opts.Egress.CheckHost("git", "gitlab.com:443")
	}
	return nil // scmClient refuses the rest
}

// scmClient is the clientFunc of upstream's API mode: go-scm's client for
// github and gitlab with the egress transport under the token, and for
// gitea the Gitea SDK on that transport (go-scm's gitea driver builds an
// SDK client on the default transport, which no check could hold).
func (s *Service) scmClient(ctx context.Context) func(string, string, string, ...factory.ClientOptionFunc) (*scm.Client, error) {
	return func(scmType, serverURL, token string, _ ...factory.ClientOptionFunc) (*scm.Client, error) {
		httpClient := s.opts.Egress.Client("git", s.opts.MaxFetchTimeout)
		switch scmType {
		case "gitea":
			if serverURL == "" {
				return nil, fmt.Errorf("scm-type gitea needs a server-url")
			}
			if err := s.opts.Egress.CheckURL("git", serverURL); err != nil {
				return nil, err
			}
			return giteaClient(ctx, serverURL, token, httpClient)
		case "github", "gitlab", "":
			if scmType == "" {
				scmType = "github"
			}
			client, err := factory.NewClient(scmType, serverURL, "")
			if err != nil {
				return nil, err
			}
			if err := s.opts.Egress.CheckURL("git", client.BaseURL.String()); err != nil {
				return nil, err
			}
			var rt http.RoundTripper = httpClient.Transport
			if token != "" && scmType == "github" {
				rt = &transport.BearerToken{Token: token, Base: rt}
			} else if token != "" {
				rt = &transport.PrivateToken{Token: token, Base: rt}
			}
			httpClient.Transport = rt
			client.Client = httpClient
			return client, nil
		}
		return nil, fmt.Errorf("scm-type %q is not served by pipelines-service (served: gitea, github, gitlab)", scmType)
	}
}

// giteaClient is a go-scm client whose three services upstream's API
// mode calls (Contents.Find, Git.FindCommit, Repositories.Find) are
// served by the Gitea SDK on httpClient.
func giteaClient(ctx context.Context, serverURL, token string, httpClient *http.Client) (*scm.Client, error) {
	sdk, err := giteasdk.NewClient(strings.TrimSuffix(serverURL, "/"),
		giteasdk.SetHTTPClient(httpClient), giteasdk.SetToken(token), giteasdk.SetContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("gitea at %s: %w", serverURL, err)
	}
	g := gitea{sdk: sdk}
	client := &scm.Client{Driver: scm.DriverGitea}
	client.Contents = giteaContents{gitea: g}
	client.Git = giteaGit{gitea: g}
	client.Repositories = giteaRepositories{gitea: g}
	return client, nil
}

type gitea struct{ sdk *giteasdk.Client }

// giteaContents serves Find; the embedded nil interface fails any other
// call (recovered by Service.safely).
type giteaContents struct {
	scm.ContentService
	gitea
}

func (c giteaContents) Find(_ context.Context, repo, path, ref string) (*scm.Content, *scm.Response, error) {
	owner, name := scm.Split(repo)
	ref = strings.TrimPrefix(strings.TrimPrefix(ref, "refs/heads/"), "refs/tags/")
	out, _, err := c.sdk.GetContents(owner, name, ref, path)
	if err != nil {
		return nil, nil, err
	}
	if out.Content == nil {
		return nil, nil, fmt.Errorf("%s is not a file", path)
	}
	data, err := base64.StdEncoding.DecodeString(*out.Content)
	if err != nil {
		return nil, nil, err
	}
	return &scm.Content{Path: path, Data: data, Sha: out.SHA}, nil, nil
}

type giteaGit struct {
	scm.GitService
	gitea
}

func (g giteaGit) FindCommit(_ context.Context, repo, ref string) (*scm.Commit, *scm.Response, error) {
	owner, name := scm.Split(repo)
	out, _, err := g.sdk.GetSingleCommit(owner, name, ref)
	if err != nil {
		return nil, nil, err
	}
	return &scm.Commit{Sha: out.SHA, Link: out.URL}, nil, nil
}

type giteaRepositories struct {
	scm.RepositoryService
	gitea
}

func (r giteaRepositories) Find(_ context.Context, repo string) (*scm.Repository, *scm.Response, error) {
	owner, name := scm.Split(repo)
	out, _, err := r.sdk.GetRepo(owner, name)
	if err != nil {
		return nil, nil, err
	}
	return &scm.Repository{Namespace: owner, Name: out.Name, FullName: out.FullName, Clone: out.CloneURL, Private: out.Private, Link: out.HTMLURL}, nil, nil
}
