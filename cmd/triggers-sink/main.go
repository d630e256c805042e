// Command triggers-sink serves every tenant's Tekton Triggers
// EventListeners: one shared, replicated sink that routes an event by its
// path to its listener, verifies it, and runs Triggers' own sink for it.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"strings"

	"github.com/kcp-dev/logicalcluster/v3"
	"go.uber.org/zap"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/pipelines-service/pipelines-service/pkg/command"
	"github.com/pipelines-service/pipelines-service/pkg/provider"
	"github.com/pipelines-service/pipelines-service/pkg/triggers/sink"
)

func main() {
	var kubeconfig, providerWorkspace, egress string
	cfg := sink.Config{}
	flag.StringVar(&kubeconfig, "kubeconfig", "", "the sink's own identity in kcp (base URL)")
	flag.StringVar(&providerWorkspace, "provider-workspace", "root:pipelines-service", "workspace holding the APIExport")
	flag.StringVar(&cfg.APIExport, "api-export", provider.ExportName, "the APIExport tenants bind")
	flag.StringVar(&cfg.Listen, "listen", "127.0.0.1:6071", "address serving listeners' paths (plain HTTP, behind the gateway)")
	flag.StringVar(&cfg.DebugListen, "debug-listen", "127.0.0.1:6072", "address of /readyz")
	flag.StringVar(&egress, "allowed-egress", "", "comma-separated CIDRs tenant-defined interceptors may be reached at (empty: none)")
	flag.Parse()
	command.Run("triggers-sink", func(ctx context.Context, log *zap.SugaredLogger) error {
		rest, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
		if err != nil {
			return fmt.Errorf("--kubeconfig: %w", err)
		}
		cfg.KCP, cfg.ProviderWorkspace = rest, logicalcluster.NewPath(providerWorkspace)
		if cfg.AllowedEgress, err = parseCIDRs(egress); err != nil {
			return fmt.Errorf("--allowed-egress: %w", err)
		}
		return sink.Run(ctx, log, cfg)
	})
}

func parseCIDRs(list string) ([]*net.IPNet, error) {
	var out []*net.IPNet
	for _, s := range strings.Split(list, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		_, n, err := net.ParseCIDR(s)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}
