// Command controller is the pipelines-service controller: it serves the
// tekton.dev APIs exported from the provider workspace to every tenant
// workspace, running their runs as pods on a workload cluster.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"go.uber.org/zap"

	"github.com/pipelines-service/pipelines-service/pkg/controller"
)

func main() {
	configPath := flag.String("config", "/etc/pipelines-service/config.yaml", "controller configuration file")
	flag.Parse()
	logger, err := zap.NewProduction()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer func() { _ = logger.Sync() }()
	log := logger.Sugar()
	cfg, err := controller.LoadConfig(*configPath)
	if err != nil {
		log.Fatalw("invalid configuration", "error", err)
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	if err := controller.Run(ctx, log, cfg); err != nil {
		log.Fatalw("controller stopped", "error", err)
	}
}
