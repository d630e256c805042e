//go:build e2e

package gateway

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"testing"
	"time"
)

// run runs a client binary (bin/tkn, kubectl) with a kubeconfig and
// returns its output, stdout and stderr apart.
func run(ctx context.Context, t *testing.T, kubeconfig string, timeout time.Duration, name string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig, "HOME="+t.TempDir())
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

func tkn(ctx context.Context, t *testing.T, kubeconfig string, args ...string) (string, string, error) {
	t.Helper()
	return run(ctx, t, kubeconfig, 5*time.Minute, env.Stack.Config().TknBinary(), args...)
}

func kubectl(ctx context.Context, t *testing.T, kubeconfig string, args ...string) (string, string, error) {
	t.Helper()
	return run(ctx, t, kubeconfig, 2*time.Minute, "kubectl", args...)
}
