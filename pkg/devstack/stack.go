package devstack

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/kcp-dev/logicalcluster/v3"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"
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
// is ready with the provider workspace created and every node of every
// workload cluster is Ready. It is idempotent.
func (s *Stack) Up(ctx context.Context) error {
	if err := s.cfg.validate(); err != nil {
		return err
	}
	began := time.Now()
	var took []stepTime
	for _, step := range s.upSteps() {
		start := time.Now()
		s.log.Infow("starting", "step", step.name)
		stop := s.reportProgress(step.name, start)
		err := step.run(ctx)
		stop()
		if err != nil {
			return fmt.Errorf("bring-up failed at %s: %w", step.name, err)
		}
		took = append(took, stepTime{step.name, time.Since(start)})
		s.log.Infow("ready", "step", step.name, "seconds", fmt.Sprintf("%.1f", time.Since(start).Seconds()))
	}
	s.log.Infow("stack up", "seconds", fmt.Sprintf("%.1f", time.Since(began).Seconds()), "slowest", slowest(took, 5))
	return nil
}

type stepTime struct {
	step string
	took time.Duration
}

// slowest says where the time of a bring-up went: its n slowest steps.
func slowest(took []stepTime, n int) string {
	sorted := append([]stepTime(nil), took...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].took > sorted[j].took })
	var parts []string
	for i := 0; i < n && i < len(sorted); i++ {
		parts = append(parts, fmt.Sprintf("%s %.1f s", sorted[i].step, sorted[i].took.Seconds()))
	}
	return strings.Join(parts, ", ")
}

// build builds b unless it is cached, saying first what it builds, how
// long such a build typically takes, and where its output goes.
func (s *Stack) build(ctx context.Context, b goBuild) error {
	if !s.cfg.built(b) {
		s.log.Infow("building (not cached)", "component", b.component, "version", b.version,
			"typically", b.typical.String()+" on 2 cores", "log", s.cfg.LogFile("build-"+b.component))
	}
	return s.cfg.ensureBuilt(ctx, b)
}

// progressInterval bounds the silence of a long step (a cold build of
// kcp or Kubernetes takes minutes): whoever waits sees it is still going.
const progressInterval = 30 * time.Second

// reportProgress logs every progressInterval that step is still running,
// until the returned func is called.
func (s *Stack) reportProgress(step string, start time.Time) (stop func()) {
	done := make(chan struct{})
	ticker := time.NewTicker(progressInterval)
	go func() {
		defer ticker.Stop()
		for {
			select {
			case <-done:
				return
			case <-ticker.C:
				s.log.Infow("still working", "step", step, "seconds", fmt.Sprintf("%.0f", time.Since(start).Seconds()))
			}
		}
	}()
	return func() { close(done) }
}

// concurrentBuilds is how many component builds run at once. Measured on
// 2 cores: one cold build at a time kept the cores about 65 % busy
// (downloading modules, linking on one core); two at a time fill those
// gaps.
const concurrentBuilds = 2

// buildAll builds every component the stack runs that is not cached yet,
// concurrentBuilds at a time, the longest first.
func (s *Stack) buildAll(ctx context.Context) error {
	c := s.cfg
	builds := []struct {
		name  string
		build func(context.Context) error
	}{
		{"kcp " + KCPVersion, func(ctx context.Context) error { return s.build(ctx, c.kcpBuild()) }},
		{"kubernetes " + KubernetesVersion, func(ctx context.Context) error { return s.build(ctx, c.kubernetesBuild()) }},
		{"tkn " + TknVersion + " (bin/tkn)", s.installTkn},
		{"results " + ResultsVersion, func(ctx context.Context) error { return s.build(ctx, c.resultsBuild()) }},
		{"kube-router " + KubeRouterVersion, func(ctx context.Context) error { return s.build(ctx, c.kubeRouterBuild()) }},
		{"containerd " + ContainerdVersion, func(ctx context.Context) error { return s.build(ctx, c.containerdBuild()) }},
		{"runc " + RuncVersion, func(ctx context.Context) error { return s.build(ctx, c.runcBuild()) }},
		{"gitea " + GiteaVersion, func(ctx context.Context) error { return s.build(ctx, c.giteaBuild()) }},
	}
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(concurrentBuilds)
	for _, b := range builds {
		g.Go(func() error {
			start := time.Now()
			if err := b.build(ctx); err != nil {
				return fmt.Errorf("build %s: %w", b.name, err)
			}
			if took := time.Since(start); took > time.Second {
				s.log.Infow("built", "component", b.name, "seconds", fmt.Sprintf("%.1f", took.Seconds()))
			}
			return nil
		})
	}
	return g.Wait()
}

