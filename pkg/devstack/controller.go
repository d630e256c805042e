package devstack

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/tektoncd/pipeline/pkg/apis/pipeline"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/yaml"

	"github.com/pipelines-service/pipelines-service/pkg/controller"
	"github.com/pipelines-service/pipelines-service/pkg/images"
)

// KoVersion is the pinned ko that builds the Go images.
const KoVersion = "v0.17.1"

// tektonImagePackages are Tekton's helper binaries, built with ko from the
// pinned tektoncd/pipeline module. Tekton's pod builder expects each at
// /ko-app/<name>.
var tektonImagePackages = []string{
	"github.com/tektoncd/pipeline/cmd/entrypoint",
	"github.com/tektoncd/pipeline/cmd/nop",
	"github.com/tektoncd/pipeline/cmd/sidecarlogresults",
	"github.com/tektoncd/pipeline/cmd/workingdirinit",
}

// tektonImagesFromKo names the images ko printed for tektonImagePackages.
// ko builds the packages concurrently and prints each image when it is
// published, in no fixed order: each is matched to its package by its
// repository, which -B names after the package's last element.
func (c Config) tektonImagesFromKo(refs []string) (pipeline.Images, error) {
	byName := map[string]string{}
	for _, ref := range refs {
		repo, _, _ := strings.Cut(ref, "@")
		byName[path.Base(repo)] = ref
	}
	image := func(pkg string) string { return byName[path.Base(pkg)] }
	imgs := pipeline.Images{
		EntrypointImage:        image(tektonImagePackages[0]),
		NopImage:               image(tektonImagePackages[1]),
		SidecarLogResultsImage: image(tektonImagePackages[2]),
		WorkingDirInitImage:    image(tektonImagePackages[3]),
		// Pinned by digest when the images are handed out (pinShellImage).
		ShellImage: c.shellImageTag(),
		// Never used on Linux nodes; Tekton requires a value.
		ShellImageWin: "mcr.microsoft.com/powershell:nanoserver",
	}
	for _, pkg := range tektonImagePackages {
		if image(pkg) == "" {
			return imgs, fmt.Errorf("ko printed no image for %s among %q", pkg, refs)
		}
	}
	return imgs, nil
}

// recordedInPlace says each recorded image is its package's (a record
// written before images were matched by name may have them swapped).
func (c Config) recordedInPlace(imgs pipeline.Images) bool {
	again, err := c.tektonImagesFromKo([]string{imgs.WorkingDirInitImage, imgs.SidecarLogResultsImage, imgs.NopImage, imgs.EntrypointImage})
	return err == nil && again == imgs
}

// KoDockerRepo is where ko pushes the project's images.
func (c Config) KoDockerRepo() string { return c.RegistryAddr + "/pipelines-service" }

func (c Config) koBinary() string { return filepath.Join(c.buildDir("ko", KoVersion), "bin", "ko") }

// ensureKo installs the pinned ko into the cache.
func (c Config) ensureKo(ctx context.Context) error {
	if _, err := os.Stat(c.koBinary()); err == nil {
		return nil
	}
	cmd := exec.CommandContext(ctx, "go", "install", "github.com/google/ko@"+KoVersion)
	cmd.Env = append(os.Environ(), "GOBIN="+filepath.Dir(c.koBinary()), "GOFLAGS=-mod=mod", "CGO_ENABLED=0")
	return c.runLogged(cmd, "build-ko")
}

// koEnv is the environment ko builds with: push to the local registry,
// base images from it too.
func (c Config) koEnv() []string {
	env := append(os.Environ(),
		"KO_DOCKER_REPO="+c.KoDockerRepo(),
		"KO_DEFAULTBASEIMAGE="+c.shellImageTag())
	return append(env, checkoutBuildEnv()...)
}

// tektonKoConfig is ko's configuration for Tekton's helper images: the
// nop image is built on a base without a shell (the stack's static image),
// as Tekton builds it on distroless static; the others keep the shell
// base.
//
// Why: a done run's sidecars are stopped by giving them the nop image. A
// sidecar with a script keeps its command, the script, which on the nop
// image must fail to start. On the shell base the script ran on, and a
// sidecar's `sleep 3600` with it.
func (c Config) tektonKoConfig() string {
	return "baseImageOverrides:\n  github.com/tektoncd/pipeline/cmd/nop: " + c.RegistryAddr + "/pipelines-service/static:latest\n"
}

