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

func (c Config) provisionerProcess(buildID string) *process {
	p := c.newProcess("local-path-provisioner", c.provisionerBinary(),
		"--kubeconfig="+c.WorkloadAdminKubeconfig(), "--node="+c.NodeName, "--dir="+c.Path("volumes"))
	p.env = []string{"PIPELINES_SERVICE_BUILD=" + buildID}
	return p
}

// startStorage gives the workload cluster a default StorageClass served
// by the local-path provisioner (built from the checkout).
func (c Config) startStorage(ctx context.Context) error {
	client, err := c.WorkloadClient()
	if err != nil {
		return err
	}
	_, err = client.StorageV1().StorageClasses().Create(ctx, localpath.StorageClass(), metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return componentErr("storage class", c.LogFile("kube-apiserver"), err)
	}
	buildID, err := c.buildFromCheckout(ctx, "./cmd/local-path-provisioner", c.provisionerBinary(), "build-local-path-provisioner")
	if err != nil {
		return err
	}
	return c.provisionerProcess(buildID).start()
}

// buildFromCheckout builds a command of this repository and returns its
// digest (with the digests of extra files), so that a process is restarted
// when what it runs changed.
func (c Config) buildFromCheckout(ctx context.Context, pkg, binary, logName string, extra ...string) (string, error) {
	build := exec.CommandContext(ctx, "go", "build", "-o", binary, pkg)
	build.Dir = c.RepoRoot
	build.Env = append(os.Environ(), "GOFLAGS=-mod=readonly -buildvcs=false", "GONOSUMDB="+noSumDB, "CGO_ENABLED=0")
	if err := c.runLogged(build, logName); err != nil {
		return "", componentErr(logName, c.LogFile(logName), err)
	}
	return fileDigest(append([]string{binary}, extra...)...)
}
