// Package command is what the service's programs share around their
// work: a production zap logger, a context that SIGINT or SIGTERM ends,
// and a fatal log line, naming the program, when the work fails.
package command

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"go.uber.org/zap"
)

// Run runs work and exits 1 if it fails.
func Run(program string, work func(ctx context.Context, log *zap.SugaredLogger) error) {
	logger, err := zap.NewProduction()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	log := logger.Sugar()
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err = work(ctx, log)
	cancel()
	if err != nil {
		log.Fatalw(program+" stopped", "error", err) // syncs, then exits 1
	}
	_ = logger.Sync()
}
