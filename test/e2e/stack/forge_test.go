//go:build e2e

package stack

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestForge: the stack's Gitea answers with the token dev-status names,
// serves anonymous clones of a public repository, and runs as nobody in
// a user namespace of its own, never as the host's root user.
func TestForge(t *testing.T) {
	status := map[string]string{}
	for _, line := range env.Stack.StatusLines() {
		if k, v, ok := strings.Cut(line, "="); ok {
			status[k] = v
		}
	}
	url, tokenFile := status["FORGE_URL"], status["FORGE_TOKEN_FILE"]
	if url == "" || tokenFile == "" || !strings.HasPrefix(status["FORGE_STATE"], "running") {
		t.Fatalf("dev-status: FORGE_URL=%q FORGE_TOKEN_FILE=%q FORGE_STATE=%q", url, tokenFile, status["FORGE_STATE"])
	}
	token, err := os.ReadFile(tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, url+"/api/v1/user", nil)
	req.Header.Set("Authorization", "token "+strings.TrimSpace(string(token)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var user struct {
		Login   string `json:"login"`
		IsAdmin bool   `json:"is_admin"`
	}
	err = json.NewDecoder(resp.Body).Decode(&user)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || !user.IsAdmin {
		t.Fatalf("GET /api/v1/user with the stack's token: %s %+v %v", resp.Status, user, err)
	}

	// A mirror the stack seeds is public: an anonymous clone works.
	dir := filepath.Join(t.TempDir(), "nocode")
	if out, err := exec.Command("git", "clone", "-q", url+"/kelseyhightower/nocode.git", dir).CombinedOutput(); err != nil {
		t.Fatalf("anonymous clone: %v: %s", err, out)
	}

	pid := strings.TrimPrefix(strings.Fields(status["FORGE_STATE"])[1], "pid=")
	uidMap, err := os.ReadFile("/proc/" + pid + "/uid_map")
	if err != nil {
		t.Fatal(err)
	}
	if fields := strings.Fields(string(uidMap)); len(fields) != 3 || fields[0] != "65534" || fields[2] != "1" {
		t.Errorf("gitea's uid_map = %q, want nobody (65534) alone in a user namespace of its own", uidMap)
	}
}
