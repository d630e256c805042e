package devstack

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"golang.org/x/sync/errgroup"
)

// MirroredRegistries are the public registries whose names the workload
// node's containerd resolves through the local registry (containerd
// hosts.toml mirrors). An image docker.io/library/busybox:latest is pulled
// from <local registry>/library/busybox:latest; nothing leaves the machine.
var mirroredRegistries = []string{"docker.io", "mirror.gcr.io", "gcr.io", "ghcr.io", "quay.io", "registry.k8s.io"}

// MirroredRegistries returns a copy of the list, for docs and tests.
func MirroredRegistries() []string { return append([]string(nil), mirroredRegistries...) }

// imageAlias is a repository (path in every mirrored registry) and the tags
// under which an image is published, with an optional default command.
type imageAlias struct {
	repo       string
	tags       []string
	cmd        []string
	entrypoint []string
	// files are added in a layer of their own (path -> executable content).
	files map[string]string
}

// bashEntrypoint behaves like the entrypoint of the official bash image:
// arguments that are bash options or a script file run with bash, other
// arguments run as a command, no arguments start bash.
const bashEntrypoint = `#!/bin/sh
if [ "$#" -eq 0 ]; then exec bash; fi
case "$1" in -*) exec bash "$@" ;; esac
if [ -f "$1" ] && ! command -v "$1" >/dev/null 2>&1; then exec bash "$@"; fi
exec "$@"
`

// baseImage is an image assembled on this machine from Debian packages.
type baseImage struct {
	name  string
	build func(ctx context.Context, c Config) (v1.Image, error)
	// revision changes when the image's content does (e.g. its packages),
	// so that it is built and published again.
	revision string
	aliases  []imageAlias
}

// debianPackages are the packages of the Debian image, beyond minbase:
// what script steps of common pipelines expect of ubuntu/python/node/perl.
var debianPackages = []string{"bash", "python3", "python-is-python3", "perl", "nodejs", "ca-certificates", "git", "procps", "curl", "jq"}

// ImageCatalogue lists the images the stack publishes. To add a name or a
// tag pipelines use, add it here (README: "Images"); to add an image, add
// a baseImage with a build function.
func imageCatalogue() []baseImage {
	return []baseImage{
		{name: "pause", build: buildPauseImage, aliases: []imageAlias{
			{repo: "pause", tags: []string{"3.10", "3.9", "3.8", "3.6"}},
		}},
		{name: "busybox", build: buildBusyboxImage, aliases: []imageAlias{
			{repo: "library/busybox", tags: []string{"latest", "1", "1.35", "1.36", "1.36.1", "1.37", "stable", "musl", "glibc", "uclibc"}, cmd: []string{"sh"}},
			{repo: "library/alpine", tags: []string{"latest", "3", "3.18", "3.19", "3.20", "3.21", "3.22", "edge"}, cmd: []string{"/bin/sh"}},
			{repo: "pipelines-service/shell", tags: []string{"latest"}, cmd: []string{"sh"}},
		}},
		{name: "static", build: buildStaticImage, aliases: []imageAlias{
			{repo: "pipelines-service/static", tags: []string{"latest"}},
		}},
		{name: "debian", build: buildDebianImage, revision: strings.Join(debianPackages, ","), aliases: []imageAlias{
			{repo: "library/debian", tags: []string{"latest", "12", "bookworm", "bookworm-slim", "stable", "stable-slim"}, cmd: []string{"bash"}},
			{repo: "library/ubuntu", tags: []string{"latest", "20.04", "22.04", "24.04", "focal", "jammy", "noble"}, cmd: []string{"bash"}},
			{repo: "library/bash", tags: []string{"latest", "5", "5.1", "5.2", "4.4"}, cmd: []string{"bash"},
				entrypoint: []string{"/usr/local/bin/docker-entrypoint.sh"}, files: map[string]string{"usr/local/bin/docker-entrypoint.sh": bashEntrypoint}},
			{repo: "library/python", tags: []string{"latest", "3", "3.10", "3.11", "3.12", "3.12.4", "3.13", "3-slim", "3.11-slim", "3.12-slim", "3-alpine"}, cmd: []string{"python3"}},
			{repo: "library/perl", tags: []string{"latest", "5", "5.36", "5.38", "slim", "devel-bullseye"}, cmd: []string{"perl", "-de0"}},
			{repo: "library/node", tags: []string{"latest", "18", "20", "22", "lts", "lts-alpine", "lts-alpine3.20", "18-alpine", "20-alpine", "22-alpine"}, cmd: []string{"node"}},
		}},
	}
}

