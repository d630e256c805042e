package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// kcpProfileSeconds is how long kcp's CPU is profiled from the start of our
// run. kcp's /debug/pprof/profile cannot be stopped early (a cancelled
// request gets no profile), and the default runs last 20-30 s on 2 cores:
// the window covers their busiest part.
const kcpProfileSeconds = 15

// kcpProfile profiles kcp's CPU (its /debug/pprof, as the shard's admin)
// for kcpProfileSeconds from now, in the background, and returns a function
// that waits for the profile and writes it to path.
func kcpProfile(ctx context.Context, rc *rest.Config, path string) func() error {
	done := make(chan error, 1)
	go func() {
		done <- func() error {
			rc := rest.CopyConfig(rc)
			rc.Timeout = (kcpProfileSeconds + 30) * time.Second
			client, err := kubernetes.NewForConfig(rc)
			if err != nil {
				return err
			}
			data, err := client.Discovery().RESTClient().Get().AbsPath("/debug/pprof/profile").
				Param("seconds", strconv.Itoa(kcpProfileSeconds)).DoRaw(ctx)
			if err != nil {
				return fmt.Errorf("kcp CPU profile: %w", err)
			}
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				return err
			}
			return os.WriteFile(path, data, 0o644)
		}()
	}()
	return func() error { return <-done }
}

// kcpProfileTop is where kcp's CPU went, by cumulative time: the head of
// `go tool pprof -top -cum`, without the runtime's, the standard library's
// and the request filters' frames, which every request passes through and
// which say nothing of what it did.
func kcpProfileTop(profile string, n int) []string {
	out, err := exec.Command("go", "tool", "pprof", "-top", "-cum", "-nodecount=200", profile).Output()
	if err != nil {
		return []string{"pprof: " + err.Error()}
	}
	var lines []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		switch {
		case strings.HasPrefix(line, "Duration:"), strings.HasPrefix(line, "      flat"):
			lines = append(lines, line)
		case len(fields) < 6 || !strings.HasSuffix(fields[4], "%"):
		case uninformativeFrame(fields[5]):
		case len(lines) < n+2:
			lines = append(lines, line)
		}
	}
	return lines
}

func uninformativeFrame(fn string) bool {
	for _, prefix := range []string{"runtime.", "sync.", "net/http.", "internal/", "reflect.", "gcWriteBarrier",
		"k8s.io/apiserver/pkg/endpoints/filters.", "k8s.io/apiserver/pkg/server/filters.", "k8s.io/apiserver/pkg/endpoints/filterlatency.",
		"k8s.io/apiserver/pkg/server.", "k8s.io/apiserver/pkg/endpoints/handlers/finisher."} {
		if strings.HasPrefix(fn, prefix) {
			return true
		}
	}
	return false
}