// upStep is one step of the bring-up.
type upStep struct {
	name string
	run  func(context.Context) error
}

func (s *Stack) upSteps() []upStep {
	c := s.cfg
	steps := []upStep{
		{"builds (two at a time)", s.buildAll},
		{"programs from the checkout (controller, gateway, provisioner, triggers sink)", c.buildCheckout},
		{"network bridge " + c.BridgeName, func(context.Context) error { return c.ensureBridge() }},
		{"host firewall (Results API on loopback only)", func(context.Context) error { return c.ensureHostFirewall() }},
		{"kcp etcd 127.0.0.1:" + strconv.Itoa(c.KCPEtcdPort), s.startKCPEtcd},
		{"kcp (start)", func(context.Context) error { return c.startKCP() }},
		{"registry " + c.RegistryAddr, c.startRegistry},
		{"images", c.publishImages},
	}
	steps = append(steps, s.workloadSteps()...)
	return append(steps,
		upStep{"node labels", c.labelNodes},
		upStep{"cluster DNS (CoreDNS " + CoreDNSVersion + ")", s.startClusterDNS},
		upStep{"storage (local-path provisioners)", c.startStorage},
		upStep{"postgres 127.0.0.1:" + strconv.Itoa(PostgresPort), c.startPostgres},
		upStep{"results api " + c.ResultsAddr(), c.startResultsAPI},
		upStep{"forge (Gitea " + GiteaVersion + ") " + c.ForgeURL(), c.startForge},
		upStep{"forge mirrors (config/forge-mirrors)", s.seedMirrors},
		upStep{"kcp (ready)", c.waitKCP},
		upStep{"kcp " + SecondShard + " " + c.ShardURL(SecondShard), s.startSecondShard},
		upStep{"kcp-front-proxy " + c.FrontProxyURL(), s.startFrontProxy},
		upStep{"kcp workspace root:" + ProviderWorkspace, s.ensureProviderWorkspace},
		upStep{"kcp provider (schemas, export, RBAC)", s.ensureProvider},
		upStep{"gateway " + c.GatewayURL(), s.startGateway},
		upStep{"tenant workspace root:" + DemoTenant, func(ctx context.Context) error { _, err := s.AddTenant(ctx, DemoTenant); return err }},
		upStep{"triggers sink (Deployment on " + c.triggersSinkCluster().Name + ")", s.startTriggersSink},
		upStep{"kcp fleet (workload clusters registered)", s.registerWorkloadClusters},
		upStep{"controller", s.startController},
	)
}

// workloadSteps start each cluster's control plane, then its nodes'
// containerd and kubelet, each node waited for until Ready.
func (s *Stack) workloadSteps() []upStep {
	c := s.cfg
	var steps []upStep
	for _, cl := range c.Clusters {
		steps = append(steps,
			upStep{cl.Name + " etcd", func(ctx context.Context) error { return startEtcd(ctx, c.clusterEtcdProcess(cl), cl.EtcdPort) }},
			upStep{cl.Name + " control plane", func(ctx context.Context) error { return c.startControlPlane(ctx, cl) }})
		for _, n := range c.clusterNodes(cl) {
			steps = append(steps,
				upStep{n.name + " network", func(context.Context) error { return c.ensureNodeNetwork(n) }},
				upStep{n.name + " containerd", func(ctx context.Context) error { return c.startContainerd(ctx, n) }},
				upStep{n.name + " kubelet", func(ctx context.Context) error { return c.startKubelet(ctx, cl, n) }},
				upStep{n.name + " network policy agent", func(ctx context.Context) error { return c.startNetworkPolicyAgent(ctx, cl, n) }},
				upStep{n.name + " kube-proxy", func(ctx context.Context) error { return c.startKubeProxy(ctx, cl, n) }})
		}
	}
	return steps
}

