package devstack

import (
	"context"
	"os"
	"os/exec"

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
	buildID, err := c.buildFromCheckout(ctx, "./cmd/local-path-provisioner", c.provisionerBinary(), "build-local-path-provisioner")
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

// buildFromCheckout builds a command of this repository and returns its
// digest (with the digests of extra files), so that a process is restarted
// when what it runs changed.
func (c Config) buildFromCheckout(ctx context.Context, pkg, binary, logName string, extra ...string) (string, error) {
	build := exec.CommandContext(ctx, "go", "build", "-o", binary, pkg)
	build.Dir = c.RepoRoot
	build.Env = append(os.Environ(), checkoutBuildEnv()...)
	if err := c.runLogged(build, logName); err != nil {
		return "", componentErr(logName, c.LogFile(logName), err)
	}
	return fileDigest(append([]string{binary}, extra...)...)
}
