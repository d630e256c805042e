package framework

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pipelines-service/pipelines-service/pkg/devstack"
)

// Forge is the stack's Gitea, driven through its API with the
// administrator's token the stack made.
type Forge struct {
	URL   string
	token string
	stack *devstack.Stack
}

// Forge returns the stack's forge.
func (e *Env) Forge(t testing.TB) *Forge {
	t.Helper()
	cfg := e.Stack.Config()
	token, err := os.ReadFile(cfg.ForgeTokenFile())
	if err != nil {
		t.Fatalf("the forge's token (make dev-status: FORGE_TOKEN_FILE): %v", err)
	}
	return &Forge{URL: cfg.ForgeURL(), token: strings.TrimSpace(string(token)), stack: e.Stack}
}

// ForgeUser is a user of the forge with an API token of its own.
type ForgeUser struct {
	Name  string
	Token string
	forge *Forge
}

// NewUser makes a forge user with a random name after prefix, and an
// API token of it (made with Gitea's CLI: the forge takes no passwords
// over HTTP).
func (f *Forge) NewUser(t testing.TB, prefix string) *ForgeUser {
	t.Helper()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := prefix + "-" + hex.EncodeToString(b)
	password := hex.EncodeToString(append(b, b...)) + "Aa1!"
	f.call(t, "", http.MethodPost, "/api/v1/admin/users", map[string]any{
		"username": name, "email": name + "@forge.invalid", "password": password, "must_change_password": false,
	}, http.StatusCreated, nil)
	token, err := f.stack.ForgeToken(context.Background(), name)
	if err != nil {
		t.Fatalf("a token of forge user %s: %v", name, err)
	}
	t.Cleanup(func() {
		req, _ := http.NewRequest(http.MethodDelete, f.URL+"/api/v1/admin/users/"+name+"?purge=true", nil)
		req.Header.Set("Authorization", "token "+f.token)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			_ = resp.Body.Close()
		}
	})
	return &ForgeUser{Name: name, Token: token, forge: f}
}

// Push creates a repository of the user and commits files (path to
// content; a content beginning with "symlink:" is a symbolic link to the
// rest) to its branch main, and returns the commit's SHA. (The repository
// is created first: Gitea's push-to-create races with its own push
// handler, which leaves the repository empty to its API.)
func (u *ForgeUser) Push(t testing.TB, repo string, private bool, files map[string]string) string {
	t.Helper()
	u.forge.call(t, u.Token, http.MethodPost, "/api/v1/user/repos",
		map[string]any{"name": repo, "private": private, "default_branch": "main"}, http.StatusCreated, nil)
	dir := t.TempDir()
	git := func(args ...string) string {
		cmd := exec.Command("git", append([]string{"-C", dir, "-c", "user.name=e2e", "-c", "user.email=e2e@forge.invalid", "-c", "core.symlinks=true"}, args...)...)
		cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0", "GIT_CONFIG_GLOBAL=/dev/null")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %s: %v: %s", args[0], err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git("init", "-q", "-b", "main")
	for path, content := range files {
		full := filepath.Join(dir, path)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if target, ok := strings.CutPrefix(content, "symlink:"); ok {
			if err := os.Symlink(target, full); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git("add", "-A")
	git("commit", "-q", "-m", "e2e")
	remote, _ := url.Parse(u.forge.URL + "/" + u.Name + "/" + repo + ".git")
	remote.User = url.UserPassword(u.Name, u.Token)
	git("push", "-q", remote.String(), "HEAD:main")
	sha := git("rev-parse", "HEAD")
	// Gitea handles a push in the background: until then its API and raw
	// files see an empty repository.
	u.forge.waitBranch(t, u.Token, u.Name, repo, "main", sha)
	return sha
}

// waitBranch waits until the forge has processed a push of sha to branch
// of owner/repo: the branch is at sha and the repository is not empty.
func (f *Forge) waitBranch(t testing.TB, token, owner, repo, branch, sha string) {
	t.Helper()
	get := func(path string, out any) (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, f.URL+"/api/v1/repos/"+owner+"/"+repo+path, nil)
		req.Header.Set("Authorization", "token "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return false, resp.Status
		}
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return false, err.Error()
		}
		return true, ""
	}
	Eventually(t, 30*time.Second, "the forge has processed the push of "+branch+" of "+repo, func() (bool, string, error) {
		var b struct {
			Commit struct {
				ID string `json:"id"`
			} `json:"commit"`
		}
		var r struct {
			Empty bool `json:"empty"`
		}
		if ok, why := get("/branches/"+branch, &b); !ok {
			return false, why, nil
		}
		if ok, why := get("", &r); !ok {
			return false, why, nil
		}
		return b.Commit.ID == sha && !r.Empty, fmt.Sprintf("%s at %q, empty %v", branch, b.Commit.ID, r.Empty), nil
	})
}

// CloneURL is the anonymous clone URL of a repository of the user.
func (u *ForgeUser) CloneURL(repo string) string {
	return u.forge.URL + "/" + u.Name + "/" + repo + ".git"
}

// RawURL is the URL of a file of branch main of a repository of the user.
func (u *ForgeUser) RawURL(repo, path string) string {
	return u.forge.URL + "/" + u.Name + "/" + repo + "/raw/branch/main/" + path
}

// call sends a JSON request with token (the administrator's if empty).
func (f *Forge) call(t testing.TB, token, method, path string, in any, want int, out any) {
	t.Helper()
	if token == "" {
		token = f.token
	}
	body, _ := json.Marshal(in)
	req, err := http.NewRequest(method, f.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "token "+token)
	req.Header.Set("Content-Type", "application/json")
	f.do(t, req, want, out)
}

func (f *Forge) do(t testing.TB, req *http.Request, want int, out any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatalf("forge %s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("forge %s %s: %s: %s", req.Method, req.URL.Path, resp.Status, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("forge %s %s: %v", req.Method, req.URL.Path, err)
		}
	}
}

// String names the user for messages.
func (u *ForgeUser) String() string { return fmt.Sprintf("forge user %s", u.Name) }
