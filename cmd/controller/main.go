// Command controller is the pipelines-service controller: it serves the
// tekton.dev APIs exported from the provider workspace to every tenant
// workspace, running their runs as pods on a workload cluster.
package main

import (
	"context"
	"flag"
	"fmt"

	"go.uber.org/zap"

	"github.com/pipelines-service/pipelines-service/pkg/command"
	"github.com/pipelines-service/pipelines-service/pkg/controller"
)

func main() {
	configPath := flag.String("config", "/etc/pipelines-service/config.yaml", "controller configuration file")
	flag.Parse()
	command.Run("controller", func(ctx context.Context, log *zap.SugaredLogger) error {
		cfg, err := controller.LoadConfig(*configPath)
		if err != nil {
			return fmt.Errorf("invalid configuration: %w", err)
		}
		return controller.Run(ctx, log, cfg)
	})
}
