package devstack

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"time"

	"github.com/kcp-dev/logicalcluster/v3"
	"github.com/tektoncd/pipeline/pkg/apis/pipeline"
	"go.uber.org/zap"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/pipelines-service/pipelines-service/pkg/provider"
)

// What the benchmark (pkg/bench) needs of the stack's internals. The
// benchmark drives the stack from outside its package: it measures the
// stack's own processes and builds, runs upstream Tekton's controller the
// way the stack runs its components, and binds tenant workspaces by the
// hundred.

// Logger is the stack's logger, so that the benchmark's progress and
// clean-up failures appear in the same log as the stack's.
func (s *Stack) Logger() *zap.SugaredLogger { return s.log }

// StartController builds and starts the host controller unless it runs
// already. The benchmark stops it to run upstream Tekton's controller
// alone on the workload cluster, and starts it again afterwards.
func (s *Stack) StartController(ctx context.Context) error { return s.startController(ctx) }

// SetRecorder decides whether the host controller, at its next (re)start,
// records runs in Tekton Results: the benchmark measures what recording
// costs.
func (s *Stack) SetRecorder(on bool) { s.cfg.recorderOff = !on }

// ControllerInCluster reports whether the controller runs in the workload
// cluster (devstack deploy) rather than as a host process: the benchmark
// measures the host process and refuses to run otherwise.
func (c Config) ControllerInCluster() bool { return c.controllerInCluster() }

// ControllerBinary is the host controller's binary, which the benchmark
// needs to read the controller's CPU profile.
func (c Config) ControllerBinary() string { return c.controllerBinary() }

// BuildRecord is the record of a finished cached build (kcp, Kubernetes):
// the benchmark reports cold build times from it.
type BuildRecord = buildRecord

// BuildRecords returns the records of the cached builds.
func (c Config) BuildRecords() []BuildRecord { return c.buildRecords() }

// KCPRSSBytes is kcp's resident memory, 0 if it does not run: the
// benchmark's idle-scale figure of many bound workspaces.
func (s *Stack) KCPRSSBytes() int64 { return s.cfg.kcpProcess().rssBytes() }

// KCPEtcdRSSBytes is the resident memory of kcp's etcd, 0 if it does not
// run: kcp's own figure leaves out its storage since it has one of its own.
func (s *Stack) KCPEtcdRSSBytes() int64 { return s.cfg.kcpEtcdProcess().rssBytes() }

// ShardRSSBytes is a kcp shard's resident memory, 0 if it does not run.
func (s *Stack) ShardRSSBytes(shard string) int64 {
	kcp, _ := s.cfg.shardProcesses(shard)
	return kcp.rssBytes()
}

// ShardEtcdRSSBytes is the resident memory of a shard's etcd.
func (s *Stack) ShardEtcdRSSBytes(shard string) int64 {
	_, etcd := s.cfg.shardProcesses(shard)
	return etcd.rssBytes()
}

// FrontProxyRSSBytes is kcp-front-proxy's resident memory.
func (s *Stack) FrontProxyRSSBytes() int64 { return s.cfg.frontProxyProcess().rssBytes() }

// ProviderClients are admin clients of kcp as the provider uses them. The
// benchmark binds idle tenant workspaces by the hundred with them directly:
// AddTenant's per-tenant identity, kubeconfig and access wait would only
// slow that down.
func (s *Stack) ProviderClients() (provider.Clients, error) { return s.providerClients() }

// ProviderPath is the provider workspace's path, which tenant workspaces
// bind to.
func ProviderPath() logicalcluster.Path { return providerPath() }

// TektonImages builds Tekton's helper images with ko unless the recorded
// ones are still in the registry: upstream Tekton's controller, which the
// benchmark runs, uses the same images as ours.
func (c Config) TektonImages(ctx context.Context) (pipeline.Images, error) {
	return c.ensureTektonImages(ctx)
}

// RunLogged runs cmd with its output in the log of logName; a failure
// names that log. The benchmark installs upstream Tekton with kubectl this
// way, as the stack runs its own tools.
func (c Config) RunLogged(cmd *exec.Cmd, logName string) error { return c.runLogged(cmd, logName) }

// ThirdPartyBuild is a set of binaries built from one of the third_party
// build modules at a pinned version and cached outside the checkout, as
// the stack builds kcp and Kubernetes. The benchmark builds upstream
// Tekton's controller (third_party/tekton) this way.
type ThirdPartyBuild struct {
	Component string // cache key and log name
	Version   string
	Module    string // directory under third_party/
	Packages  []string
}