// ensureTektonImages is Tekton's helper images and its shell image, each
// by digest.
func (c Config) ensureTektonImages(ctx context.Context) (pipeline.Images, error) {
	imgs, err := c.ensureTektonHelperImages(ctx)
	if err != nil {
		return imgs, err
	}
	return c.pinShellImage(ctx, imgs)
}

func (c Config) shellImageTag() string { return c.RegistryAddr + "/pipelines-service/shell:latest" }

// pinShellImage names the shell image by its digest in the registry, as
// Tekton's release pins its own (cgr.dev/chainguard/busybox@sha256:…).
// Tekton's place-scripts init container takes the image's default pull
// policy, which for a :latest tag is Always: every TaskRun's pod asked
// the registry again (a pull and two events per pod, and no run could
// start while the registry was down, with the image on the node). By
// digest it is IfNotPresent. It is resolved whenever the images are
// handed out, so that a shell image published again is the one pinned.
func (c Config) pinShellImage(ctx context.Context, imgs pipeline.Images) (pipeline.Images, error) {
	tag, err := name.ParseReference(c.shellImageTag(), name.Insecure)
	if err != nil {
		return imgs, err
	}
	desc, err := remote.Head(tag, remote.WithContext(ctx))
	if err != nil {
		return imgs, fmt.Errorf("resolve the shell image %s: %w", tag, err)
	}
	imgs.ShellImage = tag.Context().Digest(desc.Digest.String()).String()
	return imgs, nil
}

// ensureTektonHelperImages builds Tekton's helper images with ko unless
// the recorded ones, built with the same ko configuration, are still in
// the registry.
func (c Config) ensureTektonHelperImages(ctx context.Context) (pipeline.Images, error) {
	record := c.Path("controller", "tekton-images.json")
	recordedConfig := c.Path("controller", "tekton-images.ko-config")
	var imgs pipeline.Images
	built, _ := os.ReadFile(recordedConfig)
	if data, err := os.ReadFile(record); err == nil && json.Unmarshal(data, &imgs) == nil && string(built) == c.tektonKoConfig() &&
		c.recordedInPlace(imgs) && c.imagesExist(ctx, imgs) {
		return imgs, nil
	}
	if err := c.ensureKo(ctx); err != nil {
		return imgs, err
	}
	koConfig := c.Path("controller", "ko", "ko.yaml")
	if err := writeFile(koConfig, c.tektonKoConfig()); err != nil {
		return imgs, err
	}
	args := append([]string{"build", "-B", "--platform=linux/amd64"}, tektonImagePackages...)
	cmd := exec.CommandContext(ctx, c.koBinary(), args...)
	cmd.Dir = c.RepoRoot
	cmd.Env = append(c.koEnv(), "KO_CONFIG_PATH="+koConfig)
	var out strings.Builder
	cmd.Stdout = &out
	if err := c.runLogged(cmd, "ko-tekton-images"); err != nil {
		return imgs, err
	}
	imgs, err := c.tektonImagesFromKo(strings.Fields(out.String()))
	if err != nil {
		return imgs, componentErr("tekton images", c.LogFile("ko-tekton-images"), err)
	}
	data, _ := json.MarshalIndent(imgs, "", "  ")
	if err := writeFile(record, string(data)); err != nil {
		return imgs, err
	}
	return imgs, writeFile(recordedConfig, c.tektonKoConfig())
}

func (c Config) imagesExist(ctx context.Context, imgs pipeline.Images) bool {
	for _, ref := range []string{imgs.EntrypointImage, imgs.NopImage, imgs.SidecarLogResultsImage, imgs.WorkingDirInitImage} {
		r, err := name.ParseReference(ref, name.Insecure)
		if err != nil {
			return false
		}
		if _, err := remote.Head(r, remote.WithContext(ctx)); err != nil {
			return false
		}
	}
	return true
}

// digestRewrites maps images that runs pin by digest (Tekton's examples
// among them) to an image of the local registry: a mirror cannot serve a
// digest whose content it does not have. Add a pin here to run it.
var digestRewrites = map[string]string{
	"mirror.gcr.io/bash:5.1.4@sha256:c523c636b722339f41b6a431b44588ab2f762c5de5ec3bd7964420ff982fb1d9": "docker.io/library/bash:5.1",
	"mirror.gcr.io/busybox@sha256:1303dbf110c57f3edf68d9f5a16c082ec06c4cf7604831669faf2c712260b5a0":    "docker.io/library/busybox:1.36",
	"cgr.dev/chainguard/busybox": "docker.io/library/busybox:1.36",
}

