// Package controller assembles the pipelines-service controller from its
// configuration: kcp and workload clients, the virtual workspace, and the
// reconcilers.
package controller

import (
	"context"
	"fmt"
	"os"

	kcpdynamic "github.com/kcp-dev/client-go/dynamic"
	kcpdynamicinformer "github.com/kcp-dev/client-go/dynamic/dynamicinformer"
	kcpclientset "github.com/kcp-dev/kcp/sdk/client/clientset/versioned/cluster"
	"github.com/kcp-dev/logicalcluster/v3"
	"github.com/tektoncd/pipeline/pkg/apis/pipeline"
	"go.uber.org/zap"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"

	"github.com/pipelines-service/pipelines-service/pkg/images"
	"github.com/pipelines-service/pipelines-service/pkg/kcp"
	"github.com/pipelines-service/pipelines-service/pkg/provider"
	"github.com/pipelines-service/pipelines-service/pkg/reconciler"
	"github.com/pipelines-service/pipelines-service/pkg/reconciler/persistentvolumeclaim"
	"github.com/pipelines-service/pipelines-service/pkg/reconciler/pipelinerun"
	"github.com/pipelines-service/pipelines-service/pkg/reconciler/taskrun"
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
	// WorkloadKubeconfig is the workload cluster's kubeconfig; empty means
	// in-cluster.
	WorkloadKubeconfig string `json:"workloadKubeconfig,omitempty"`
	// TektonImages are Tekton's helper images, built with ko.
	TektonImages pipeline.Images `json:"tektonImages"`
	// ImageMap is the mapping step images resolve through.
	ImageMap images.Config `json:"imageMap"`
	// Workers is the number of reconcile workers.
	Workers int `json:"workers,omitempty"`
	// ClientQPS and ClientBurst limit the controller's requests to kcp and
	// to the workload cluster (client-go's defaults, 5 and 10, throttle a
	// controller serving many workspaces).
	ClientQPS   float32 `json:"clientQPS,omitempty"`
	ClientBurst int     `json:"clientBurst,omitempty"`
	// DebugAddress, when set, serves /readyz and Go's profiles
	// (/debug/pprof/) there, e.g. 127.0.0.1:6061.
	DebugAddress string `json:"debugAddress,omitempty"`
}

// LoadConfig reads and checks a Config.
func LoadConfig(path string) (Config, error) {
	cfg := Config{APIExport: provider.ExportName, Workers: 4, ClientQPS: 50, ClientBurst: 100}
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
	return cfg, nil
}

// Run runs the controller until ctx ends.
func Run(ctx context.Context, log *zap.SugaredLogger, cfg Config) error {
	kcpRest, err := clientcmd.BuildConfigFromFlags("", cfg.KCPKubeconfig)
	if err != nil {
		return fmt.Errorf("kcp kubeconfig: %w", err)
	}
	kcpRest.QPS, kcpRest.Burst = cfg.ClientQPS, cfg.ClientBurst
	debug := &debugServer{timings: reconciler.NewTimings()}
	kcpRest.WrapTransport = debug.timings.WrapTransport("kcp")
	if cfg.DebugAddress != "" {
		if err := debug.serve(ctx, log, cfg.DebugAddress); err != nil {
			return fmt.Errorf("debug address: %w", err)
		}
	}
	kcpClient, err := kcpclientset.NewForConfig(kcpRest)
	if err != nil {
		return err
	}
	urls, err := kcp.VirtualWorkspaceURLs(ctx, log, kcpClient, logicalcluster.NewPath(cfg.ProviderWorkspace), cfg.APIExport)
	if err != nil {
		return err
	}
	if len(urls) > 1 {
		log.Warnw("export is served by several shards; this controller watches the first", "urls", urls)
	}
	log.Infow("watching tenant workspaces through the APIExport virtual workspace", "url", urls[0])
	vwRest := kcp.ForVirtualWorkspace(kcpRest, urls[0])
	tenants, err := kcpdynamic.NewForConfig(vwRest)
	if err != nil {
		return err
	}
	workloadRest, err := clientcmd.BuildConfigFromFlags("", cfg.WorkloadKubeconfig)
	if err != nil {
		return fmt.Errorf("workload kubeconfig: %w", err)
	}
	workloadRest.QPS, workloadRest.Burst = cfg.ClientQPS, cfg.ClientBurst
	workloadRest.WrapTransport = debug.timings.WrapTransport("workload")
	workloadClient, err := kubernetes.NewForConfig(workloadRest)
	if err != nil {
		return err
	}
	tenantInformers := kcpdynamicinformer.NewDynamicSharedInformerFactory(tenants, 0)
	workloadInformers := informers.NewSharedInformerFactoryWithOptions(workloadClient, 0,
		informers.WithTweakListOptions(workload.ManagedSelector))
	tektonConfig := tenantconfig.New(tenants, workload.ManagedByValue)
	taskRuns, err := taskrun.New(taskrun.Options{
		Tenants:           tenants,
		TenantInformers:   tenantInformers,
		WorkloadInformers: workloadInformers,
		Workload:          workloadClient,
		Images:            cfg.TektonImages,
		Resolver:          images.NewResolver(cfg.ImageMap),
		Config:            tektonConfig,
		VirtualWorkspace:  vwRest,
		Log:               log.Named("taskrun"),
	})
	if err != nil {
		return err
	}
	pipelineRuns, err := pipelinerun.New(pipelinerun.Options{
		Tenants:          tenants,
		TenantInformers:  tenantInformers,
		Config:           tektonConfig,
		VirtualWorkspace: vwRest,
		Log:              log.Named("pipelinerun"),
	})
	if err != nil {
		return err
	}
	claims, err := persistentvolumeclaim.New(persistentvolumeclaim.Options{
		Tenants:           tenants,
		TenantInformers:   tenantInformers,
		WorkloadInformers: workloadInformers,
		Workload:          workloadClient,
		Log:               log.Named("persistentvolumeclaim"),
	})
	if err != nil {
		return err
	}
	if err := tektonConfig.Start(ctx); err != nil {
		return err
	}
	if err := startInformers(ctx, tenantInformers, workloadInformers); err != nil {
		return err
	}
	debug.ready.Store(true)
	log.Infow("informers synced; reconciling")
	go pipelineRuns.Run(ctx, cfg.Workers, debug.timings)
	go claims.Run(ctx, cfg.Workers, debug.timings)
	taskRuns.Run(ctx, cfg.Workers, debug.timings)
	return nil
}

// startInformers starts the shared informers and waits for their caches.
func startInformers(ctx context.Context, tenants kcpdynamicinformer.DynamicSharedInformerFactory, workloads informers.SharedInformerFactory) error {
	tenants.Start(ctx.Done())
	workloads.Start(ctx.Done())
	for gvr, synced := range tenants.WaitForCacheSync(ctx.Done()) {
		if !synced {
			return fmt.Errorf("tenant informer for %s did not sync", gvr)
		}
	}
	for typ, synced := range workloads.WaitForCacheSync(ctx.Done()) {
		if !synced {
			return fmt.Errorf("workload informer for %v did not sync", typ)
		}
	}
	return nil
}
