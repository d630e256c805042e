package sink

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	kcpdynamicinformer "github.com/kcp-dev/client-go/dynamic/dynamicinformer"
	"github.com/kcp-dev/logicalcluster/v3"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"
	"k8s.io/client-go/rest"

	"github.com/pipelines-service/pipelines-service/pkg/kcp"
	"github.com/pipelines-service/pipelines-service/pkg/triggers"
)

// Config is how a sink replica is run.
type Config struct {
	// KCP is the sink's own identity at kcp's base URL.
	KCP               *rest.Config
	ProviderWorkspace logicalcluster.Path
	APIExport         string
	// Listen serves listeners' paths (plain HTTP: the gateway is in
	// front); DebugListen serves /readyz.
	Listen, DebugListen string
	AllowedEgress       []*net.IPNet
}

// Run serves listeners until ctx ends. Replicas share nothing: each
// watches every workspace's Triggers objects through the virtual
// workspace and can serve any listener.
func Run(ctx context.Context, log *zap.SugaredLogger, cfg Config) error {
	tenants, err := kcp.TenantShards(ctx, log, cfg.KCP, cfg.ProviderWorkspace, cfg.APIExport)
	if err != nil {
		return err
	}
	factory := kcpdynamicinformer.NewDynamicSharedInformerFactory(tenants, 0)
	listers := triggers.ListersOf(factory)
	workspaces, err := kcp.NewWorkspaceClients(tenants)
	if err != nil {
		return err
	}
	srv, err := New(Options{Listers: listers, Workspaces: workspaces, KCP: cfg.KCP, AllowedEgress: cfg.AllowedEgress, Log: log})
	if err != nil {
		return err
	}
	factory.Start(ctx.Done())
	for gvr, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("informer for %s did not sync", gvr)
		}
	}
	events := &http.Server{Addr: cfg.Listen, Handler: srv, ReadHeaderTimeout: 30 * time.Second}
	debug := &http.Server{Addr: cfg.DebugListen, ReadHeaderTimeout: 10 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })}
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return ignoreClosed(events.ListenAndServe()) })
	g.Go(func() error { return ignoreClosed(debug.ListenAndServe()) })
	g.Go(func() error {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = debug.Shutdown(shutdown)
		err := events.Shutdown(shutdown)
		srv.Wait()
		return err
	})
	log.Infow("triggers sink serving", "listen", cfg.Listen, "virtualWorkspaces", tenants.URLs())
	return g.Wait()
}

func ignoreClosed(err error) error {
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}
