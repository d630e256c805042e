package devstack

import (
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// goBuild is a set of binaries built from one of the third_party build
// modules at a pinned version, cached outside the checkout.
type goBuild struct {
	component string // cache key and log name, e.g. "kcp"
	version   string
	module    string // directory under third_party/
	packages  []string
	ldflags   []string
	tags      []string // build tags
	cgo       bool     // runc links libseccomp
	// typical is how long a cold build takes on 2 cores, as measured:
	// announced before a build, so that it is not taken for a hang.
	typical time.Duration
}

// buildRecord is written next to a finished build; `bench` reports it.
type buildRecord struct {
	Component string    `json:"component"`
	Version   string    `json:"version"`
	GoVersion string    `json:"goVersion"`
	Seconds   float64   `json:"seconds"`
	BuiltAt   time.Time `json:"builtAt"`
}

func (c Config) buildDir(component, version string) string {
	return filepath.Join(c.CacheDir, component+"@"+version)
}

func (c Config) kcpBuild() goBuild {
	v := KCPKubeVersion + "+kcp-" + KCPVersion
	return goBuild{
		component: "kcp", version: KCPVersion + "+" + c.ownSourceDigest("kcp"), module: "kcp",
		typical:  9 * time.Minute,
		packages: []string{"github.com/kcp-dev/kcp/cmd/kcp", "github.com/kcp-dev/kcp/cmd/kcp-front-proxy"},
		ldflags:  versionLDFlags(v, "1", minor(KCPKubeVersion)),
	}
}

func (c Config) kubernetesBuild() goBuild {
	return goBuild{
		component: "kubernetes", version: KubernetesVersion, module: "kubernetes",
		typical: 6 * time.Minute,
		packages: []string{
			"k8s.io/kubernetes/cmd/kube-apiserver",
			"k8s.io/kubernetes/cmd/kube-controller-manager",
			"k8s.io/kubernetes/cmd/kube-scheduler",
			"k8s.io/kubernetes/cmd/kubelet",
			"k8s.io/kubernetes/cmd/kube-proxy",
		},
		ldflags: versionLDFlags(KubernetesVersion, "1", minor(KubernetesVersion)),
	}
}

// ownSourceDigest identifies what a build module under third_party/ holds
// besides its pins: our own code (the network policy agent's main), the
// patches it carries (patchedSources), and its go.mod and go.sum. It is part of such a build's cache key, so that a
// change to that code is built, not served from the cache.
func (c Config) ownSourceDigest(module string) string {
	dir := filepath.Join(c.RepoRoot, "third_party", module)
	var files []string
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && (strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go") ||
			strings.HasSuffix(path, ".patch") || d.Name() == "go.mod" || d.Name() == "go.sum") {
			files = append(files, path)
		}
		return nil
	})
	digest, err := fileDigest(files...) // WalkDir walks in lexical order
	if err != nil {
		return "unknown"
	}
	return digest[:8]
}

// versionLDFlags stamps the version the binaries report, as the upstream
// release builds do.
func versionLDFlags(gitVersion, major, minor string) []string {
	var flags []string
	for _, pkg := range []string{"k8s.io/client-go/pkg/version", "k8s.io/component-base/version"} {
		flags = append(flags,
			"-X", pkg+".gitVersion="+gitVersion,
			"-X", pkg+".gitMajor="+major,
			"-X", pkg+".gitMinor="+minor,
			"-X", pkg+".gitTreeState=clean")
	}
	return flags
}

func minor(version string) string {
	parts := strings.Split(strings.TrimPrefix(version, "v"), ".")
	if len(parts) < 2 {
		return ""
	}
	return parts[1]
}

// binary is the path of one built binary.
func (c Config) binary(b goBuild, name string) string {
	return filepath.Join(c.buildDir(b.component, b.version), "bin", name)
}

// ensureBuilt builds b unless every binary is already in the cache.
func (c Config) ensureBuilt(ctx context.Context, b goBuild) error {
	dir := c.buildDir(b.component, b.version)
	if c.built(b) {
		return nil
	}
	tmp := filepath.Join(dir, "bin.tmp")
	_ = os.RemoveAll(tmp)
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return err
	}
	// -s -w: no symbol table or DWARF; the link of kcp or the kubelet is
	// quicker and nothing here debugs them.
	args := []string{"build", "-trimpath", "-o", tmp + "/", "-ldflags", strings.Join(append([]string{"-s", "-w"}, b.ldflags...), " ")}
	if len(b.tags) > 0 {
		args = append(args, "-tags", strings.Join(b.tags, ","))
	}
	workFile, err := c.patchedSources(ctx, b)
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "go", append(args, b.packages...)...)
	cmd.Dir = filepath.Join(c.RepoRoot, "third_party", b.module)
	cgo := "CGO_ENABLED=0"
	if b.cgo {
		cgo = "CGO_ENABLED=1"
	}
	cmd.Env = append(os.Environ(), cgo, "GOFLAGS=-mod=readonly -buildvcs=false", "GONOSUMDB="+noSumDB)
	if workFile != "" {
		cmd.Env = append(cmd.Env, "GOWORK="+workFile)
	}
	start := time.Now()
	if err := c.runLogged(cmd, "build-"+b.component); err != nil {
		return err
	}
	_ = os.RemoveAll(filepath.Join(dir, "bin"))
	if err := os.Rename(tmp, filepath.Join(dir, "bin")); err != nil {
		return err
	}
	goVersion, _ := exec.Command("go", "env", "GOVERSION").Output()
	rec := buildRecord{Component: b.component, Version: b.version, GoVersion: strings.TrimSpace(string(goVersion)),
		Seconds: time.Since(start).Seconds(), BuiltAt: time.Now().UTC()}
	data, _ := json.MarshalIndent(rec, "", "  ")
	return os.WriteFile(filepath.Join(dir, "build.json"), data, 0o644)
}

func (c Config) built(b goBuild) bool {
	for _, pkg := range b.packages {
		if _, err := os.Stat(c.binary(b, filepath.Base(pkg))); err != nil {
			return false
		}
	}
	return true
}

// buildRecords returns the records of the cached builds.
func (c Config) buildRecords() []buildRecord {
	var out []buildRecord
	for _, b := range []goBuild{c.kcpBuild(), c.kubernetesBuild(), c.kubeRouterBuild(), c.containerdBuild(), c.runcBuild(), c.tknBuild(), c.resultsBuild()} {
		data, err := os.ReadFile(filepath.Join(c.buildDir(b.component, b.version), "build.json"))
		if err != nil {
			continue
		}
		var rec buildRecord
		if json.Unmarshal(data, &rec) == nil {
			out = append(out, rec)
		}
	}
	return out
}

// noSumDB lists modules the checksum database does not know (kcp's fork of
// k8s.io, and k8s.io modules missing from it); go.sum still pins them.
const noSumDB = "github.com/kcp-dev,k8s.io/kubernetes,k8s.io/mount-utils"
