package devstack

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pipelines-service/pipelines-service/pkg/devstack/localpath"
)

func (c Config) provisionerBinary() string { return c.Path("bin", "local-path-provisioner") }

func (c Config) provisionerProcess(cl WorkloadCluster, n workloadNode, buildID string) *process {
	p := c.newProcess(n.processName("local-path-provisioner"), c.provisionerBinary(),
		"--kubeconfig="+c.adminKubeconfig(cl), "--node="+n.name, "--dir="+n.volumesDir())
	p.env = []string{"PIPELINES_SERVICE_BUILD=" + buildID}
	return p
}

// startStorage gives every workload cluster a default StorageClass served
// by a local-path provisioner (built from the checkout) on each node.
func (c Config) startStorage(ctx context.Context) error {
	buildID, err := c.checkoutBuildID(ctx, c.provisionerBinary())
	if err != nil {
		return err
	}
	for _, cl := range c.Clusters {
		if err := c.ensureStorageClass(ctx, cl); err != nil {
			return err
		}
		for _, n := range c.clusterNodes(cl) {
			if err := c.provisionerProcess(cl, n, buildID).start(); err != nil {
				return err
			}
		}
	}
	return nil
}

func (c Config) ensureStorageClass(ctx context.Context, cl WorkloadCluster) error {
	client, err := c.clusterClient(cl)
	if err != nil {
		return err
	}
	_, err = client.StorageV1().StorageClasses().Create(ctx, localpath.StorageClass(), metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return componentErr(cl.Name+" storage class", c.LogFile(cl.ProcessPrefix+"kube-apiserver"), err)
	}
	return nil
}

// checkoutBuildEnv is the one build configuration of this repository's
// binaries, shared with the Makefile and with ko (which always trims
// paths and builds without cgo): the dependencies compile once.
func checkoutBuildEnv() []string {
	return []string{"GOFLAGS=-mod=readonly -buildvcs=false -trimpath", "GONOSUMDB=" + noSumDB, "CGO_ENABLED=0"}
}

// checkoutPrograms are the stack's programs built from this checkout, into
// the state directory's bin (named as their folders).
var checkoutPrograms = []string{"./cmd/controller", "./cmd/gateway", "./cmd/local-path-provisioner", "./cmd/triggers-sink"}

// buildCheckout builds the stack's programs from this checkout in one
// `go build`: one look at the build cache, not one per program (a no-op
// bring-up spent most of its time there).
func (c Config) buildCheckout(ctx context.Context) error {
	if c.checkoutBuilt() {
		return nil
	}
	args := append([]string{"build", "-o", c.Path("bin") + string(os.PathSeparator)}, checkoutPrograms...)
	build := exec.CommandContext(ctx, "go", args...)
	build.Dir = c.RepoRoot
	build.Env = append(os.Environ(), checkoutBuildEnv()...)
	if err := c.runLogged(build, "build-checkout"); err != nil {
		return componentErr("build-checkout", c.LogFile("build-checkout"), err)
	}
	return nil
}

// checkoutBuilt says every program from the checkout is newer than every
// source it is built from (the product module's Go files, go.mod and
// go.sum; modules in the module cache never change), as make decides:
// looking at a few hundred files' times takes milliseconds, asking go
// build most of a second.
func (c Config) checkoutBuilt() bool {
	oldest := time.Time{}
	for _, pkg := range checkoutPrograms {
		info, err := os.Stat(c.Path("bin", filepath.Base(pkg)))
		if err != nil {
			return false
		}
		if oldest.IsZero() || info.ModTime().Before(oldest) {
			oldest = info.ModTime()
		}
	}
	newer := errors.New("a source is newer")
	err := filepath.WalkDir(c.RepoRoot, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			// third_party holds modules of their own, built apart; bin
			// and hidden folders hold no product source.
			if path != c.RepoRoot && (d.Name() == "third_party" || d.Name() == "bin" || strings.HasPrefix(d.Name(), ".")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !c.productSource(path) {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.ModTime().After(oldest) {
			return newer
		}
		return nil
	})
	return err == nil
}

// productSource says a file goes into the product's binaries: Go files,
// go.mod, go.sum, and what apis/ embeds.
func (c Config) productSource(path string) bool {
	name := filepath.Base(path)
	rel, err := filepath.Rel(c.RepoRoot, path)
	return strings.HasSuffix(name, ".go") || name == "go.mod" || name == "go.sum" ||
		err == nil && strings.HasPrefix(rel, "apis"+string(filepath.Separator))
}

// checkoutBuildID identifies a program built from the checkout, with the
// files it reads (extra), so that its process is restarted when either
// changed: the binary's size and modification time (go build rewrites a
// binary only when it changed; hashing 100 MB would take longer than the
// rest of a no-op bring-up) and the digest of extra. A program not built
// yet is built.
func (c Config) checkoutBuildID(ctx context.Context, binary string, extra ...string) (string, error) {
	info, err := os.Stat(binary)
	if os.IsNotExist(err) {
		if err := c.buildCheckout(ctx); err != nil {
			return "", err
		}
		info, err = os.Stat(binary)
	}
	if err != nil {
		return "", err
	}
	digest := ""
	if len(extra) > 0 {
		if digest, err = fileDigest(extra...); err != nil {
			return "", err
		}
	}
	return fmt.Sprintf("%d-%d-%s", info.Size(), info.ModTime().UnixNano(), digest), nil
}
