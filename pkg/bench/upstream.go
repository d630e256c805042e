package bench

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/tektoncd/pipeline/pkg/apis/pipeline"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/pipelines-service/pipelines-service/pkg/devstack"
)

// Upstream Tekton, for the benchmark only: Tekton's own controller at the
// pinned release, with its CRDs and configuration installed directly on the
// workload cluster. Uninstalled afterwards: outside the benchmark the
// workload cluster knows nothing of Tekton.
const (
	upstreamNamespace  = "tekton-pipelines"
	upstreamProbesPort = "18080"
)

func tektonControllerBuild() devstack.ThirdPartyBuild {
	return devstack.ThirdPartyBuild{
		Component: "tekton-controller", Version: devstack.TektonVersion, Module: "tekton",
		Packages: []string{"github.com/tektoncd/pipeline/cmd/controller"},
	}
}

// tektonConfigDir is config/ of the pinned tektoncd/pipeline module.
func tektonConfigDir(ctx context.Context, c devstack.Config) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}", "github.com/tektoncd/pipeline")
	cmd.Dir = filepath.Join(c.RepoRoot, "third_party", "tekton")
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=readonly")
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("locate tektoncd/pipeline: %w", err)
	}
	return filepath.Join(strings.TrimSpace(string(out)), "config"), nil
}

// upstreamManifests are Tekton's namespace, CRDs and ConfigMaps (no
// webhook, no RBAC: the controller runs on the host with the admin
// kubeconfig).
func upstreamManifests(dir string) ([]string, error) {
	files := []string{filepath.Join(dir, "100-namespace"), filepath.Join(dir, "300-crds")}
	configs, err := filepath.Glob(filepath.Join(dir, "config-*.yaml"))
	if err != nil {
		return nil, err
	}
	return append(files, configs...), nil
}

const upstreamProcessName = "tekton-controller"

func upstreamProcess(c devstack.Config, imgs pipeline.Images) devstack.HostProcess {
	env := []string{
		"SYSTEM_NAMESPACE=" + upstreamNamespace,
		"CONFIG_LOGGING_NAME=config-logging",
		"CONFIG_OBSERVABILITY_NAME=config-observability",
		"CONFIG_LEADERELECTION_NAME=config-leader-election-controller",
		"METRICS_DOMAIN=tekton.dev/pipeline",
		"PROBES_PORT=" + upstreamProbesPort,
	}
	return c.HostProcess(upstreamProcessName, c.ThirdPartyBinary(tektonControllerBuild(), "controller"), env,
		"-kubeconfig="+c.WorkloadAdminKubeconfig(), "-disable-ha",
		// Tekton doubles these: 50 QPS / 100 burst, as pipelines-service.
		"-kube-api-qps=25", "-kube-api-burst=50",
		"-entrypoint-image="+imgs.EntrypointImage, "-nop-image="+imgs.NopImage,
		"-sidecarlogresults-image="+imgs.SidecarLogResultsImage, "-workingdirinit-image="+imgs.WorkingDirInitImage,
		"-shell-image="+imgs.ShellImage, "-shell-image-win="+imgs.ShellImageWin)
}

// startUpstreamTekton builds Tekton's controller (cached), installs
// Tekton on the workload cluster and starts the controller; it returns
// the controller's PID once it answers its readiness probe.
func (r *runner) startUpstreamTekton(ctx context.Context) (int, error) {
	c := r.cfg
	if !c.ThirdPartyBuilt(tektonControllerBuild()) {
		r.log.Infow("building upstream Tekton's controller on first use (not cached)", "version", devstack.TektonVersion,
			"typically", "2m0s on 2 cores", "log", c.LogFile("build-tekton-controller"))
	}
	if err := c.EnsureThirdPartyBuild(ctx, tektonControllerBuild()); err != nil {
		return 0, componentErr("build tekton controller", c.LogFile("build-tekton-controller"), err)
	}
	imgs, err := c.TektonImages(ctx)
	if err != nil {
		return 0, err
	}
	if err := kubectlUpstream(ctx, c, "apply", "--server-side", "--force-conflicts"); err != nil {
		return 0, err
	}
	established := exec.CommandContext(ctx, "kubectl", "--kubeconfig="+c.WorkloadAdminKubeconfig(), "wait", "--for=condition=Established", "--timeout=60s",
		"crd/pipelineruns.tekton.dev", "crd/taskruns.tekton.dev")
	if err := c.RunLogged(established, "tekton-install-wait"); err != nil {
		return 0, componentErr("tekton CRDs", c.LogFile("tekton-install-wait"), err)
	}
	proc := upstreamProcess(c, imgs)
	if err := proc.Start(); err != nil {
		return 0, err
	}
	err = wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		resp, err := http.Get("http://127.0.0.1:" + upstreamProbesPort + "/readiness")
		if err != nil {
			return false, nil
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		return 0, componentErr(upstreamProcessName, c.LogFile(upstreamProcessName), err)
	}
	return proc.PID(), nil
}

// stopUpstreamTekton stops Tekton's controller and uninstalls Tekton from
// the workload cluster (its CRDs, and with them every Tekton object).
func (r *runner) stopUpstreamTekton(ctx context.Context) error {
	c := r.cfg
	if err := upstreamProcess(c, pipeline.Images{}).Stop(10 * time.Second); err != nil {
		return err
	}
	return kubectlUpstream(ctx, c, "delete", "--ignore-not-found", "--wait=true")
}

func kubectlUpstream(ctx context.Context, c devstack.Config, verb string, flags ...string) error {
	dir, err := tektonConfigDir(ctx, c)
	if err != nil {
		return err
	}
	files, err := upstreamManifests(dir)
	if err != nil {
		return err
	}
	args := append([]string{"--kubeconfig=" + c.WorkloadAdminKubeconfig(), verb}, flags...)
	for _, f := range files {
		args = append(args, "-f", f)
	}
	logName := "tekton-" + verb
	if err := c.RunLogged(exec.CommandContext(ctx, "kubectl", args...), logName); err != nil {
		return componentErr("kubectl "+verb+" tekton", c.LogFile(logName), err)
	}
	return nil
}

// componentErr names the component that failed and its log, as the
// stack's own errors do.
func componentErr(component, logFile string, err error) error {
	if err == nil {
		return nil
	}
	return &devstack.ComponentError{Component: component, LogFile: logFile, Err: err}
}
