// Package controller assembles the pipelines-service controller from its
// configuration: kcp and workload clients, the virtual workspace, and the
// reconcilers.
package controller

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	kcpdynamic "github.com/kcp-dev/client-go/dynamic"
	kcpdynamicinformer "github.com/kcp-dev/client-go/dynamic/dynamicinformer"
	"github.com/kcp-dev/logicalcluster/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/tektoncd/pipeline/pkg/apis/pipeline"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"

	"github.com/pipelines-service/pipelines-service/pkg/fleet"
	"github.com/pipelines-service/pipelines-service/pkg/images"
	"github.com/pipelines-service/pipelines-service/pkg/kcp"
	"github.com/pipelines-service/pipelines-service/pkg/metrics"
	"github.com/pipelines-service/pipelines-service/pkg/pac"
	"github.com/pipelines-service/pipelines-service/pkg/pac/runner"
	"github.com/pipelines-service/pipelines-service/pkg/partition"
	"github.com/pipelines-service/pipelines-service/pkg/provider"
	"github.com/pipelines-service/pipelines-service/pkg/reconciler"
	"github.com/pipelines-service/pipelines-service/pkg/reconciler/customrun"
	"github.com/pipelines-service/pipelines-service/pkg/reconciler/eventlistener"
	"github.com/pipelines-service/pipelines-service/pkg/reconciler/pacrun"
	"github.com/pipelines-service/pipelines-service/pkg/reconciler/persistentvolumeclaim"
	"github.com/pipelines-service/pipelines-service/pkg/reconciler/pipelinerun"
	"github.com/pipelines-service/pipelines-service/pkg/reconciler/recorder"
	"github.com/pipelines-service/pipelines-service/pkg/reconciler/repository"
	"github.com/pipelines-service/pipelines-service/pkg/reconciler/taskrun"
	"github.com/pipelines-service/pipelines-service/pkg/reconciler/workloadgc"
	"github.com/pipelines-service/pipelines-service/pkg/reconciler/workloadnamespace"
	"github.com/pipelines-service/pipelines-service/pkg/resolution"
	"github.com/pipelines-service/pipelines-service/pkg/results"
	"github.com/pipelines-service/pipelines-service/pkg/tenantconfig"
	"github.com/pipelines-service/pipelines-service/pkg/workload"
)