func (s *Stack) ensureProviderWorkspace(ctx context.Context) error {
	client, err := s.cfg.KCPClusterClient()
	if err != nil {
		return componentErr("kcp", s.cfg.LogFile("kcp"), err)
	}
	_, err = EnsureWorkspace(ctx, client, logicalcluster.NewPath("root"), ProviderWorkspace)
	return componentErr("kcp", s.cfg.LogFile("kcp"), err)
}

// StopWorkloadAPIServer stops one cluster's kube-apiserver by PID; its
// etcd, nodes and pods keep running. The apiserver stops listening at once
// on SIGTERM but holds its watches open for long: it gets SIGKILL after 5 s
// (it keeps no state of its own).
func (s *Stack) StopWorkloadAPIServer(name string) error {
	cl, err := s.cfg.workloadCluster(name)
	if err != nil {
		return err
	}
	return s.cfg.apiserverProcess(cl, clusterPKI{}).stop(5 * time.Second)
}

// StartWorkloadAPIServer starts one cluster's kube-apiserver again and
// waits until it is ready (/readyz).
func (s *Stack) StartWorkloadAPIServer(ctx context.Context, name string) error {
	cl, err := s.cfg.workloadCluster(name)
	if err != nil {
		return err
	}
	pki, err := s.cfg.ensureClusterPKI(cl)
	if err != nil {
		return componentErr(cl.Name+" pki", "", err)
	}
	return s.cfg.startAPIServer(ctx, cl, pki)
}

// WipeNodeContainers makes a node lose its containers, as a node that
// rebooted does: its kubelet stops, every pod sandbox (and so every
// container) on it is removed, and the kubelet starts again. The pods
// stay in the apiserver; the kubelet finds their containers gone.
func (s *Stack) WipeNodeContainers(ctx context.Context, node string) error {
	c := s.cfg
	for _, n := range c.workloadNodes() {
		if n.name != node {
			continue
		}
		cl, err := c.workloadCluster(n.cluster)
		if err != nil {
			return err
		}
		if err := c.kubeletProcess(n).stop(30 * time.Second); err != nil {
			return err
		}
		if err := c.removePodSandboxes(ctx, n); err != nil {
			return componentErr(c.containerdProcess(n).name, "", err)
		}
		return c.startKubelet(ctx, cl, n)
	}
	return fmt.Errorf("no workload node %q", node)
}

// processes lists the stack's processes in start order.
func (s *Stack) processes() []*process {
	c := s.cfg
	// Down stops them in reverse: the Results API before its PostgreSQL.
	procs := []*process{c.registryProcess(), c.kcpEtcdProcess(), c.kcpProcess(), c.kcpShardEtcdProcess(), c.kcpShardProcess(), c.frontProxyProcess(), c.postgresProcess(), c.resultsAPIProcess(), c.forgeProcess(), c.gatewayProcess("")}
	for _, cl := range c.Clusters {
		procs = append(procs, c.controlPlaneProcesses(cl)...)
		for _, n := range c.clusterNodes(cl) {
			procs = append(procs, c.containerdProcess(n), c.kubeletProcess(n), c.networkPolicyAgentProcess(cl, n), c.kubeProxyProcess(cl, n), c.provisionerProcess(cl, n, ""))
		}
	}
	if !c.controllerInCluster() {
		procs = append(procs, c.controllerProcess(""))
		// Replicas a test started and did not stop.
		for n := 2; n <= MaxControllerReplicas; n++ {
			if p := c.controllerReplicaProcess(n, ""); p.running() {
				procs = append(procs, p)
			}
		}
	}
	return procs
}

