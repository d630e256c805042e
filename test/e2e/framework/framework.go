// Package framework is the e2e test framework. It brings the local real
// stack up through pkg/devstack (the same code `make dev-up` runs) and hands
// tests clients for kcp and the workload cluster.
package framework

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	kcpclientset "github.com/kcp-dev/kcp/sdk/client/clientset/versioned/cluster"
	"go.uber.org/zap"
	"k8s.io/client-go/kubernetes"

	"github.com/pipelines-service/pipelines-service/pkg/devstack"
)

// Env is the e2e environment: the stack and its clients.
type Env struct {
	Stack    *devstack.Stack
	Workload kubernetes.Interface
	KCP      kcpclientset.ClusterInterface
}

// Setup brings the stack up (a no-op when it runs) and returns the env. It
// returns a teardown that stops the stack only if Setup started it and
// PIPELINES_SERVICE_KEEP_STACK is not set.
func Setup(ctx context.Context) (*Env, func(), error) {
	logger, err := zap.NewDevelopment()
	if err != nil {
		return nil, nil, err
	}
	stack, err := NewStack(logger.Sugar())
	if err != nil {
		return nil, nil, err
	}
	wasRunning := stack.Running()
	ctx, cancel := context.WithTimeout(ctx, 45*time.Minute)
	defer cancel()
	if err := stack.Up(ctx); err != nil {
		return nil, nil, err
	}
	env, err := NewEnv(stack)
	if err != nil {
		return nil, nil, err
	}
	leftovers, err := env.DeleteLeftoverTenants(ctx)
	if err != nil {
		return nil, nil, err
	}
	if len(leftovers) > 0 {
		logger.Sugar().Infow("deleted e2e tenants an unfinished run left", "workspaces", leftovers)
	}
	teardown := func() {
		if wasRunning || os.Getenv("PIPELINES_SERVICE_KEEP_STACK") != "" {
			return
		}
		if err := stack.Down(context.Background()); err != nil {
			fmt.Fprintln(os.Stderr, "tear down stack:", err)
		}
	}
	return env, teardown, nil
}

// NewStack returns the stack of the checkout the tests run in.
func NewStack(log *zap.SugaredLogger) (*devstack.Stack, error) {
	wd, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	root, err := devstack.FindRepoRoot(wd)
	if err != nil {
		return nil, err
	}
	cfg, err := devstack.DefaultConfig(root)
	if err != nil {
		return nil, err
	}
	return devstack.New(cfg, log), nil
}

// NewEnv builds the clients of a running stack.
func NewEnv(stack *devstack.Stack) (*Env, error) {
	workload, err := stack.Config().WorkloadClient()
	if err != nil {
		return nil, err
	}
	kcp, err := stack.Config().KCPClusterClient()
	if err != nil {
		return nil, err
	}
	return &Env{Stack: stack, Workload: workload, KCP: kcp}, nil
}

// Main is the TestMain of an e2e package.
func Main(m *testing.M, env **Env) {
	e, teardown, err := Setup(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: bring the stack up:", err)
		os.Exit(1)
	}
	*env = e
	code := m.Run()
	teardown()
	os.Exit(code)
}

// Eventually polls cond every interval until it returns true or an error,
// or fails the test after timeout with the last message.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() (bool, string, error)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		ok, msg, err := cond()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if ok {
			return
		}
		last = msg
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("%s: not true after %s: %s", what, timeout, last)
}