// Config is the controller's configuration file.
type Config struct {
	// KCPKubeconfig authenticates the controller to kcp; its server is
	// kcp's base URL (no workspace path).
	KCPKubeconfig string `json:"kcpKubeconfig"`
	// ProviderWorkspace is the path of the workspace holding the export.
	ProviderWorkspace string `json:"providerWorkspace"`
	// APIExport is the name of the export (and its endpoint slice).
	APIExport string `json:"apiExport,omitempty"`
	// FailoverAfter is how long a workload cluster may not answer before
	// the runs placed there move (not started) or fail (running), e.g.
	// "15s".
	FailoverAfter metav1.Duration `json:"failoverAfter,omitempty"`
	// WorkloadSweepInterval is how often the leader sweeps every workload
	// cluster for what no tenant object accounts for any more: pods of
	// deleted or moved runs, then their emptied namespaces (default 1m).
	// A sweep reads only the informers' caches.
	WorkloadSweepInterval metav1.Duration `json:"workloadSweepInterval,omitempty"`
	// TektonImages are Tekton's helper images, built with ko, and its
	// shell image, each pinned by digest (pinnedTektonImages).
	TektonImages pipeline.Images `json:"tektonImages"`
	// ImageMap is the mapping step images resolve through.
	ImageMap images.Config `json:"imageMap"`
	// Workers is the number of reconcile workers per kind (default 16).
	// A reconcile mostly waits: a write through kcp's virtual workspace
	// takes 0.3-1 s under load (an authorisation round trip to the shard
	// each), so with few workers a new run's first pod waits in the queue
	// behind status writes of runs already running.
	Workers int `json:"workers,omitempty"`
	// ClientQPS and ClientBurst limit the controller's requests to kcp and
	// to the workload cluster (client-go's defaults, 5 and 10, throttle a
	// controller serving many workspaces).
	ClientQPS   float32 `json:"clientQPS,omitempty"`
	ClientBurst int     `json:"clientBurst,omitempty"`
	// KCPWritesInFlight bounds the reconcilers' writes in flight to kcp
	// at once (default 16; 0 or less: no bound); the others wait their turn
	// in the controller. kcp serves the writes in flight side by side, so
	// with dozens of them each takes seconds, the leader's Lease renewal
	// (its own client, never bounded) among them.
	KCPWritesInFlight int `json:"kcpWritesInFlight,omitempty"`
	// ResultsAPI, when set, is the Tekton Results API (host:port, gRPC)
	// every finished run is recorded in (pkg/reconciler/recorder).
	ResultsAPI string `json:"resultsAPI,omitempty"`
	// ResultsRetention is the platform's retention of archived runs in
	// the workspaces, as the data of upstream's retention ConfigMap
	// (runAt, defaultRetention, policies); a tenant overrides it with its
	// own ConfigMap tekton-results-config-results-retention-policy in
	// tekton-pipelines.
	ResultsRetention map[string]string `json:"resultsRetention,omitempty"`
	// TriggersURL is the base of EventListeners' addresses: the triggers
	// sink's path prefix as reached from outside (e.g.
	// https://gateway:8443/hooks). Empty: no sink serves the platform,
	// and listeners say so.
	TriggersURL string `json:"triggersURL,omitempty"`
	// TenantEgress are the destinations tenant pods may connect to beyond
	// their own namespace and cluster DNS (e.g. the platform's git forge):
	// every workload namespace's network policy opens them.
	TenantEgress []workload.Egress `json:"tenantEgress,omitempty"`
	// Resolution configures remote resolution (git, bundles, http and
	// cluster resolvers).
	Resolution ResolutionConfig `json:"resolution,omitempty"`
	// PipelinesAsCode, when Listen is set, serves Pipelines as Code:
	// Repositories of every workspace and their forge's webhooks.
	PipelinesAsCode PipelinesAsCodeConfig `json:"pipelinesAsCode,omitempty"`
	// DebugAddress, when set, serves /readyz, /metrics (Prometheus) and
	// Go's profiles (/debug/pprof/) there, e.g. 127.0.0.1:6061.
	DebugAddress string `json:"debugAddress,omitempty"`
	// MetricsAddress, when set, serves /metrics and /readyz only (no
	// profiles, no admission state), for Prometheus and the kubelet to
	// reach on the pod's address, e.g. :9090.
	MetricsAddress string `json:"metricsAddress,omitempty"`
	// Metrics shapes what /metrics exports.
	Metrics MetricsConfig `json:"metrics,omitempty"`
	// LeaderElection chooses the replica that reconciles.
	LeaderElection LeaderElectionConfig `json:"leaderElection,omitempty"`
}

// MetricsConfig shapes the run metrics' labels.
type MetricsConfig struct {
	// NoWorkspaceLabel drops the workspace label from the run and
	// admission metrics: the run series are then upstream Tekton's exactly.
	NoWorkspaceLabel bool `json:"noWorkspaceLabel,omitempty"`
	// MaxWorkspaces bounds the workspace label's values (default 1000);
	// runs of further workspaces count under "other".
	MaxWorkspaces int `json:"maxWorkspaces,omitempty"`
	// MaxLabelValues bounds the labels tenants choose the values of
	// (namespace, task, pipeline) the same way (default 1000 each).
	MaxLabelValues int `json:"maxLabelValues,omitempty"`
}

// ResolutionConfig is the platform's side of remote resolution.
type ResolutionConfig struct {
	// AllowedHosts are the host:port entries the git, http and bundles
	// resolvers may fetch from (exact entries; none by default).
	AllowedHosts []string `json:"allowedHosts,omitempty"`
	// DeniedNetworks are CIDRs never connected to even where a name
	// resolves into them (the node, pod and service networks), besides
	// loopback and link-local.
	DeniedNetworks []string `json:"deniedNetworks,omitempty"`
	// MaxFetchTimeout caps a fetch (default 1m).
	MaxFetchTimeout metav1.Duration `json:"maxFetchTimeout,omitempty"`
	// Defaults are the platform's resolver ConfigMaps' data by name
	// (resolvers-feature-flags, git-resolver-config, ...), what a
	// workspace without its own in tekton-pipelines-resolvers gets.
	Defaults map[string]map[string]string `json:"defaults,omitempty"`
}

