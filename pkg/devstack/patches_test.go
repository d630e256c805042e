package devstack

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestKCPPatchesApply applies the patches kcp's build carries to the
// module version third_party/kcp pins: a kcp bump whose files moved fails
// here, not in the middle of a bring-up.
func TestKCPPatchesApply(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	repo, err := FindRepoRoot(wd)
	if err != nil {
		t.Fatal(err)
	}
	c := Config{RepoRoot: repo, CacheDir: t.TempDir()}
	workFile, err := c.patchedSources(context.Background(), c.kcpBuild())
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(workFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ module, file, patched string }{
		{"github.com/kcp-dev/kcp", "pkg/admission/mutatingwebhook/plugin.go", "len(hookSource.Webhooks()) == 0"},
		{"github.com/kcp-dev/kcp", "pkg/admission/validatingwebhook/plugin.go", "len(hookSource.Webhooks()) == 0"},
		{"github.com/kcp-dev/apimachinery/v2", "third_party/informers/shared_informer.go", "initialBufferSize = 16"},
		{"github.com/kcp-dev/apimachinery/v2", "third_party/informers/shared_informer.go", "s.itemsOf(cluster)"},
	} {
		copied := filepath.Join(filepath.Dir(workFile), filepath.FromSlash(tc.module))
		if want := "replace " + tc.module + " => " + copied; !strings.Contains(string(data), want) {
			t.Errorf("go.work:\n%s\nwant %q", data, want)
		}
		patched, err := os.ReadFile(filepath.Join(copied, tc.file))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(patched), tc.patched) {
			t.Errorf("%s of %s is not patched (no %q)", tc.file, tc.module, tc.patched)
		}
	}
	// the informer patch carries its own tests: scoped listeners get their
	// workspace's notifications, and only those
	informers := filepath.Join(filepath.Dir(workFile), "github.com/kcp-dev/apimachinery/v2")
	tests := []string{"TestScopedListenersGetTheirClusterOnly", "TestProcessorSkipsOtherClustersForScopedListeners"}
	cmd := exec.Command("go", "test", "-count=1", "-v", "-run", strings.Join(tests, "|"), "./third_party/informers/")
	cmd.Dir = informers
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("the patched informers' tests: %v\n%s", err, out)
	}
	for _, test := range tests {
		if !strings.Contains(string(out), "--- PASS: "+test) {
			t.Errorf("the patched informers' %s did not pass:\n%s", test, out)
		}
	}
}

func TestPatchTargets(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	got, err := patchTargets(write("ok.patch", "why\n--- a/x/y.go\n+++ b/x/y.go\t2026\n@@ -1 +1 @@\n-a\n+b\n"))
	if err != nil || len(got) != 1 || got[0] != filepath.FromSlash("x/y.go") {
		t.Errorf("targets %v, %v; want [x/y.go]", got, err)
	}
	for name, text := range map[string]string{
		"none.patch":     "no diff here\n",
		"escape.patch":   "--- a/../etc/passwd\n+++ b/../etc/passwd\n",
		"noprefix.patch": "--- y.go\n+++ y.go\n",
	} {
		if got, err := patchTargets(write(name, text)); err == nil {
			t.Errorf("%s: targets %v, want an error", name, got)
		}
	}
}