// withUnprefixedLibrary adds, for every library/<name> repository, the same
// tags under <name>: Docker Hub normalises docker.io/ubuntu to
// library/ubuntu, other registries (mirror.gcr.io/ubuntu) do not.
func withUnprefixedLibrary(aliases []imageAlias) []imageAlias {
	out := append([]imageAlias(nil), aliases...)
	for _, a := range aliases {
		if name, ok := strings.CutPrefix(a.repo, "library/"); ok {
			alias := a
			alias.repo = name
			out = append(out, alias)
		}
	}
	return out
}

// publishImages builds and pushes every catalogue image whose tags are not
// all in the local registry yet.
func (c Config) publishImages(ctx context.Context) error {
	for _, img := range imageCatalogue() {
		img.aliases = withUnprefixedLibrary(img.aliases)
		if c.imagePublished(ctx, img) {
			continue
		}
		if err := c.publishImage(ctx, img); err != nil {
			return componentErr("image "+img.name, c.LogFile("images"), err)
		}
	}
	return nil
}

func (c Config) imagePublished(ctx context.Context, img baseImage) bool {
	if recorded, err := os.ReadFile(c.publishedMarker(img)); err != nil || string(recorded) != catalogueFingerprint(img) {
		return false
	}
	// One HEAD per tag, side by side: one after another, they were most
	// of a no-op bring-up's image step.
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for _, a := range img.aliases {
		for _, tag := range a.tags {
			g.Go(func() error {
				ref, err := name.ParseReference(c.RegistryAddr+"/"+a.repo+":"+tag, name.Insecure)
				if err != nil {
					return err
				}
				_, err = remote.Head(ref, remote.WithContext(ctx))
				return err
			})
		}
	}
	return g.Wait() == nil
}

func (c Config) publishImage(ctx context.Context, img baseImage) error {
	base, err := img.build(ctx, c)
	if err != nil {
		return err
	}
	for _, a := range img.aliases {
		aliased, err := forAlias(base, a)
		if err != nil {
			return err
		}
		for _, tag := range a.tags {
			ref, err := name.ParseReference(c.RegistryAddr+"/"+a.repo+":"+tag, name.Insecure)
			if err != nil {
				return err
			}
			if err := remote.Write(ref, aliased, remote.WithContext(ctx)); err != nil {
				return fmt.Errorf("push %s: %w", ref, err)
			}
		}
	}
	return writeFile(c.publishedMarker(img), catalogueFingerprint(img))
}

// publishedMarker records what catalogue entry an image was published from,
// so that a changed entry (a new tag, command or file) is published again.
func (c Config) publishedMarker(img baseImage) string {
	return c.Path("registry", "published-"+img.name)
}

func catalogueFingerprint(img baseImage) string {
	sum := sha256.Sum256([]byte(fmt.Sprintf("%s %+v", img.revision, img.aliases)))
	return hex.EncodeToString(sum[:])
}