// PipelinesAsCodeConfig is the platform's side of Pipelines as Code.
type PipelinesAsCodeConfig struct {
	// Listen is where the webhook intake listens (plain HTTP: the gateway
	// is in front, forges post to https://<gateway>/pac), e.g.
	// 127.0.0.1:8097. Empty: Pipelines as Code is not served.
	Listen string `json:"listen,omitempty"`
	// ConsoleURL is the front door's base URL, where links to runs on the
	// forge point.
	ConsoleURL string `json:"consoleURL,omitempty"`
}

// egress is the checked form of the allow- and deny-lists.
func (r ResolutionConfig) egress() (resolution.Egress, error) {
	e := resolution.Egress{Allowed: r.AllowedHosts}
	for _, cidr := range r.DeniedNetworks {
		p, err := netip.ParsePrefix(cidr)
		if err != nil {
			return e, fmt.Errorf("resolution.deniedNetworks: %w", err)
		}
		e.Denied = append(e.Denied, p)
	}
	for _, h := range r.AllowedHosts {
		if _, _, err := net.SplitHostPort(h); err != nil {
			return e, fmt.Errorf("resolution.allowedHosts: %q is not host:port", h)
		}
	}
	return e, nil
}

// pinnedTektonImages refuses a Tekton image that is not pinned by digest,
// as Tekton's release pins them. Tekton's pod builder sets no pull policy
// on its own containers, so a tag such as :latest takes Always: every
// TaskRun's pod would pull it again, and none could start while the
// registry is down. The Windows shell image is never run on Linux nodes.
func pinnedTektonImages(imgs pipeline.Images) error {
	for _, image := range []struct{ field, ref string }{
		{"EntrypointImage", imgs.EntrypointImage},
		{"NopImage", imgs.NopImage},
		{"SidecarLogResultsImage", imgs.SidecarLogResultsImage},
		{"WorkingDirInitImage", imgs.WorkingDirInitImage},
		{"ShellImage", imgs.ShellImage},
	} {
		if _, err := name.NewDigest(image.ref); err != nil {
			return fmt.Errorf("%s %q is not pinned by digest (image@sha256:...): Tekton's own containers take the image's default pull policy, which for a tag is to pull it for every pod: %w", image.field, image.ref, err)
		}
	}
	return nil
}