// upstreamNopImage is Tekton's nop image as its examples name it; it maps
// to the nop image built here with ko.
const upstreamNopImage = "ghcr.io/tektoncd/pipeline/nop-8eac7c133edad5df719dc37b36b62482:latest"

// controllerImageMap is ImageMap plus Tekton's own images under their
// upstream names.
func (c Config) controllerImageMap(imgs pipeline.Images) images.Config {
	m := c.ImageMap()
	m.Rewrites[upstreamNopImage] = imgs.NopImage
	return m
}

// ImageMap is the mapping the nodes' containerd and the controller share.
func (c Config) ImageMap() images.Config {
	rewrites := map[string]string{}
	for from, to := range digestRewrites {
		rewrites[from] = to
	}
	return images.Config{Mirror: c.RegistryAddr, MirroredRegistries: MirroredRegistries(), Rewrites: rewrites}
}

// ControllerConfigFile is the controller's configuration in the dev stack.
func (c Config) ControllerConfigFile() string { return c.controllerConfigFile(1) }

func (c Config) controllerConfigFile(replica int) string {
	if replica == 1 {
		return c.Path("controller", "config.yaml")
	}
	return c.Path("controller", fmt.Sprintf("config-%d.yaml", replica))
}

func (c Config) controllerBinary() string { return c.Path("bin", "controller") }

func (c Config) controllerProcess(buildID string) *process {
	return c.controllerReplicaProcess(1, buildID)
}

func (c Config) controllerReplicaProcess(replica int, buildID string) *process {
	name := "controller"
	if replica > 1 {
		name = fmt.Sprintf("controller-%d", replica)
	}
	p := c.newProcess(name, c.controllerBinary(), "--config="+c.controllerConfigFile(replica))
	p.env = []string{"PIPELINES_SERVICE_BUILD=" + buildID}
	return p
}

// startController builds the controller from the checkout, writes its
// configuration and (re)starts it when the binary or config changed.
func (s *Stack) startController(ctx context.Context) error {
	c := s.cfg
	if c.controllerInCluster() {
		s.log.Infow("controller runs in the workload cluster (devstack deploy); not starting it on the host")
		return nil
	}
	return s.startControllerReplica(ctx, 1)
}

// controllerConfig is the configuration of the host controller's replica
// n (1 is the stack's own; more are started by tests of leader election).
// Each has its own debug address and Lease identity; only replica 1 serves
// the Pipelines as Code intake, whose address the gateway forwards to.
func (c Config) controllerConfig(ctx context.Context, replica int) (controller.Config, error) {
	imgs, err := c.ensureTektonImages(ctx)
	if err != nil {
		return controller.Config{}, componentErr("tekton images", c.LogFile("ko-tekton-images"), err)
	}
	cfg := controller.Config{
		KCPKubeconfig:     c.ControllerKCPKubeconfig(),
		ProviderWorkspace: providerPath().String(),
		TektonImages:      imgs,
		ImageMap:          c.controllerImageMap(imgs),
		DebugAddress:      ControllerReplicaDebugAddress(replica),
		TriggersURL:       c.TriggersURL(),
		TenantEgress:      c.TenantEgress(),
		Resolution:        c.resolutionConfig(),
		// A stable identity: the stack's controller, restarted after a
		// crash, takes its Lease back at once instead of waiting it out.
		LeaderElection: controller.LeaderElectionConfig{Identity: ControllerReplicaIdentity(replica)},
		// A run's pod collected on a workload cluster takes its grace
		// period to go, and only the next sweep deletes its emptied
		// namespace: every 15 s rather than every minute, so that the
		// failover e2e does not wait minutes for it.
		WorkloadSweepInterval: metav1.Duration{Duration: 15 * time.Second},
	}
	if replica == 1 {
		cfg.PipelinesAsCode = controller.PipelinesAsCodeConfig{Listen: PipelinesAsCodeAddress, ConsoleURL: c.GatewayURL()}
	}
	if !c.recorderOff {
		cfg.ResultsAPI = c.ResultsAddr()
	}
	return cfg, nil
}

