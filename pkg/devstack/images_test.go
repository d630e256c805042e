package devstack

import (
	"archive/tar"
	"context"
	"io"
	"log"
	"maps"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/tektoncd/pipeline/pkg/apis/pipeline"
)

// TestBusyboxImageAndAliasLayers builds the busybox image from the machine's
// busybox-static and an alias with an extra file, and reads them back.
func TestBusyboxImageAndAliasLayers(t *testing.T) {
	img, err := buildBusyboxImage(context.Background(), Config{})
	if err != nil {
		t.Skipf("busybox-static not installed: %v", err) // hack/install-deps.sh installs it
	}
	aliased, err := forAlias(img, imageAlias{repo: "library/bash", cmd: []string{"bash"}, entrypoint: []string{"/usr/local/bin/docker-entrypoint.sh"},
		files: map[string]string{"usr/local/bin/docker-entrypoint.sh": bashEntrypoint}})
	if err != nil {
		t.Fatal(err)
	}
	entries := imageEntries(t, aliased)
	for name, want := range map[string]byte{"bin/busybox": tar.TypeReg, "bin/sh": tar.TypeSymlink, "tmp": tar.TypeDir, "etc/passwd": tar.TypeReg, "usr/local/bin/docker-entrypoint.sh": tar.TypeReg} {
		if h, ok := entries[name]; !ok || h.Typeflag != want {
			t.Errorf("image lacks %s of type %c", name, want)
		}
	}
	cf, err := aliased.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if len(cf.Config.Entrypoint) != 1 || cf.Config.Cmd[0] != "bash" {
		t.Errorf("alias config entrypoint %v cmd %v", cf.Config.Entrypoint, cf.Config.Cmd)
	}
}

// TestStaticImageHasNoProgram: the nop image's base holds users and a
// /tmp, and nothing a stopped sidecar's script could run with.
func TestStaticImageHasNoProgram(t *testing.T) {
	img, err := buildStaticImage(context.Background(), Config{})
	if err != nil {
		t.Fatal(err)
	}
	entries := imageEntries(t, img)
	for name, h := range entries {
		if h.Typeflag != tar.TypeDir && h.Mode&0o111 != 0 {
			t.Errorf("%s is executable", name)
		}
	}
	if entries["etc/passwd"] == nil || entries["tmp"] == nil {
		t.Errorf("static image holds %v, want etc/passwd and tmp among them", slices.Collect(maps.Keys(entries)))
	}
}

// imageEntries are the tar headers of an image's flattened file system,
// by path.
func imageEntries(t *testing.T, img v1.Image) map[string]*tar.Header {
	t.Helper()
	entries := map[string]*tar.Header{}
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return entries
		}
		if err != nil {
			t.Fatal(err)
		}
		entries[strings.TrimSuffix(h.Name, "/")] = h
	}
}

// ko prints the images of several packages in the order they were
// published; each must still land in its own field.
func TestTektonImagesFromKoMatchesByRepository(t *testing.T) {
	c := layoutConfig(t)
	ref := func(name string) string { return c.KoDockerRepo() + "/" + name + "@sha256:" + name }
	imgs, err := c.tektonImagesFromKo([]string{ref("workingdirinit"), ref("nop"), ref("entrypoint"), ref("sidecarlogresults")})
	if err != nil {
		t.Fatal(err)
	}
	if imgs.EntrypointImage != ref("entrypoint") || imgs.NopImage != ref("nop") ||
		imgs.SidecarLogResultsImage != ref("sidecarlogresults") || imgs.WorkingDirInitImage != ref("workingdirinit") {
		t.Errorf("images %+v: each is not its package's", imgs)
	}
	if !c.recordedInPlace(imgs) {
		t.Error("a correct record is not recognised")
	}
	swapped := imgs
	swapped.EntrypointImage, swapped.WorkingDirInitImage = imgs.WorkingDirInitImage, imgs.EntrypointImage
	if c.recordedInPlace(swapped) {
		t.Error("a record with swapped images is taken")
	}
	if _, err := c.tektonImagesFromKo([]string{ref("entrypoint")}); err == nil {
		t.Error("a missing image is not reported")
	}
}

// The shell image is handed out by its digest in the registry, so that
// Tekton's place-scripts container is not pulled again for every pod.
func TestShellImageIsPinnedByDigest(t *testing.T) {
	server := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer server.Close()
	c := layoutConfig(t)
	c.RegistryAddr = strings.TrimPrefix(server.URL, "http://")
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	tag, err := name.ParseReference(c.shellImageTag(), name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, img); err != nil {
		t.Fatal(err)
	}
	digest, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	imgs, err := c.pinShellImage(context.Background(), pipeline.Images{ShellImage: c.shellImageTag(), EntrypointImage: "entrypoint"})
	if err != nil {
		t.Fatal(err)
	}
	want := c.RegistryAddr + "/pipelines-service/shell@" + digest.String()
	if imgs.ShellImage != want || imgs.EntrypointImage != "entrypoint" {
		t.Errorf("images %+v, want the shell image %s and the others unchanged", imgs, want)
	}

	c.RegistryAddr = "127.0.0.1:1"
	if _, err := c.pinShellImage(context.Background(), imgs); err == nil || !strings.Contains(err.Error(), "resolve the shell image") {
		t.Errorf("an unreachable registry: error %v, want one that names the shell image", err)
	}
}
