package framework

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"testing"
	"time"
)

// Run runs a client binary (bin/tkn, kubectl) with a kubeconfig and
// returns its output, stdout and stderr apart.
func Run(ctx context.Context, t testing.TB, kubeconfig string, timeout time.Duration, name string, args ...string) (stdout, stderr string, err error) {
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

// Tkn runs the stack's tkn with a kubeconfig.
func (e *Env) Tkn(ctx context.Context, t testing.TB, kubeconfig string, args ...string) (string, string, error) {
	t.Helper()
	return Run(ctx, t, kubeconfig, 5*time.Minute, e.Stack.Config().TknBinary(), args...)
}

// TknResults runs Tekton Results' CLI with a kubeconfig.
func (e *Env) TknResults(ctx context.Context, t testing.TB, kubeconfig string, args ...string) (string, string, error) {
	t.Helper()
	return Run(ctx, t, kubeconfig, 2*time.Minute, e.Stack.Config().TknResultsBinary(), args...)
}

// Kubectl runs kubectl with a kubeconfig.
func Kubectl(ctx context.Context, t testing.TB, kubeconfig string, args ...string) (string, string, error) {
	t.Helper()
	return Run(ctx, t, kubeconfig, 2*time.Minute, "kubectl", args...)
}