// startControllerReplica writes replica n's configuration and (re)starts
// it when the binary or config changed.
func (s *Stack) startControllerReplica(ctx context.Context, replica int) error {
	c := s.cfg
	cfg, err := c.controllerConfig(ctx, replica)
	if err != nil {
		return err
	}
	data, err := yaml.Marshal(cfg)
	if err != nil {
		return err
	}
	if err := writeFile(c.controllerConfigFile(replica), string(data)); err != nil {
		return err
	}
	buildID, err := c.checkoutBuildID(ctx, c.controllerBinary(), c.controllerConfigFile(replica))
	if err != nil {
		return err
	}
	return c.controllerReplicaProcess(replica, buildID).start()
}

// RestartController stops the host controller, starts it again and waits
// until it is ready (informers synced, /readyz). It returns the new PID
// and the start-up time (process start to ready).
func (s *Stack) RestartController(ctx context.Context) (int, time.Duration, error) {
	c := s.cfg
	if err := s.startController(ctx); err != nil { // build and config up to date
		return 0, 0, err
	}
	proc := c.controllerProcess("")
	if err := proc.stop(20 * time.Second); err != nil {
		return 0, 0, err
	}
	start := time.Now()
	if err := s.startController(ctx); err != nil {
		return 0, 0, err
	}
	if err := s.waitControllerReady(ctx, 10*time.Minute); err != nil {
		return 0, 0, componentErr("controller", proc.logFile, err)
	}
	return proc.pid(), time.Since(start), nil
}

// StopController stops the host controller (until the next Up).
func (s *Stack) StopController() error {
	return s.cfg.controllerProcess("").stop(20 * time.Second)
}

func (s *Stack) waitControllerReady(ctx context.Context, timeout time.Duration) error {
	return waitReplicaReady(ctx, 1, timeout)
}

// waitReplicaReady waits until replica n's informers have synced (leading
// or standing by).
func waitReplicaReady(ctx context.Context, replica int, timeout time.Duration) error {
	return wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		resp, err := http.Get("http://" + ControllerReplicaDebugAddress(replica) + "/readyz")
		if err != nil {
			return false, nil
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
}

func (c Config) runLogged(cmd *exec.Cmd, logName string) error {
	logFile := c.LogFile(logName)
	if err := os.MkdirAll(filepath.Dir(logFile), 0o755); err != nil {
		return err
	}
	logf, err := os.Create(logFile)
	if err != nil {
		return err
	}
	defer logf.Close()
	if cmd.Stdout == nil {
		cmd.Stdout = logf
	}
	cmd.Stderr = logf
	if err := cmd.Run(); err != nil {
		return componentErr(logName, logFile, fmt.Errorf("%s: %w", strings.Join(cmd.Args, " "), err))
	}
	return nil
}

func fileDigest(files ...string) (string, error) {
	h := sha256.New()
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			return "", err
		}
		_, err = io.Copy(h, fh)
		fh.Close()
		if err != nil {
			return "", err
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// resolutionConfig lets tenants' resolvers fetch from the stack's forge
// and registry only, and defaults the git resolver to the forge.
func (c Config) resolutionConfig() controller.ResolutionConfig {
	denied := []string{c.NodeNetwork.String(), c.PodNetwork.String()}
	for _, cl := range c.Clusters {
		denied = append(denied, cl.ServiceCIDR.String())
	}
	return controller.ResolutionConfig{
		AllowedHosts:   []string{c.ForgeAddr(), c.RegistryAddr},
		DeniedNetworks: denied,
		Defaults: map[string]map[string]string{
			"resolvers-feature-flags": {"enable-git-resolver": "true", "enable-bundles-resolver": "true",
				"enable-http-resolver": "true", "enable-cluster-resolver": "true", "enable-hub-resolver": "false"},
			"git-resolver-config": {"fetch-timeout": "1m", "default-revision": "main", "scm-type": "gitea",
				"server-url": c.ForgeURL(), "default-org": ForgeAdmin},
			"bundleresolver-config":   {"default-service-account": "default", "default-kind": "task", "fetch-timeout": "1m"},
			"http-resolver-config":    {"fetch-timeout": "1m"},
			"cluster-resolver-config": {"default-kind": "task"},
		},
	}
}