// forAlias is the image as an alias publishes it: its files in an extra
// layer, its entrypoint and cmd.
func forAlias(img v1.Image, a imageAlias) (v1.Image, error) {
	if len(a.files) > 0 {
		layer, err := layerFrom(func(tw *tar.Writer) error {
			for path, content := range a.files {
				if err := writeTarFile(tw, path, []byte(content), 0o755); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		if img, err = mutate.AppendLayers(img, layer); err != nil {
			return nil, err
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg := cf.Config.DeepCopy()
	if a.cmd != nil {
		cfg.Cmd = a.cmd
	}
	if a.entrypoint != nil {
		cfg.Entrypoint = a.entrypoint
	}
	return mutate.Config(img, *cfg)
}

// imageFromLayer wraps one layer into a linux/amd64 image.
func imageFromLayer(layer v1.Layer, cmd []string) (v1.Image, error) {
	base, err := mutate.ConfigFile(empty.Image, &v1.ConfigFile{
		Architecture: "amd64",
		OS:           "linux",
		RootFS:       v1.RootFS{Type: "layers"},
		Config: v1.Config{
			Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
			Cmd: cmd,
		},
	})
	if err != nil {
		return nil, err
	}
	return mutate.AppendLayers(base, layer)
}

// buildBusyboxImage makes a shell image from Debian's busybox-static: the
// static binary plus a symlink per applet.
func buildBusyboxImage(_ context.Context, _ Config) (v1.Image, error) {
	const busybox = "/bin/busybox"
	bin, err := os.ReadFile(busybox)
	if err != nil {
		return nil, fmt.Errorf("%s missing: install the Debian package busybox-static: %w", busybox, err)
	}
	list, err := exec.Command(busybox, "--list-full").Output()
	if err != nil {
		return nil, fmt.Errorf("busybox --list-full: %w", err)
	}
	layer, err := layerFrom(func(tw *tar.Writer) error { return writeBusyboxTree(tw, bin, strings.Fields(string(list))) })
	if err != nil {
		return nil, err
	}
	return imageFromLayer(layer, []string{"sh"})
}

// buildStaticImage makes a base without a shell or any program, as
// distroless static is: directories, passwd/group and a writable /tmp.
// Tekton builds its nop image on such a base (tektonKoConfig says why).
func buildStaticImage(_ context.Context, _ Config) (v1.Image, error) {
	layer, err := layerFrom(func(tw *tar.Writer) error {
		for _, dir := range []string{"etc", "home", "home/nonroot", "tmp"} {
			mode := int64(0o755)
			if dir == "tmp" {
				mode = 0o1777
			}
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir + "/", Mode: mode}); err != nil {
				return err
			}
		}
		if err := writeTarFile(tw, "etc/passwd", []byte("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"), 0o644); err != nil {
			return err
		}
		return writeTarFile(tw, "etc/group", []byte("root:x:0:\nnonroot:x:65532:\n"), 0o644)
	})
	if err != nil {
		return nil, err
	}
	return imageFromLayer(layer, nil)
}

// writeBusyboxTree writes a minimal root: directories, passwd/group, the
// static busybox and a symlink per applet.
func writeBusyboxTree(tw *tar.Writer, busybox []byte, applets []string) error {
	for _, dir := range []string{"bin", "sbin", "usr", "usr/bin", "usr/sbin", "etc", "root", "home", "var", "proc", "sys", "dev"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir + "/", Mode: 0o755}); err != nil {
			return err
		}
	}
	for _, dir := range []string{"tmp", "var/tmp"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir + "/", Mode: 0o1777}); err != nil {
			return err
		}
	}
	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
		"etc/group":  "root:x:0:\nnobody:x:65534:\n",
	}
	for path, content := range files {
		if err := writeTarFile(tw, path, []byte(content), 0o644); err != nil {
			return err
		}
	}
	if err := writeTarFile(tw, "bin/busybox", busybox, 0o755); err != nil {
		return err
	}
	for _, applet := range applets {
		if applet == "bin/busybox" {
			continue
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: applet, Linkname: "/bin/busybox", Mode: 0o777}); err != nil {
			return err
		}
	}
	return nil
}

// layerFrom builds an image layer from what write puts into a tar stream.
func layerFrom(write func(tw *tar.Writer) error) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := write(tw); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
}

func writeTarFile(tw *tar.Writer, path string, content []byte, mode int64) error {
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: path, Mode: mode, Size: int64(len(content))}); err != nil {
		return err
	}
	_, err := tw.Write(content)
	return err
}

