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
	"os/signal"
	"runtime/pprof"
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
			log.Warnw("lost a Lease; starting again as a candidate", "error", err)
			_ = log.Sync()
			return reexec()
		}
		return err
	})
}

// reexec replaces this process with a fresh run of the same program.
//
// A CPU profile in progress (the debug address's /debug/cpuprofile, or
// pprof's) must not follow: its profiling timer survives execve, and its
// next SIGPROF, due before the new runtime has a handler, would kill the
// new process, silently. So the profile stops, and SIGPROF is ignored
// until the new runtime installs its handler (pending and ignored signals
// both carry over execve).
func reexec() error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	pprof.StopCPUProfile()
	signal.Ignore(syscall.SIGPROF)
	return syscall.Exec(self, os.Args, os.Environ())
}
