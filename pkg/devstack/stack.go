package devstack

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/kcp-dev/logicalcluster/v3"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// Stack is the local real stack.
type Stack struct {
	cfg Config
	log *zap.SugaredLogger
}

// New returns the stack described by cfg.
func New(cfg Config, log *zap.SugaredLogger) *Stack { return &Stack{cfg: cfg, log: log} }

// Config returns the stack's configuration.
func (s *Stack) Config() Config { return s.cfg }

// Up builds what is missing, starts what is not running and waits until kcp
// is ready with the provider workspace created and the workload node is
// Ready. It is idempotent.
func (s *Stack) Up(ctx context.Context) error {
	c := s.cfg
	steps := []struct {
		name string
		run  func(context.Context) error
	}{
		{"build kcp " + KCPVersion, func(ctx context.Context) error { return c.ensureBuilt(ctx, c.kcpBuild()) }},
		{"build kubernetes " + KubernetesVersion, func(ctx context.Context) error { return c.ensureBuilt(ctx, c.kubernetesBuild()) }},
		{"network bridge " + c.BridgeName, func(context.Context) error { return c.ensureBridge() }},
		{"kcp (start)", func(context.Context) error { return c.startKCP() }},
		{"registry " + c.RegistryAddr, c.startRegistry},
		{"images", c.publishImages},
		{"etcd", c.startEtcd},
		{"workload control plane", s.startControlPlane},
		{"containerd", c.startContainerd},
		{"kubelet", s.startKubelet},
		{"storage (local-path provisioner)", c.startStorage},
		{"kcp (ready)", c.waitKCP},
		{"kcp workspace root:" + ProviderWorkspace, s.ensureProviderWorkspace},
		{"kcp provider (schemas, export, RBAC)", s.ensureProvider},
		{"tenant workspace root:" + DemoTenant, func(ctx context.Context) error { _, err := s.AddTenant(ctx, DemoTenant); return err }},
		{"controller", s.startController},
	}
	for _, step := range steps {
		start := time.Now()
		if err := step.run(ctx); err != nil {
			return fmt.Errorf("bring-up failed at %s: %w", step.name, err)
		}
		s.log.Infow("ready", "step", step.name, "seconds", fmt.Sprintf("%.1f", time.Since(start).Seconds()))
	}
	return nil
}

func (s *Stack) startControlPlane(ctx context.Context) error {
	c := s.cfg
	pki, err := c.ensureWorkloadPKI()
	if err != nil {
		return componentErr("workload pki", "", err)
	}
	if err := c.startAPIServer(ctx, pki); err != nil {
		return err
	}
	if err := c.controllerManagerProcess(pki).start(); err != nil {
		return err
	}
	return c.schedulerProcess().start()
}

func (s *Stack) startKubelet(ctx context.Context) error {
	pki, err := s.cfg.ensureWorkloadPKI()
	if err != nil {
		return err
	}
	return s.cfg.startKubelet(ctx, pki)
}

func (s *Stack) ensureProviderWorkspace(ctx context.Context) error {
	client, err := s.cfg.KCPClusterClient()
	if err != nil {
		return componentErr("kcp", s.cfg.LogFile("kcp"), err)
	}
	_, err = EnsureWorkspace(ctx, client, logicalcluster.NewPath("root"), ProviderWorkspace)
	return componentErr("kcp", s.cfg.LogFile("kcp"), err)
}

// processes lists the stack's processes in start order.
func (s *Stack) processes() []*process {
	c := s.cfg
	pki := workloadPKI{} // arguments do not matter for finding or stopping
	procs := []*process{
		c.registryProcess(), c.kcpProcess(), c.etcdProcess(), c.apiserverProcess(pki),
		c.controllerManagerProcess(pki), c.schedulerProcess(), c.containerdProcess(), c.kubeletProcess(),
		c.provisionerProcess(""),
	}
	if !c.controllerInCluster() {
		procs = append(procs, c.controllerProcess(""))
	}
	return procs
}

