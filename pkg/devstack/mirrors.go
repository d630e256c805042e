package devstack

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Mirror maps a public location that Tekton's examples reference to the
// stack's local copy: the examples run against the forge and the
// registry, as the stack has no internet. The stack seeds each mirror
// from config/forge-mirrors (files written by this project with the
// upstream files' interface, see each repository's README).
type Mirror struct {
	// Upstream is the text an example names (a URL or an image
	// reference); Local replaces it.
	Upstream, Local string
}

// mirrorRepos are the forge repositories the stack seeds, by
// organisation/name, with the branches they are pushed to.
var mirrorRepos = map[string][]string{
	"tektoncd/catalog":       {"main"},
	"kelseyhightower/nocode": {"master", "main"},
}

// catalogBundle is the tag the catalog's git-clone bundle is mirrored at
// (upstream pins it by a digest no local push can have).
const catalogBundle = "tektoncd/catalog/upstream/tasks/git-clone:0.10"

// Mirrors are the rewrites, most specific first: an example's text is
// rewritten by replacing each Upstream with its Local in this order.
func (c Config) Mirrors() []Mirror {
	forge := c.ForgeURL()
	return []Mirror{
		{"https://raw.githubusercontent.com/tektoncd/catalog/main/", forge + "/tektoncd/catalog/raw/branch/main/"},
		{"https://github.com/tektoncd/catalog.git", forge + "/tektoncd/catalog.git"},
		{"https://github.com/tektoncd/catalog", forge + "/tektoncd/catalog"},
		{"https://github.com/kelseyhightower/nocode", forge + "/kelseyhightower/nocode"},
		{"ghcr.io/tektoncd/catalog/upstream/tasks/git-clone@sha256:65e61544c5870c8828233406689d812391735fd4100cb444bbd81531cb958bb3",
			c.RegistryAddr + "/" + catalogBundle},
	}
}

func (c Config) mirrorsDir() string { return filepath.Join(c.RepoRoot, "config", "forge-mirrors") }

// seedMirrors pushes config/forge-mirrors to the forge and the catalog's
// git-clone Task as a bundle to the registry, unless what was seeded last
// is still what the checkout holds.
func (s *Stack) seedMirrors(ctx context.Context) error {
	c := s.cfg
	var files []string
	_ = filepath.WalkDir(c.mirrorsDir(), func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, path)
		}
		return nil
	})
	digest, err := fileDigest(files...)
	if err != nil {
		return err
	}
	stamp := c.Path("forge", "mirrors.seeded")
	if old, err := os.ReadFile(stamp); err == nil && string(old) == digest {
		return nil
	}
	token, err := os.ReadFile(c.ForgeTokenFile())
	if err != nil {
		return err
	}
	for repo, branches := range mirrorRepos {
		if err := c.seedRepo(ctx, strings.TrimSpace(string(token)), repo, branches); err != nil {
			return fmt.Errorf("mirror %s: %w", repo, err)
		}
	}
	task := filepath.Join(c.mirrorsDir(), "tektoncd", "catalog", "task", "git-clone", "0.10", "git-clone.yaml")
	push := exec.CommandContext(ctx, c.TknBinary(), "bundle", "push", c.RegistryAddr+"/"+catalogBundle, "-f", task)
	push.Env = append(os.Environ(), "HOME="+c.Path("forge", "home"))
	if out, err := push.CombinedOutput(); err != nil {
		return fmt.Errorf("tkn bundle push %s: %w: %s", catalogBundle, err, out)
	}
	return os.WriteFile(stamp, []byte(digest), 0o644)
}

// seedRepo creates the organisation and repository (public) on the forge
// and force-pushes the mirror's files as one commit of fixed date, so
// that an unchanged mirror keeps its commit.
func (c Config) seedRepo(ctx context.Context, token, repo string, branches []string) error {
	org, name, _ := strings.Cut(repo, "/")
	if err := c.forgeAPI(ctx, token, http.MethodPost, "/api/v1/orgs", map[string]any{"username": org, "visibility": "public"}, http.StatusCreated, http.StatusUnprocessableEntity); err != nil {
		return err
	}
	if err := c.forgeAPI(ctx, token, http.MethodPost, "/api/v1/orgs/"+org+"/repos", map[string]any{"name": name, "default_branch": branches[0]}, http.StatusCreated, http.StatusConflict); err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "mirror-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	const when = "2024-01-01T00:00:00Z"
	files := filepath.Join(c.mirrorsDir(), org, name)
	// The repository lives in a temporary directory; its work tree is the
	// checkout's mirror directory, read only.
	env := append(os.Environ(), "GIT_DIR="+filepath.Join(work, ".git"), "GIT_WORK_TREE="+files,
		"GIT_CONFIG_GLOBAL=/dev/null", "GIT_TERMINAL_PROMPT=0",
		"GIT_AUTHOR_NAME=pipelines-service", "GIT_AUTHOR_EMAIL=mirror@forge.invalid", "GIT_AUTHOR_DATE="+when,
		"GIT_COMMITTER_NAME=pipelines-service", "GIT_COMMITTER_EMAIL=mirror@forge.invalid", "GIT_COMMITTER_DATE="+when)
	git := func(args ...string) error {
		cmd := exec.CommandContext(ctx, "git", args...)
		cmd.Env, cmd.Dir = env, files
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("git %s: %w: %s", args[0], err, out)
		}
		return nil
	}
	remote, _ := url.Parse(c.ForgeURL() + "/" + repo + ".git")
	remote.User = url.UserPassword(ForgeAdmin, token)
	steps := [][]string{{"init", "-q", "-b", branches[0]}}
	steps = append(steps, []string{"add", "-A", "."})
	steps = append(steps, []string{"commit", "-q", "-m", "Mirror seeded by the pipelines-service dev stack"})
	for _, b := range branches {
		steps = append(steps, []string{"push", "-q", "--force", remote.String(), "HEAD:" + b})
	}
	for _, args := range steps {
		if err := git(args...); err != nil {
			return err
		}
	}
	return nil
}

// forgeAPI sends a JSON request to the forge's API as its administrator;
// any of ok is success.
func (c Config) forgeAPI(ctx context.Context, token, method, path string, body any, ok ...int) error {
	data, _ := json.Marshal(body)
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, c.ForgeURL()+path, bytes.NewReader(data))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "token "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	for _, code := range ok {
		if resp.StatusCode == code {
			return nil
		}
	}
	return fmt.Errorf("forge %s %s: %s", method, path, resp.Status)
}
