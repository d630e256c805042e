package framework

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Call sends a JSON request to the forge's API as the user.
func (u *ForgeUser) Call(t testing.TB, method, path string, in any, want int, out any) {
	t.Helper()
	u.forge.call(t, u.Token, method, path, in, want, out)
}

// CommitStatus is a commit status on the forge.
type CommitStatus struct {
	State       string `json:"status"`
	Context     string `json:"context"`
	Description string `json:"description"`
	TargetURL   string `json:"target_url"`
}

// Statuses are the statuses of a commit, newest first.
func (u *ForgeUser) Statuses(t testing.TB, owner, repo, sha string) []CommitStatus {
	t.Helper()
	var out []CommitStatus
	u.Call(t, http.MethodGet, fmt.Sprintf("/api/v1/repos/%s/%s/commits/%s/statuses?limit=50", owner, repo, sha), nil, http.StatusOK, &out)
	return out
}

// Comments are the bodies of the comments of an issue or pull request.
func (u *ForgeUser) Comments(t testing.TB, owner, repo string, number int) []string {
	t.Helper()
	var out []struct {
		Body string `json:"body"`
	}
	u.Call(t, http.MethodGet, fmt.Sprintf("/api/v1/repos/%s/%s/issues/%d/comments", owner, repo, number), nil, http.StatusOK, &out)
	bodies := make([]string, 0, len(out))
	for _, c := range out {
		bodies = append(bodies, c.Body)
	}
	return bodies
}

// Comment comments on an issue or pull request as the user.
func (u *ForgeUser) Comment(t testing.TB, owner, repo string, number int, body string) {
	t.Helper()
	u.Call(t, http.MethodPost, fmt.Sprintf("/api/v1/repos/%s/%s/issues/%d/comments", owner, repo, number), map[string]string{"body": body}, http.StatusCreated, nil)
}

// OpenPullRequest opens a pull request of head ("branch" or
// "user:branch" for a fork's) into base and returns its number.
func (u *ForgeUser) OpenPullRequest(t testing.TB, owner, repo, head, base, title string) int {
	t.Helper()
	var pr struct {
		Number int `json:"number"`
	}
	u.Call(t, http.MethodPost, fmt.Sprintf("/api/v1/repos/%s/%s/pulls", owner, repo),
		map[string]string{"head": head, "base": base, "title": title}, http.StatusCreated, &pr)
	return pr.Number
}

// AddWebhook makes the forge post the repository's push, pull request and
// comment events to url, signed with secret.
func (u *ForgeUser) AddWebhook(t testing.TB, owner, repo, url, secret string) {
	t.Helper()
	u.Call(t, http.MethodPost, fmt.Sprintf("/api/v1/repos/%s/%s/hooks", owner, repo), map[string]any{
		"type": "gitea", "active": true, "branch_filter": "*",
		"events": []string{"push", "pull_request", "issue_comment"},
		"config": map[string]string{"url": url, "content_type": "json", "secret": secret},
	}, http.StatusCreated, nil)
}

// Fork forks owner/repo into the user's account.
func (u *ForgeUser) Fork(t testing.TB, owner, repo string) {
	t.Helper()
	u.Call(t, http.MethodPost, fmt.Sprintf("/api/v1/repos/%s/%s/forks", owner, repo), map[string]any{}, http.StatusAccepted, nil)
	Eventually(t, 30*time.Second, "the fork of "+owner+"/"+repo, func() (bool, string, error) {
		req, _ := http.NewRequest(http.MethodGet, u.forge.URL+"/api/v1/repos/"+u.Name+"/"+repo+"/branches/main", nil)
		req.Header.Set("Authorization", "token "+u.Token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false, err.Error(), nil
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK, resp.Status, nil
	})
}

// Checkout is a working copy of a forge repository, pushed with its
// user's token.
type Checkout struct {
	user        *ForgeUser
	owner, repo string
	dir         string
}

// Clone clones owner/repo as the user.
func (u *ForgeUser) Clone(t testing.TB, owner, repo string) *Checkout {
	t.Helper()
	c := &Checkout{user: u, owner: owner, repo: repo, dir: t.TempDir()}
	remote, _ := url.Parse(u.forge.URL + "/" + owner + "/" + repo + ".git")
	remote.User = url.UserPassword(u.Name, u.Token)
	c.git(t, "clone", "-q", remote.String(), ".")
	return c
}

func (c *Checkout) git(t testing.TB, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", c.dir, "-c", "user.name=" + c.user.Name, "-c", "user.email=" + c.user.Name + "@forge.invalid"}, args...)...)
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0", "GIT_CONFIG_GLOBAL=/dev/null")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v: %s", args[0], err, out)
	}
	return strings.TrimSpace(string(out))
}

// Commit commits files (path to content) onto branch, which starts at
// base's tip on the forge (base == branch continues it), pushes it, waits
// until the forge has it, and returns the commit's SHA.
func (c *Checkout) Commit(t testing.TB, base, branch string, files map[string]string) string {
	t.Helper()
	c.git(t, "fetch", "-q", "origin")
	c.git(t, "checkout", "-q", "-B", branch, "origin/"+base)
	for path, content := range files {
		full := filepath.Join(c.dir, path)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c.git(t, "add", "-A")
	c.git(t, "commit", "-q", "-m", "e2e: "+branch)
	sha := c.git(t, "rev-parse", "HEAD")
	c.git(t, "push", "-q", "origin", "HEAD:refs/heads/"+branch)
	c.user.forge.waitBranch(t, c.user.Token, c.owner, c.repo, branch, sha)
	return sha
}