// Down stops every process of the stack by PID, removes its pod sandboxes,
// mounts and bridge. Data (PKI, etcd, registry) stays for the next Up.
func (s *Stack) Down(ctx context.Context) error {
	c := s.cfg
	var errs []error
	if err := c.kubeletProcess().stop(30 * time.Second); err != nil {
		errs = append(errs, err)
	}
	if err := c.removePodSandboxes(ctx); err != nil {
		errs = append(errs, componentErr("containerd", c.LogFile("containerd"), err))
	}
	procs := s.processes()
	for i := len(procs) - 1; i >= 0; i-- {
		if err := procs[i].stop(20 * time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	for _, pid := range c.shimPIDs() {
		if err := killAndWait(pid, shimBinary, 5*time.Second); err != nil {
			errs = append(errs, componentErr("containerd shim", "", err))
		}
	}
	if err := c.unmountAll(); err != nil {
		errs = append(errs, err)
	}
	if err := c.deleteBridge(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// mounts returns the mount points under the state directory, deepest first.
func (c Config) mounts() []string {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		mp := unescapeMount(f[4])
		if mp == c.StateDir || strings.HasPrefix(mp, c.StateDir+"/") {
			out = append(out, mp)
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

func unescapeMount(s string) string {
	return strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`).Replace(s)
}

func (c Config) unmountAll() error {
	var errs []error
	for _, mp := range c.mounts() {
		if err := unix.Unmount(mp, 0); err != nil {
			if err := unix.Unmount(mp, unix.MNT_DETACH); err != nil {
				errs = append(errs, fmt.Errorf("unmount %s: %w", mp, err))
			}
		}
	}
	return errors.Join(errs...)
}

// Running reports whether every process of the stack runs.
func (s *Stack) Running() bool {
	for _, p := range s.processes() {
		if !p.running() {
			return false
		}
	}
	return true
}

// Leftovers lists what of the stack remains on the machine: running
// processes (including containerd shims), mounts under the state directory
// and the bridge. After Down it is empty.
func (s *Stack) Leftovers() []string {
	var out []string
	for _, p := range s.processes() {
		if pid := p.pid(); pid != 0 {
			out = append(out, fmt.Sprintf("process %s (pid %d)", p.name, pid))
		}
	}
	for _, pid := range s.cfg.shimPIDs() {
		out = append(out, fmt.Sprintf("containerd shim (pid %d)", pid))
	}
	for _, mp := range s.cfg.mounts() {
		out = append(out, "mount "+mp)
	}
	if s.cfg.bridgeExists() {
		out = append(out, "bridge "+s.cfg.BridgeName)
	}
	return out
}

// ComponentStatus is what Status reports about one process.
type ComponentStatus struct {
	Name     string
	Running  bool
	PID      int
	RSSBytes int64
	LogFile  string
}

// Status reports each component.
func (s *Stack) Status() []ComponentStatus {
	var out []ComponentStatus
	for _, p := range s.processes() {
		pid := p.pid()
		st := ComponentStatus{Name: p.name, PID: pid, Running: pid != 0, LogFile: p.logFile}
		if pid != 0 {
			st.RSSBytes = processRSS(pid)
		}
		out = append(out, st)
	}
	return out
}

// StatusLines are the KEY=VALUE facts `make dev-status` prints. Scripts
// depend on the keys; keep them stable.
func (s *Stack) StatusLines() []string {
	c := s.cfg
	lines := []string{
		"KCP_KUBECONFIG=" + c.KCPAdminKubeconfig(),
		"WORKLOAD_KUBECONFIG=" + c.WorkloadAdminKubeconfig(),
		"REGISTRY=" + c.RegistryAddr,
		"HOST_IP=" + c.HostIP.String(),
		"STATE_DIR=" + c.StateDir,
		"LOG_DIR=" + c.Path("logs"),
		"PROVIDER_WORKSPACE=root:" + ProviderWorkspace,
		"TENANT_KUBECONFIG=" + c.TenantKubeconfig(DemoTenant),
		"KO_DOCKER_REPO=" + c.KoDockerRepo(),
	}
	all := true
	for _, st := range s.Status() {
		state := "stopped"
		if st.Running {
			state = fmt.Sprintf("running pid=%d rss_mib=%d", st.PID, st.RSSBytes>>20)
		} else {
			all = false
		}
		lines = append(lines, envKey(st.Name)+"_STATE="+state)
	}
	if c.controllerInCluster() {
		lines = append(lines, "CONTROLLER_STATE=in-cluster deployment "+deployNamespace+"/pipelines-service-controller")
	}
	bridge := "absent"
	if c.bridgeExists() {
		bridge = "present"
	}
	lines = append(lines, "BRIDGE_STATE="+bridge, fmt.Sprintf("MOUNTS=%d", len(c.mounts())))
	if all {
		lines = append(lines, "STACK=running")
	} else {
		lines = append(lines, "STACK=stopped")
	}
	return lines
}

func envKey(component string) string {
	return strings.ToUpper(strings.ReplaceAll(component, "-", "_"))
}
