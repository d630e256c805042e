//go:build e2e

package stack

import (
	"context"
	"testing"
	"time"

	"github.com/pipelines-service/pipelines-service/test/e2e/framework"
)

// TestBringUpIsIdempotentAndTearDownLeavesNothing runs first (file order):
// re-running bring-up on the running stack is a no-op well under 2 minutes;
// tear-down leaves no process, mount or bridge; bring-up restores the stack.
func TestBringUpIsIdempotentAndTearDownLeavesNothing(t *testing.T) {
	ctx := context.Background()
	stack := env.Stack

	start := time.Now()
	if err := stack.Up(ctx); err != nil {
		t.Fatalf("re-run bring-up: %v", err)
	}
	if took := time.Since(start); took > 2*time.Minute {
		t.Errorf("re-running bring-up on a running stack took %s, want < 2m", took)
	}

	if err := stack.Down(ctx); err != nil {
		t.Fatalf("tear down: %v", err)
	}
	if left := stack.Leftovers(); len(left) > 0 {
		t.Errorf("after tear-down these remain: %v", left)
	}

	start = time.Now()
	if err := stack.Up(ctx); err != nil {
		t.Fatalf("bring up after tear-down: %v", err)
	}
	t.Logf("warm bring-up took %s", time.Since(start).Round(100*time.Millisecond))
	if !stack.Running() {
		t.Fatalf("stack not running after bring-up: %v", stack.StatusLines())
	}
	// kcp wrote a new admin kubeconfig: later tests need fresh clients.
	fresh, err := framework.NewEnv(stack)
	if err != nil {
		t.Fatal(err)
	}
	*env = *fresh
}
