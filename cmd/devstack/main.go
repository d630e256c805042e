// Command devstack brings the local real stack up and down:
//
//	devstack up       build what is missing, start what is not running, wait until ready
//	devstack down     stop every process of the stack by PID, remove its mounts and bridge
//	devstack status   one KEY=VALUE line per fact
//	devstack tenant N create tenant workspace root:N bound to the Tekton export, print its kubeconfig
//	devstack demo     run examples/pipelinerun.yaml in the demo tenant workspace
//	devstack deploy   run the controller in the workload cluster: ko apply -f config/
//	devstack undeploy run the controller on the host again
//	devstack bench    cold build times, warm bring-up time, resident memory per component
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"go.uber.org/zap"

	"github.com/pipelines-service/pipelines-service/pkg/devstack"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: devstack up|down|status|bench")
		os.Exit(2)
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	if err := run(ctx, os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "devstack:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, verb string) error {
	logger, err := zap.NewDevelopment()
	if err != nil {
		return err
	}
	defer func() { _ = logger.Sync() }()
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	root, err := devstack.FindRepoRoot(wd)
	if err != nil {
		return err
	}
	cfg, err := devstack.DefaultConfig(root)
	if err != nil {
		return err
	}
	stack := devstack.New(cfg, logger.Sugar())
	switch verb {
	case "up":
		return stack.Up(ctx)
	case "down":
		return stack.Down(ctx)
	case "status":
		for _, line := range stack.StatusLines() {
			fmt.Println(line)
		}
		return nil
	case "tenant":
		if len(os.Args) != 3 {
			return fmt.Errorf("usage: devstack tenant NAME")
		}
		kubeconfig, err := stack.AddTenant(ctx, os.Args[2])
		if err != nil {
			return err
		}
		fmt.Printf("TENANT_KUBECONFIG=%s\n", kubeconfig)
		return nil
	case "demo":
		return stack.Demo(ctx, os.Stdout)
	case "deploy":
		return stack.Deploy(ctx)
	case "undeploy":
		return stack.Undeploy(ctx)
	case "bench":
		return stack.Bench(ctx, os.Stdout)
	default:
		return fmt.Errorf("unknown verb %q (want up, down, status or bench)", verb)
	}
}