// buildPauseImage compiles Kubernetes' pause.c (from the pinned
// k8s.io/kubernetes module) statically: the pod sandbox image.
func buildPauseImage(ctx context.Context, c Config) (v1.Image, error) {
	dir := c.buildDir("pause", KubernetesVersion)
	bin := filepath.Join(dir, "pause")
	if _, err := os.Stat(bin); err != nil {
		src, err := moduleDir(ctx, filepath.Join(c.RepoRoot, "third_party", "kubernetes"), "k8s.io/kubernetes")
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		out, err := exec.CommandContext(ctx, "gcc", "-Os", "-static", "-DVERSION=v3.10-"+KubernetesVersion,
			"-o", bin, filepath.Join(src, "build", "pause", "linux", "pause.c")).CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("gcc pause.c: %v: %s", err, out)
		}
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	layer, err := layerFrom(func(tw *tar.Writer) error { return writeTarFile(tw, "pause", data, 0o755) })
	if err != nil {
		return nil, err
	}
	img, err := imageFromLayer(layer, nil)
	if err != nil {
		return nil, err
	}
	cf, _ := img.ConfigFile()
	cfg := cf.Config.DeepCopy()
	cfg.Entrypoint = []string{"/pause"}
	return mutate.Config(img, *cfg)
}

// moduleDir is the directory of a module in the module cache, downloading
// it if needed, as resolved by the build module in dir.
func moduleDir(ctx context.Context, dir, module string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}", module)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=readonly", "GONOSUMDB="+noSumDB)
	out, err := cmd.Output()
	if err != nil || strings.TrimSpace(string(out)) == "" {
		if dl := exec.CommandContext(ctx, "go", "mod", "download", module); true {
			dl.Dir, dl.Env = dir, cmd.Env
			_ = dl.Run()
		}
		if out, err = cmd.Output(); err != nil {
			return "", fmt.Errorf("locate module %s: %w", module, err)
		}
	}
	return strings.TrimSpace(string(out)), nil
}

// buildDebianImage is a Debian rootfs made by debootstrap with bash,
// python3, perl and node for script steps. The rootfs tarball is cached.
func buildDebianImage(ctx context.Context, c Config) (v1.Image, error) {
	sum := sha256.Sum256([]byte(strings.Join(debianPackages, ",")))
	dir := c.buildDir("debian-rootfs", DebianSuite+"-"+hex.EncodeToString(sum[:])[:8])
	tarFile := filepath.Join(dir, "rootfs.tar")
	if _, err := os.Stat(tarFile); err != nil {
		if err := debootstrap(ctx, c, dir, tarFile); err != nil {
			return nil, err
		}
	}
	layer, err := tarball.LayerFromFile(tarFile)
	if err != nil {
		return nil, err
	}
	return imageFromLayer(layer, []string{"bash"})
}

func debootstrap(ctx context.Context, c Config, dir, tarFile string) error {
	rootfs := filepath.Join(dir, "rootfs")
	_ = os.RemoveAll(rootfs)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	logf, err := os.OpenFile(c.LogFile("images"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	run := func(name string, args ...string) error {
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
		}
		return nil
	}
	if err := run("debootstrap", "--variant=minbase",
		"--include="+strings.Join(debianPackages, ","),
		DebianSuite, rootfs, debianMirror()); err != nil {
		return err
	}
	if err := run("tar", "--numeric-owner", "-C", rootfs,
		"--exclude=./dev/*", "--exclude=./proc/*", "--exclude=./sys/*", "--exclude=./var/cache/apt/archives/*.deb",
		"-cf", tarFile+".tmp", "."); err != nil {
		return err
	}
	if err := os.RemoveAll(rootfs); err != nil {
		return err
	}
	return os.Rename(tarFile+".tmp", tarFile)
}

// debianMirror is the mirror apt uses on this machine (the first URIs: entry
// of the deb822 sources), or Debian's default.
func debianMirror() string {
	files, _ := filepath.Glob("/etc/apt/sources.list.d/*.sources")
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "URIs:"); ok && !strings.Contains(v, "security") {
				return strings.TrimSpace(v)
			}
		}
	}
	return "http://deb.debian.org/debian"
}
