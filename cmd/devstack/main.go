// Command devstack brings the local real stack up and down:
//
//	devstack up       build what is missing, start what is not running, wait until ready
//	devstack down     stop every process of the stack by PID, remove its mounts and bridge
//	devstack status   one KEY=VALUE line per fact
//	devstack tenant N create tenant workspace root:N bound to the Tekton export, print its kubeconfig (--shard=shard-1: on the second kcp shard)
//	devstack demo     run examples/pipelinerun.yaml in the demo tenant workspace
//	devstack deploy   run the controller in the workload cluster: ko apply -f config/
//	devstack undeploy run the controller on the host again
//	devstack bench    stack figures; our controller against upstream Tekton's; idle-tenant scale (flags: -h)
//	devstack with-stack CMD [ARG...]
//	                  bring the stack up once, run CMD on it (the e2e packages), bring it down after if it was down
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"go.uber.org/zap"

	"github.com/pipelines-service/pipelines-service/pkg/bench"
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
		fs := flag.NewFlagSet("tenant", flag.ContinueOnError)
		shard := fs.String("shard", devstack.RootShard, "the kcp shard the workspace is scheduled to ("+strings.Join(devstack.Shards(), ", ")+")")
		if err := fs.Parse(os.Args[2:]); err != nil || fs.NArg() != 1 {
			return fmt.Errorf("usage: devstack tenant [--shard=SHARD] NAME")
		}
		if !slices.Contains(devstack.Shards(), *shard) {
			return fmt.Errorf("--shard=%s: the stack's shards are %s", *shard, strings.Join(devstack.Shards(), ", "))
		}
		kubeconfig, err := stack.AddTenantOn(ctx, fs.Arg(0), *shard)
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
	case "with-stack":
		if len(os.Args) < 3 {
			return fmt.Errorf("usage: devstack with-stack CMD [ARG...]")
		}
		return withStack(ctx, stack, os.Args[2:])
	case "bench":
		opts, err := benchOptions(os.Args[2:])
		if err != nil {
			return err
		}
		return bench.Run(ctx, stack, os.Stdout, opts)
	default:
		return fmt.Errorf("unknown verb %q (want up, down, status, tenant, demo, deploy, undeploy, with-stack or bench)", verb)
	}
}

// withStack runs argv on the stack, brought up first. Every e2e package's
// TestMain brings the stack up if needed and down again if it started it:
// on a machine where the stack is down (CI), each of the thirteen packages
// paid a bring-up and a tear-down, 10 minutes of make test. Here it is up
// once, kept across the packages (PIPELINES_SERVICE_KEEP_STACK), and torn
// down at the end only if it was down before. The command's exit code is
// devstack's.
func withStack(ctx context.Context, stack *devstack.Stack, argv []string) error {
	wasRunning := stack.Running()
	if err := stack.Up(ctx); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), "PIPELINES_SERVICE_KEEP_STACK=1")
	runErr := cmd.Run()
	if !wasRunning && os.Getenv("PIPELINES_SERVICE_KEEP_STACK") == "" {
		if err := stack.Down(context.WithoutCancel(ctx)); err != nil {
			fmt.Fprintln(os.Stderr, "devstack: tear down stack:", err)
		}
	}
	var exit *exec.ExitError
	if errors.As(runErr, &exit) {
		os.Exit(exit.ExitCode())
	}
	return runErr
}

// benchOptions parses `devstack bench` flags; the defaults are make bench's.
func benchOptions(args []string) (bench.Options, error) {
	opts := bench.DefaultOptions()
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.IntVar(&opts.Workspaces, "workspaces", opts.Workspaces, "tenant workspaces (and upstream namespaces) running PipelineRuns")
	fs.IntVar(&opts.Runs, "runs", opts.Runs, "PipelineRuns per workspace")
	fs.IntVar(&opts.Tasks, "tasks", opts.Tasks, "trivial parallel tasks per PipelineRun")
	fs.IntVar(&opts.IdleWorkspaces, "idle-workspaces", opts.IdleWorkspaces, "bound workspaces without runs for the idle-scale figures (0 skips)")
	fs.Func("idle-shards", "kcp shards new idle workspaces are spread over, in turn (default "+strings.Join(opts.IdleShards, ",")+")", func(v string) error {
		opts.IdleShards = strings.Split(v, ",")
		for _, s := range opts.IdleShards {
			if !slices.Contains(devstack.Shards(), s) {
				return fmt.Errorf("%q: the stack's shards are %s", s, strings.Join(devstack.Shards(), ", "))
			}
		}
		return nil
	})
	fs.IntVar(&opts.Listeners, "listeners", opts.Listeners, "idle EventListeners for the listener figures (0 skips)")
	fs.IntVar(&opts.ListenerWorkspaces, "listener-workspaces", opts.ListenerWorkspaces, "idle workspaces the listeners are spread over")
	fs.IntVar(&opts.ListenerEvents, "listener-events", opts.ListenerEvents, "webhooks timed to their PipelineRuns")
	fs.BoolVar(&opts.KeepIdle, "keep-idle", opts.KeepIdle, "keep the idle workspaces for the next run (-keep-idle=false deletes them; kcp finishes that in the background)")
	fs.BoolVar(&opts.Stack, "stack", opts.Stack, "also time a warm bring-up of the stack (tears it down first)")
	fs.DurationVar(&opts.Timeout, "timeout", opts.Timeout, "limit for each controller's PipelineRuns")
	fs.IntVar(&opts.GatewayRequests, "gateway-requests", opts.GatewayRequests, "requests timing the gateway against kcp (0 skips the gateway's figures)")
	fs.BoolVar(&opts.RecorderOverhead, "recorder-overhead", opts.RecorderOverhead, "also run our controller without its Tekton Results recorder (what recording costs)")
	fs.IntVar(&opts.Replicas, "replicas", opts.Replicas, "also run our controller's PipelineRuns with this many replicas (they split the workspaces' parts; 0 or 1 skips)")
	fs.IntVar(&opts.IsolationRounds, "isolation-rounds", opts.IsolationRounds, "also run our controller's PipelineRuns with the tenant isolation off and on, alternating, this many rounds each (what isolation costs; 0 skips)")
	fs.Func("isolation-part", "isolate the isolated rows in one way only: "+bench.IsolationUserNamespaces.String()+" (the default Pod Security level and user namespaces, the policy agents stopped) or "+bench.IsolationNetworkPolicy.String()+" (the agents running, the privileged level); default: "+bench.IsolationAll.String(), func(v string) error {
		part, err := bench.ParseIsolationPart(v)
		opts.IsolationPart = part
		return err
	})
	fs.StringVar(&opts.JSON, "json", opts.JSON, "report file (default <state>/bench/bench.json)")
	return opts, fs.Parse(args)
}