// LoadConfig reads and checks a Config.
func LoadConfig(path string) (Config, error) {
	cfg := Config{APIExport: provider.ExportName, Workers: 16, ClientQPS: 50, ClientBurst: 100, KCPWritesInFlight: 16}
	data, err := os.ReadFile(path)
	if err != nil {
		return cfg, err
	}
	if err := yaml.UnmarshalStrict(data, &cfg); err != nil {
		return cfg, fmt.Errorf("%s: %w", path, err)
	}
	if cfg.KCPKubeconfig == "" || cfg.ProviderWorkspace == "" {
		return cfg, fmt.Errorf("%s: kcpKubeconfig and providerWorkspace are required", path)
	}
	if err := cfg.TektonImages.Validate(); err != nil {
		return cfg, fmt.Errorf("%s: tektonImages: %w", path, err)
	}
	if err := pinnedTektonImages(cfg.TektonImages); err != nil {
		return cfg, fmt.Errorf("%s: tektonImages: %w", path, err)
	}
	if _, err := cfg.Resolution.egress(); err != nil {
		return cfg, fmt.Errorf("%s: %w", path, err)
	}
	for _, e := range cfg.TenantEgress {
		if err := e.Validate(); err != nil {
			return cfg, fmt.Errorf("%s: tenantEgress: %w", path, err)
		}
	}
	if err := cfg.LeaderElection.defaults(); err != nil {
		return cfg, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// Run runs the controller until ctx ends.
func Run(ctx context.Context, log *zap.SugaredLogger, cfg Config) error {
	kcpRest, err := clientcmd.BuildConfigFromFlags("", cfg.KCPKubeconfig)
	if err != nil {
		return fmt.Errorf("kcp kubeconfig: %w", err)
	}
	kcpRest.QPS, kcpRest.Burst = cfg.ClientQPS, cfg.ClientBurst
	m := metrics.New(metrics.Options{WorkspaceLabel: !cfg.Metrics.NoWorkspaceLabel,
		MaxWorkspaces: cfg.Metrics.MaxWorkspaces, MaxLabelValues: cfg.Metrics.MaxLabelValues})
	debug := &debugServer{metrics: m}
	limit, timed := m.LimitWrites("kcp", cfg.KCPWritesInFlight), m.WrapTransport("kcp")
	kcpRest.WrapTransport = func(rt http.RoundTripper) http.RoundTripper { return limit(timed(rt)) }
	if cfg.DebugAddress != "" {
		if err := debug.serve(ctx, log, cfg.DebugAddress, true); err != nil {
			return fmt.Errorf("debug address: %w", err)
		}
	}
	if cfg.MetricsAddress != "" {
		if err := debug.serve(ctx, log, cfg.MetricsAddress, false); err != nil {
			return fmt.Errorf("metrics address: %w", err)
		}
	}
	// Every shard that holds a workspace bound to the export serves it at
	// a virtual workspace of its own: one client over all of them.
	tenants, err := kcp.TenantShards(ctx, log, kcpRest, logicalcluster.NewPath(cfg.ProviderWorkspace), cfg.APIExport)
	if err != nil {
		return err
	}
	log.Infow("watching tenant workspaces through the APIExport's virtual workspaces", "urls", tenants.URLs())
	workloads, err := fleet.New(fleet.Options{
		Provider:      kcp.ForCluster(kcpRest, logicalcluster.Name(cfg.ProviderWorkspace)),
		WorkloadQPS:   cfg.ClientQPS,
		WorkloadBurst: cfg.ClientBurst,
		WrapTransport: m.WrapTransport,
		FailoverAfter: cfg.FailoverAfter.Duration,
		Isolation:     workload.Isolation{Egress: cfg.TenantEgress},
		Log:           log.Named("fleet"),
	})
	if err != nil {
		return err
	}
	debug.fleet.Store(workloads)
	m.Register(m.Admission(workloads.Admission().State))
	parts, err := newPartition(cfg.LeaderElection, kcpRest, logicalcluster.Name(cfg.ProviderWorkspace), m, workloads.Admission().Demand, log)
	if err != nil {
		return err
	}
	if !cfg.LeaderElection.Disabled {
		// Replicas that split the workspaces split each cluster's limit too.
		workloads.Admission().SetShare(parts.Share)
	}
	debug.parts.Store(parts)
	m.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "pipelines_service_parts_held",
		Help: "The parts of the tenant workspaces this replica reconciles now."}, func() float64 { return float64(len(parts.Held())) }))
	tenantInformers := kcpdynamicinformer.NewDynamicSharedInformerFactory(tenants, 0)
	tektonConfig := tenantconfig.New(tenants, workload.ManagedByValue, cfg.Resolution.Defaults)
	workspaces, err := kcp.NewWorkspaceClients(tenants)
	if err != nil {
		return err
	}
	egress, _ := cfg.Resolution.egress() // checked by LoadConfig
	resolver := resolution.New(resolution.Options{Workspaces: workspaces, Config: tektonConfig, Egress: egress,
		MaxFetchTimeout: cfg.Resolution.MaxFetchTimeout.Duration, Log: log.Named("resolution")})
	if err := resolver.Start(ctx); err != nil {
		return err
	}
	events := reconciler.NewEvents(ctx, log.Named("events"), workspaces.Kube)
	taskRuns, err := taskrun.New(taskrun.Options{
		Gate:            parts,
		Tenants:         tenants,
		TenantInformers: tenantInformers,
		Fleet:           workloads,
		Images:          cfg.TektonImages,
		Resolver:        images.NewResolver(cfg.ImageMap),
		Config:          tektonConfig,
		Resolution:      resolver,
		Workspaces:      workspaces,
		Events:          events,
		Metrics:         m,
		Log:             log.Named("taskrun"),
	})
	if err != nil {
		return err
	}
	pipelineRuns, err := pipelinerun.New(pipelinerun.Options{
		Gate:            parts,
		Tenants:         tenants,
		TenantInformers: tenantInformers,
		Config:          tektonConfig,
		Fleet:           workloads,
		Resolution:      resolver,
		Workspaces:      workspaces,
		Events:          events,
		Metrics:         m,
		Log:             log.Named("pipelinerun"),
	})
	if err != nil {
		return err
	}
	claims, err := persistentvolumeclaim.New(persistentvolumeclaim.Options{
		Gate:            parts,
		Tenants:         tenants,
		TenantInformers: tenantInformers,
		Fleet:           workloads,
		Metrics:         m,
		Log:             log.Named("persistentvolumeclaim"),
	})
	if err != nil {
		return err
	}
	recording, err := newRecorder(cfg, parts, tenants, tenantInformers, workloads, tektonConfig, events, m, log)
	if err != nil {
		return err
	}
	listeners, err := eventlistener.New(eventlistener.Options{Gate: parts, Tenants: tenants, TenantInformers: tenantInformers,
		Workspaces: workspaces, URL: cfg.TriggersURL, Metrics: m, Log: log.Named("eventlistener")})
	if err != nil {
		return err
	}
	pacs, err := newPipelinesAsCode(cfg.PipelinesAsCode, parts, tenants, tenantInformers, workspaces, egress, workloads, m, log)
	if err != nil {
		return err
	}
	customRuns, err := customrun.New(customrun.Options{Gate: parts, Tenants: tenants, TenantInformers: tenantInformers, Metrics: m, Log: log.Named("customrun")})
	if err != nil {
		return err
	}
	leader := &leaderGate{}
	namespaces := workloadnamespace.New(workloads, leader, m, log.Named("workloadnamespace"))
	leader.OnTerm(namespaces.Resync)
	collector := workloadgc.New(workloadgc.Options{Fleet: workloads, TenantInformers: tenantInformers,
		Interval: cfg.WorkloadSweepInterval.Duration, Log: log.Named("workloadgc")})
	if err := watchRuns(m, tenantInformers); err != nil {
		return err
	}
	if err := tektonConfig.Start(ctx); err != nil {
		return err
	}
	if err := startTenantInformers(ctx, tenantInformers); err != nil {
		return err
	}
	for _, h := range []interface{ Parts() partition.Handler }{taskRuns, pipelineRuns, claims, listeners, customRuns} {
		parts.Handle(h.Parts())
	}
	if pacs != nil {
		parts.Handle(pacs.repositories.Parts())
		parts.Handle(pacs.runs.Parts())
	}
	if recording != nil {
		parts.Handle(recording.Parts())
	}
	// A standby replica keeps its caches and its view of the workload
	// clusters warm, and writes no WorkloadCluster status.
	workloads.SetStandby(!cfg.LeaderElection.Disabled)
	if err := workloads.Start(ctx); err != nil {
		return err
	}
	debug.ready.Store(true)
	log.Infow("informers synced")
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return parts.Run(ctx) })
	// Every replica reconciles the workspaces of the parts it holds.
	g.Go(func() error {
		go pipelineRuns.Run(ctx, cfg.Workers)
		go claims.Run(ctx, cfg.Workers)
		go listeners.Run(ctx, 2)
		go customRuns.Run(ctx, 1)
		go namespaces.Run(ctx, 1) // gated by the leader's terms
		if recording != nil {
			go recording.Run(ctx, 2)
		}
		if pacs != nil {
			go pacs.repositories.Run(ctx, 2)
			go pacs.runs.Run(ctx, 2)
		}
		taskRuns.Run(ctx, cfg.Workers)
		return nil
	})
	// The leader does the platform's own work.
	g.Go(func() error {
		return lead(ctx, log, kcpRest, logicalcluster.Name(cfg.ProviderWorkspace), cfg.LeaderElection, m, func(term context.Context) error {
			workloads.SetStandby(false)
			defer workloads.SetStandby(!cfg.LeaderElection.Disabled)
			closed := leader.open(term)
			defer closed()
			var collecting sync.WaitGroup
			defer collecting.Wait()
			collecting.Go(func() { collector.Run(term) })
			if pacs != nil {
				served, err := pacs.serve(term)
				if err != nil {
					return err
				}
				defer served()
			}
			<-term.Done()
			return nil
		})
	})
	return g.Wait()
}

