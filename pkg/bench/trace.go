package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/pipelines-service/pipelines-service/pkg/devstack"
	"github.com/pipelines-service/pipelines-service/pkg/metrics"
)

// RunTrace is one PipelineRun's way from creation to its first pod, as our
// controller traced it: every reconcile of the run and of its TaskRuns, and
// every request each made, in order. The gaps between steps are waits (for
// a worker, for an informer's event, for a core).
type RunTrace struct {
	PipelineRun     string      `json:"pipelineRun"`
	FirstPodSeconds float64     `json:"firstPodSeconds"`
	Steps           []TraceStep `json:"steps"`
}

// TraceStep is one span of the trace, timed from the run's creation.
type TraceStep struct {
	AtSeconds float64 `json:"atSeconds"`
	Seconds   float64 `json:"seconds"`
	// WaitSeconds is how long a request waited in the controller for its
	// turn before AtSeconds (a bound on writes in flight to kcp).
	WaitSeconds float64 `json:"waitSeconds,omitempty"`
	// Object is the PipelineRun or TaskRun the step was for.
	Object string `json:"object"`
	// What is "reconcile" or the request: server, verb, resource, code.
	What string `json:"what"`
}

// tracedRun is the run a trace is asked for.
type tracedRun struct {
	name              string
	created, firstPod time.Time
}

// medianRun is the run whose creation-to-first-pod is the median of those
// that got a pod: the one the trace shows.
func medianRun(created map[types.UID]time.Time, firstPod func(types.UID) (time.Time, bool), names map[types.UID]string) *tracedRun {
	var runs []tracedRun
	for uid, at := range created {
		if seen, ok := firstPod(uid); ok {
			runs = append(runs, tracedRun{name: names[uid], created: at, firstPod: seen})
		}
	}
	if len(runs) == 0 {
		return nil
	}
	sort.Slice(runs, func(i, j int) bool {
		return runs[i].firstPod.Sub(runs[i].created) < runs[j].firstPod.Sub(runs[j].created)
	})
	return &runs[len(runs)/2]
}

// controllerTrace reads the host controller's trace (/debug/trace) since
// run's creation, writes it whole to path, and keeps run's steps.
func controllerTrace(ctx context.Context, run tracedRun, path string) (*RunTrace, error) {
	url := "http://" + devstack.ControllerDebugAddress + "/debug/trace?since=" + run.created.Add(-time.Second).UTC().Format(time.RFC3339Nano)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("controller trace: %s", resp.Status)
	}
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	var spans []metrics.Span
	if err := json.Unmarshal(data, &spans); err != nil {
		return nil, fmt.Errorf("controller trace: %w", err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return nil, err
	}
	return traceOf(run, spans), nil
}

// traceOf keeps run's steps: the spans of the PipelineRun and of its
// TaskRuns (named after it, as Tekton names them) from its creation to its
// first pod, and to the end of the reconciles under way then, so that
// every request of a reconcile shown is shown.
func traceOf(run tracedRun, spans []metrics.Span) *RunTrace {
	t := &RunTrace{PipelineRun: run.name, FirstPodSeconds: run.firstPod.Sub(run.created).Seconds(), Steps: []TraceStep{}}
	ofRun := func(s metrics.Span) bool {
		name := s.Key[strings.LastIndex(s.Key, "/")+1:]
		// The controller may see the run before its creation call has
		// returned to the benchmark, which times creation from then.
		return (name == run.name || strings.HasPrefix(name, run.name+"-")) && !s.Start.Before(run.created.Add(-time.Second))
	}
	until := run.firstPod
	for _, s := range spans {
		end := s.Start.Add(time.Duration(s.Seconds * float64(time.Second)))
		if ofRun(s) && s.Verb == "" && !s.Start.After(run.firstPod) && end.After(until) {
			until = end
		}
	}
	for _, s := range spans {
		if !ofRun(s) || s.Start.After(until) {
			continue
		}
		name := s.Key[strings.LastIndex(s.Key, "/")+1:]
		what := "reconcile"
		if s.Verb != "" {
			what = strings.Join([]string{s.Server, s.Verb, s.Resource, s.Code}, " ")
		}
		t.Steps = append(t.Steps, TraceStep{AtSeconds: s.Start.Sub(run.created).Seconds(), Seconds: s.Seconds, WaitSeconds: s.Wait,
			Object: strings.ToLower(s.Controller) + " " + name, What: what})
	}
	sort.SliceStable(t.Steps, func(i, j int) bool { return t.Steps[i].AtSeconds < t.Steps[j].AtSeconds })
	return t
}

func printTrace(tw *tabwriter.Writer, t *RunTrace) {
	fmt.Fprintf(tw, "\ntrace of %s (the median first pod: %.2f s), from its creation to its first pod and the end of the reconciles then under way (WAITED: for a slot to send a write; gaps: for a worker, an event, a core; every span: controller-trace.json):\n", t.PipelineRun, t.FirstPodSeconds)
	fmt.Fprintln(tw, "AT s\tWAITED s\tTOOK s\tFOR\tWHAT")
	podShown := false
	for _, s := range t.Steps {
		if !podShown && s.AtSeconds > t.FirstPodSeconds {
			fmt.Fprintf(tw, "%.3f\t\t\t\tfirst pod seen on the workload cluster\n", t.FirstPodSeconds)
			podShown = true
		}
		waited := ""
		if s.WaitSeconds > 0 {
			waited = fmt.Sprintf("%.3f", s.WaitSeconds)
		}
		fmt.Fprintf(tw, "%.3f\t%s\t%.3f\t%s\t%s\n", s.AtSeconds, waited, s.Seconds, s.Object, s.What)
	}
	if !podShown {
		fmt.Fprintf(tw, "%.3f\t\t\t\tfirst pod seen on the workload cluster\n", t.FirstPodSeconds)
	}
}