func (b ThirdPartyBuild) goBuild() goBuild {
	return goBuild{component: b.Component, version: b.Version, module: b.Module, packages: b.Packages}
}

// EnsureThirdPartyBuild builds b unless every binary is already in the
// cache.
func (c Config) EnsureThirdPartyBuild(ctx context.Context, b ThirdPartyBuild) error {
	return c.ensureBuilt(ctx, b.goBuild())
}

// ThirdPartyBuilt says whether every binary of b is in the cache.
func (c Config) ThirdPartyBuilt(b ThirdPartyBuild) bool { return c.built(b.goBuild()) }

// ThirdPartyBinary is the path of one binary of b, built or not.
func (c Config) ThirdPartyBinary(b ThirdPartyBuild, name string) string {
	return c.binary(b.goBuild(), name)
}

// HostProcess is a long-running program run as the stack runs its own:
// detached, logged to LogFile(name) and remembered by a PID file, so that a
// later invocation finds it and stops exactly it. The benchmark runs
// upstream Tekton's controller this way.
type HostProcess struct{ p *process }

// HostProcess describes a program (it does not start it); env is added to
// this program's environment.
func (c Config) HostProcess(name, binary string, env []string, args ...string) HostProcess {
	p := c.newProcess(name, binary, args...)
	p.env = env
	return HostProcess{p}
}

// Start starts the process unless it already runs with the same command
// line; one running with another command line is restarted.
func (h HostProcess) Start() error { return h.p.start() }

// Stop ends the process by PID: SIGTERM, then SIGKILL after grace.
func (h HostProcess) Stop(grace time.Duration) error { return h.p.stop(grace) }

// PID is the PID of the running process, or 0.
func (h HostProcess) PID() int { return h.p.pid() }

// ControllerRSSBytes is the host controller's resident memory.
func (s *Stack) ControllerRSSBytes() int64 { return s.cfg.controllerProcess("").rssBytes() }

// GatewayCAPool trusts the gateway's serving certificate, as tenant
// kubeconfigs and forges on the stack do.
func (c Config) GatewayCAPool() (*x509.CertPool, error) {
	caFile, _ := (&certAuthority{dir: c.Path("gateway-pki")}).files("ca")
	data, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("%s holds no certificate", caFile)
	}
	return pool, nil
}

// TriggersSinkMemoryBytes is the working set of every triggers sink pod,
// as their kubelets report it (/stats/summary): what the listeners cost on
// the workload cluster.
func (s *Stack) TriggersSinkMemoryBytes(ctx context.Context) (int64, error) {
	client, err := s.cfg.clusterClient(s.cfg.triggersSinkCluster())
	if err != nil {
		return 0, err
	}
	pods, err := client.CoreV1().Pods(triggersNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=" + triggersSinkName})
	if err != nil {
		return 0, err
	}
	nodes := map[string]bool{}
	for _, p := range pods.Items {
		nodes[p.Spec.NodeName] = true
	}
	var total int64
	for node := range nodes {
		raw, err := client.CoreV1().RESTClient().Get().AbsPath("/api/v1/nodes", node, "proxy/stats/summary").DoRaw(ctx)
		if err != nil {
			return 0, fmt.Errorf("stats of node %s: %w", node, err)
		}
		var summary struct {
			Pods []struct {
				PodRef struct{ Namespace string }
				Memory *struct {
					WorkingSetBytes *int64 `json:"workingSetBytes"`
				}
			}
		}
		if err := json.Unmarshal(raw, &summary); err != nil {
			return 0, err
		}
		for _, p := range summary.Pods {
			if p.PodRef.Namespace == triggersNamespace && p.Memory != nil && p.Memory.WorkingSetBytes != nil {
				total += *p.Memory.WorkingSetBytes
			}
		}
	}
	return total, nil
}

// RestartTriggersSink rolls the sink's pods and waits until the new ones
// are ready: the benchmark measures a sink that has seen nothing else.
func (s *Stack) RestartTriggersSink(ctx context.Context) error {
	client, err := s.cfg.clusterClient(s.cfg.triggersSinkCluster())
	if err != nil {
		return err
	}
	patch := fmt.Sprintf(`{"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":%q}}}}}`, time.Now().Format(time.RFC3339Nano))
	if _, err := client.AppsV1().Deployments(triggersNamespace).Patch(ctx, triggersSinkName, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		return err
	}
	return waitDeploymentReady(ctx, client, triggersNamespace, triggersSinkName, 3*time.Minute)
}