// newRecorder is the Results recorder, nil when no Results API is
// configured.
func newRecorder(cfg Config, gate reconciler.Gate, tenants kcpdynamic.ClusterInterface, informers kcpdynamicinformer.DynamicSharedInformerFactory, workloads *fleet.Fleet, tenantConfig *tenantconfig.Store, events *reconciler.Events, m *metrics.Metrics, log *zap.SugaredLogger) (*recorder.Controller, error) {
	if cfg.ResultsAPI == "" {
		log.Infow("no Results API configured; runs are not archived")
		return nil, nil
	}
	clients, err := results.Dial(cfg.ResultsAPI)
	if err != nil {
		return nil, err
	}
	return recorder.New(recorder.Options{Gate: gate, Tenants: tenants, TenantInformers: informers, Fleet: workloads, Results: clients,
		Retention: cfg.ResultsRetention, RetentionSource: tenantConfig, Events: events, Metrics: m, Log: log.Named("recorder")})
}

// watchRuns feeds Tekton's run metrics from the TaskRun and PipelineRun
// informers (registered before the informers start, so that no update is
// missed).
func watchRuns(m *metrics.Metrics, informers kcpdynamicinformer.DynamicSharedInformerFactory) error {
	taskRuns := informers.ForResource(taskrun.TaskRunsResource)
	pipelineRuns := informers.ForResource(pipelinerun.PipelineRunsResource)
	return m.Runs.Watch(taskRuns.Informer(), pipelineRuns.Informer(), taskRuns.Lister(), pipelineRuns.Lister())
}