// Down stops every process of the stack by PID (every kubelet first),
// removes the pod sandboxes of every node, the shims, mounts, nodes' cgroup
// roots, the nodes' network namespaces and the bridge. Data (PKI, etcd,
// registry) stays for the next Up.
func (s *Stack) Down(ctx context.Context) error {
	c := s.cfg
	nodes := c.workloadNodes()
	var errs []error
	for _, n := range nodes {
		if err := c.kubeletProcess(n).stop(30 * time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	for _, n := range nodes {
		if err := c.removePodSandboxes(ctx, n); err != nil {
			p := c.containerdProcess(n)
			errs = append(errs, componentErr(p.name, p.logFile, err))
		}
	}
	// The S3 service runs only while a test wants it: not part of the
	// stack's status, but stopped with it.
	procs := append([]*process{c.s3Process("", "")}, s.processes()...)
	for i := len(procs) - 1; i >= 0; i-- {
		if err := procs[i].stop(20 * time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	for _, n := range nodes {
		for _, pid := range shimPIDs(n) {
			if err := killAndWait(pid, c.shimBinary(), 5*time.Second); err != nil {
				errs = append(errs, componentErr("containerd shim of "+n.name, "", err))
			}
		}
		for pid, exe := range podLeftovers(n.cgroupRoot) {
			if err := killAndWait(pid, exe, 5*time.Second); err != nil {
				errs = append(errs, componentErr("a container process left on "+n.name, "", err))
			}
		}
	}
	if err := c.unmountAll(); err != nil {
		errs = append(errs, err)
	} else if err := os.RemoveAll(c.RuntimeDir); err != nil {
		// Nothing is mounted under it any more: only what a running node keeps.
		errs = append(errs, err)
	}
	for _, n := range nodes {
		if n.ownsCgroupRoot() {
			if err := removeCgroupRoot(n.cgroupRoot); err != nil {
				errs = append(errs, componentErr(n.name, "", err))
			}
		}
	}
	for _, n := range nodes {
		if err := c.deleteNodeNetwork(n); err != nil {
			errs = append(errs, err)
		}
	}
	if err := c.deleteBridge(); err != nil {
		errs = append(errs, err)
	}
	if err := c.deleteHostFirewall(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// mounts returns the mount points under the state and runtime directories,
// deepest first.
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
		for _, dir := range []string{c.StateDir, c.RuntimeDir} {
			if mp == dir || strings.HasPrefix(mp, dir+"/") {
				out = append(out, mp)
				break
			}
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
// processes (including containerd shims), mounts under the state
// directory, nodes' cgroup roots and the bridge. After Down it is empty.
func (s *Stack) Leftovers() []string {
	var out []string
	for _, p := range s.processes() {
		if pid := p.pid(); pid != 0 {
			out = append(out, fmt.Sprintf("process %s (pid %d)", p.name, pid))
		}
	}
	for _, n := range s.cfg.workloadNodes() {
		for _, pid := range shimPIDs(n) {
			out = append(out, fmt.Sprintf("containerd shim of %s (pid %d)", n.name, pid))
		}
	}
	for _, mp := range s.cfg.mounts() {
		out = append(out, "mount "+mp)
	}
	for _, n := range s.cfg.workloadNodes() {
		if n.ownsCgroupRoot() {
			for _, dir := range cgroupRootDirs(n.cgroupRoot) {
				out = append(out, "cgroup "+dir)
			}
		}
	}
	for _, n := range s.cfg.workloadNodes() {
		if _, err := os.Stat(n.netns()); err == nil {
			out = append(out, "network namespace "+n.netnsName())
		}
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
	}
	for _, cl := range c.Clusters {
		lines = append(lines, envKey(cl.Name)+"_KUBECONFIG="+c.adminKubeconfig(cl))
	}
	lines = append(lines,
		"REGISTRY="+c.RegistryAddr,
		"HOST_IP="+c.HostIP.String(),
		"STATE_DIR="+c.StateDir,
		"LOG_DIR="+c.Path("logs"),
		"PROVIDER_WORKSPACE=root:"+ProviderWorkspace,
		"TENANT_KUBECONFIG="+c.TenantKubeconfig(DemoTenant),
		"KO_DOCKER_REPO="+c.KoDockerRepo(),
		"RESULTS_API="+c.ResultsURL(),
		"PAC_URL="+c.PipelinesAsCodeURL(),
		"TRIGGERS_URL="+c.TriggersURL(),
		"TRIGGERS_SINK="+c.TriggersSinkURL(),
		"FORGE_URL="+c.ForgeURL(),
		"FORGE_TOKEN_FILE="+c.ForgeTokenFile(),
	)
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
