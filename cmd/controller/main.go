// Command controller is the pipelines-service controller: it serves the
// tekton.dev APIs exported from the provider workspace to every tenant
// workspace, running their runs as pods on a workload cluster.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"syscall"

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
		err = controller.Run(ctx, log, cfg)
		if errors.Is(err, controller.ErrLostLease) {
			// Another replica may lead already: nothing of this process
			// may go on. The same process (PID, pod) starts afresh as a
			// candidate instead of waiting to be restarted.
			log.Warnw("lost the leader Lease; starting again as a candidate")
			_ = log.Sync()
			return reexec()
		}
		return err
	})
}

// reexec replaces this process with a fresh run of the same program.
func reexec() error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	return syscall.Exec(self, os.Args, os.Environ())
}
