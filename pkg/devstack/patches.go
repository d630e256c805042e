package devstack

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// patchedSources copies each module a build module's patches change out of
// the module cache, applies the patches to the copy, and returns a go.work
// file that builds the build module with the copies in place of the
// modules ("" when it carries no patches). The go command refuses to
// overlay files of the module cache; the cache stays as the proxy served
// it.
//
// A module's patches are third_party/<build module>/patches/<module
// path>/*.patch, unified diffs against the module's root (-p1), applied in
// name order. They are part of the build's cache key (ownSourceDigest).
func (c Config) patchedSources(ctx context.Context, b goBuild) (string, error) {
	root := filepath.Join(c.RepoRoot, "third_party", b.module, "patches")
	patches := map[string][]string{} // module path -> patch files
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".patch") {
			return err
		}
		module, _ := filepath.Rel(root, filepath.Dir(path))
		patches[filepath.ToSlash(module)] = append(patches[filepath.ToSlash(module)], path)
		return nil
	})
	switch {
	case os.IsNotExist(err):
		return "", nil
	case err != nil:
		return "", err
	case len(patches) == 0:
		return "", nil
	}
	work := filepath.Join(c.buildDir(b.component, b.version), "patched")
	if err := os.RemoveAll(work); err != nil {
		return "", err
	}
	goVersion, err := exec.CommandContext(ctx, "go", "env", "GOVERSION").Output()
	if err != nil {
		return "", err
	}
	workFile := fmt.Sprintf("go %s\n\nuse %s\n", strings.TrimPrefix(strings.TrimSpace(string(goVersion)), "go"),
		filepath.Join(c.RepoRoot, "third_party", b.module))
	for _, module := range slices.Sorted(maps.Keys(patches)) {
		dir, err := c.moduleDir(ctx, b, module)
		if err != nil {
			return "", err
		}
		copied := filepath.Join(work, module)
		if err := os.CopyFS(copied, os.DirFS(dir)); err != nil {
			return "", fmt.Errorf("copy %s: %w", module, err)
		}
		for _, patch := range patches[module] {
			if err := applyPatch(ctx, copied, patch); err != nil {
				return "", err
			}
		}
		workFile += fmt.Sprintf("\nreplace %s => %s\n", module, copied)
	}
	path := filepath.Join(work, "go.work")
	return path, os.WriteFile(path, []byte(workFile), 0o644)
}

// applyPatch applies patch to the module copied to dir, whose files came
// read-only out of the module cache.
func applyPatch(ctx context.Context, dir, patch string) error {
	targets, err := patchTargets(patch)
	if err != nil {
		return err
	}
	for _, t := range targets {
		// a target that does not exist yet is a file the patch adds
		if err := os.Chmod(filepath.Join(dir, t), 0o644); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("patch %s: %w", patch, err)
		}
	}
	cmd := exec.CommandContext(ctx, "patch", "-p1", "--forward", "--batch", "--no-backup-if-mismatch", "-d", dir, "-i", patch)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("patch %s does not apply: %v: %s", patch, err, out)
	}
	return nil
}

// moduleDir is where the module cache holds the version of module that b's
// build module requires; it is downloaded first on a fresh machine (go
// list -m would report no directory for it).
func (c Config) moduleDir(ctx context.Context, b goBuild, module string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "mod", "download", "-json", module)
	cmd.Dir = filepath.Join(c.RepoRoot, "third_party", b.module)
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=readonly", "GONOSUMDB="+noSumDB, "GOWORK=off")
	out, err := cmd.Output()
	var got struct{ Dir, Error string }
	if jsonErr := json.Unmarshal(out, &got); jsonErr != nil && err == nil {
		err = jsonErr
	}
	switch {
	case got.Error != "":
		return "", fmt.Errorf("go mod download %s in third_party/%s: %s", module, b.module, got.Error)
	case err != nil:
		return "", fmt.Errorf("go mod download %s in third_party/%s: %w", module, b.module, err)
	case got.Dir == "":
		return "", fmt.Errorf("module %s is not required by third_party/%s", module, b.module)
	}
	return got.Dir, nil
}

// patchTargets are the files a unified diff changes, relative to the
// module's root: its "+++ b/<path>" lines.
func patchTargets(patch string) ([]string, error) {
	data, err := os.ReadFile(patch)
	if err != nil {
		return nil, err
	}
	var targets []string
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "+++ "); ok {
			path, _, _ := strings.Cut(rest, "\t")
			_, path, _ = strings.Cut(path, "/") // -p1
			if path == "" || strings.Contains(path, "..") {
				return nil, fmt.Errorf("patch %s: target %q is not inside the module", patch, rest)
			}
			targets = append(targets, filepath.FromSlash(path))
		}
	}
	if len(targets) == 0 {
		return nil, fmt.Errorf("patch %s changes no file", patch)
	}
	return targets, nil
}