// startTenantInformers starts the tenant informers and waits for their
// caches.
func startTenantInformers(ctx context.Context, tenants kcpdynamicinformer.DynamicSharedInformerFactory) error {
	tenants.Start(ctx.Done())
	for gvr, synced := range tenants.WaitForCacheSync(ctx.Done()) {
		if !synced {
			return fmt.Errorf("tenant informer for %s did not sync", gvr)
		}
	}
	return nil
}

// pipelinesAsCode is Pipelines as Code in the controller: the Repository
// reconciler (and the index it keeps), the runs' starter and reporter,
// and the webhook intake.
type pipelinesAsCode struct {
	listen       string
	index        *pac.Index
	runner       *runner.Runner
	repositories *repository.Controller
	runs         *pacrun.Controller
	log          *zap.SugaredLogger
}

// newPipelinesAsCode wires Pipelines as Code (nil when not configured);
// its informers must be registered before the tenant informers start.
func newPipelinesAsCode(cfg PipelinesAsCodeConfig, gate reconciler.Gate, tenants kcpdynamic.ClusterInterface, informers kcpdynamicinformer.DynamicSharedInformerFactory,
	workspaces *kcp.WorkspaceClients, egress resolution.Egress, workloads *fleet.Fleet, m *metrics.Metrics, log *zap.SugaredLogger) (*pipelinesAsCode, error) {
	if cfg.Listen == "" {
		log.Infow("no Pipelines as Code intake configured; Repositories are not served")
		return nil, nil
	}
	log = log.Named("pac")
	index := pac.NewIndex()
	run := runner.New(runner.Options{Workspaces: workspaces, Egress: egress, ConsoleURL: cfg.ConsoleURL, Log: log,
		PodLogs: pacrun.PodLogs{Fleet: workloads, TenantInformers: informers}})
	repos, err := repository.New(repository.Options{Gate: gate, Tenants: tenants, TenantInformers: informers, Workspaces: workspaces,
		Index: index, Egress: egress, Metrics: m, Log: log.Named("repository")})
	if err != nil {
		return nil, err
	}
	runs, err := pacrun.New(pacrun.Options{Gate: gate, TenantInformers: informers, Runs: run, Metrics: m, Log: log.Named("runs")})
	if err != nil {
		return nil, err
	}
	return &pipelinesAsCode{listen: cfg.Listen, index: index, runner: run, repositories: repos, runs: runs, log: log}, nil
}

// serve serves the intake until ctx ends (the informers have synced, so
// the index holds every Repository); stopped waits for the intake to end.
func (p *pipelinesAsCode) serve(ctx context.Context) (stopped func(), err error) {
	ln, err := net.Listen("tcp", p.listen)
	if err != nil {
		return nil, fmt.Errorf("pipelinesAsCode.listen: %w", err)
	}
	intake := pac.NewIntake(ctx, p.index, p.runner, 4, 100, p.log.Named("intake"))
	srv := &http.Server{Handler: intake, ReadHeaderTimeout: 30 * time.Second}
	served := make(chan struct{})
	go func() {
		defer close(served)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			p.log.Errorw("Pipelines as Code intake stopped", "error", err)
		}
	}()
	p.log.Infow("Pipelines as Code intake serving", "listen", p.listen)
	return func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
		<-served
		intake.Wait()
	}, nil
}
