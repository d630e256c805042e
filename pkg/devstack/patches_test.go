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
	c := patchConfig(t)
	copied := appliedPatches(t, c, c.kcpBuild(), []patchedFile{
		{"github.com/kcp-dev/kcp", "pkg/admission/mutatingwebhook/plugin.go", "len(hookSource.Webhooks()) == 0"},
		{"github.com/kcp-dev/kcp", "pkg/admission/validatingwebhook/plugin.go", "len(hookSource.Webhooks()) == 0"},
		{"github.com/kcp-dev/apimachinery/v2", "third_party/informers/shared_informer.go", "initialBufferSize = 16"},
		{"github.com/kcp-dev/apimachinery/v2", "third_party/informers/shared_informer.go", "s.itemsOf(cluster)"},
	})
	// the informer patch carries its own tests: scoped listeners get their
	// workspace's notifications, and only those
	passPatchTests(t, copied("github.com/kcp-dev/apimachinery/v2"), "./third_party/informers/", nil,
		"TestScopedListenersGetTheirClusterOnly", "TestProcessorSkipsOtherClustersForScopedListeners")
}

// TestContainerdPatchesApply does the same for containerd's build, and
// runs the tests its patches carry: a runtime's features are asked once;
// mounts of one ID mapping share a user namespace.
func TestContainerdPatchesApply(t *testing.T) {
	c := patchConfig(t)
	copied := appliedPatches(t, c, c.containerdBuild(), []patchedFile{
		{"github.com/containerd/containerd/v2", "core/runtime/v2/task_manager.go", "m.idmapRuntimes.Load(key)"},
		{"github.com/containerd/containerd/v2", "core/mount/mount_idmapped_linux.go", "userNamespaces.get("},
	})
	containerd := copied("github.com/containerd/containerd/v2")
	passPatchTests(t, containerd, "./core/runtime/v2/", nil, "TestRuntimeFeaturesAskedOncePerRuntime")
	passPatchTests(t, containerd, "./core/mount/", nil, "TestUsernsCacheDropsTheOldest", "TestUsernsCacheMakesMappingsSideBySide", "TestUsernsCacheMakesAMappingOnce")
	if os.Geteuid() == 0 { // they make user namespaces and mounts, with containerd's -test.root
		passPatchTests(t, containerd, "./core/mount/", []string{"-test.root"}, "TestUsernsFDKeptPerMapping", "TestIdmappedMount")
	}
}

type patchedFile struct{ module, file, patched string }

func patchConfig(t *testing.T) Config {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	repo, err := FindRepoRoot(wd)
	if err != nil {
		t.Fatal(err)
	}
	return Config{RepoRoot: repo, CacheDir: t.TempDir()}
}

// appliedPatches applies b's patches to copies of their modules, checks
// that the go.work replaces each module with its copy and that each file
// holds its patched text, and returns where a module was copied to.
func appliedPatches(t *testing.T, c Config, b goBuild, files []patchedFile) (copied func(module string) string) {
	t.Helper()
	workFile, err := c.patchedSources(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(workFile)
	if err != nil {
		t.Fatal(err)
	}
	copied = func(module string) string { return filepath.Join(filepath.Dir(workFile), filepath.FromSlash(module)) }
	for _, f := range files {
		if want := "replace " + f.module + " => " + copied(f.module); !strings.Contains(string(data), want) {
			t.Errorf("go.work:\n%s\nwant %q", data, want)
		}
		patched, err := os.ReadFile(filepath.Join(copied(f.module), f.file))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(patched), f.patched) {
			t.Errorf("%s of %s is not patched (no %q)", f.file, f.module, f.patched)
		}
	}
	return copied
}

// passPatchTests runs tests of the patched module in dir (with testArgs
// after -args) and requires each to PASS by name, so that a test that
// vanished or skipped does not pass as "no tests".
func passPatchTests(t *testing.T, dir, pkg string, testArgs []string, tests ...string) {
	t.Helper()
	cmd := exec.Command("go", append([]string{"test", "-count=1", "-v", "-run", strings.Join(tests, "|"), pkg, "-args"}, testArgs...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("the patched %s tests: %v\n%s", pkg, err, out)
	}
	for _, test := range tests {
		if !strings.Contains(string(out), "--- PASS: "+test) {
			t.Errorf("the patched %s's %s did not pass:\n%s", pkg, test, out)
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
