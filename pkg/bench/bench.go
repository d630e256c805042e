// Package bench is `devstack bench` (`make bench`): it measures the local
// real stack (pkg/devstack), then the same PipelineRuns through
// pipelines-service and through upstream Tekton's controller, then
// idle-tenant scale. It drives the stack from outside the stack's package.
package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"

	"go.uber.org/zap"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"

	fleetv1alpha1 "github.com/pipelines-service/pipelines-service/apis/fleet/v1alpha1"
	"github.com/pipelines-service/pipelines-service/pkg/devstack"
)

// Options size `devstack bench`. The defaults finish in under ten
// minutes on a 2-core machine; kcp binds about one workspace per second
// there, so -idle-workspaces=1000 (the figure the README quotes) takes
// longer (-keep-idle keeps them for the next run).
type Options struct {
	// Workspaces x Runs PipelineRuns of Tasks trivial parallel tasks, through
	// each controller (0 workspaces skips the comparison).
	Workspaces, Runs, Tasks int
	// IdleWorkspaces bound tenant workspaces without runs (0 skips), new
	// ones spread over IdleShards in turn.
	IdleWorkspaces int
	IdleShards     []string
	// Listeners idle EventListeners over ListenerWorkspaces of the idle
	// workspaces, and ListenerEvents webhooks timed to their PipelineRuns
	// (0 listeners skips).
	Listeners, ListenerWorkspaces, ListenerEvents int
	// KeepIdle keeps the idle workspaces for the next run (default): kcp
	// deletes workspaces slowly (about 0.4 per second on 2 cores, in the
	// background), which would weigh on whatever runs next.
	KeepIdle bool
	// Stack measures the stack itself too (warm bring-up after down).
	Stack bool
	// GatewayRequests is how many requests time the gateway against kcp
	// (0 skips the gateway's figures).
	GatewayRequests int
	// RecorderOverhead also runs our controller without its Tekton
	// Results recorder, for what recording costs.
	RecorderOverhead bool
	// Replicas, above 1, also runs our controller's PipelineRuns with that
	// many replicas (they split the workspaces' parts), for the throughput
	// ratio to one replica.
	Replicas int
	// IsolationRounds, above 0, also runs our controller's PipelineRuns
	// with the tenant isolation off and on, that many rounds each, for
	// what it costs (IsolationResult).
	IsolationRounds int
	// IsolationPart, when not IsolationAll, isolates the isolated rows in
	// one way only, for what each part costs.
	IsolationPart IsolationPart
	// Timeout bounds each controller's run.
	Timeout time.Duration
	// JSON is where the report is written; empty: <state>/bench/bench.json.
	JSON string
}

// DefaultOptions are `make bench`'s.
func DefaultOptions() Options {
	return Options{Workspaces: 2, Runs: 5, Tasks: 3, IdleWorkspaces: 2000, IdleShards: devstack.Shards(), Listeners: 1000, ListenerWorkspaces: 100, ListenerEvents: 100, KeepIdle: true, Stack: true, GatewayRequests: 200, RecorderOverhead: true, Replicas: 3, IsolationRounds: 3, IsolationPart: IsolationAll, Timeout: 10 * time.Minute}
}

// Report is the benchmark's JSON output.
type Report struct {
	Date    time.Time          `json:"date"`
	Machine string             `json:"machine"`
	Options Options            `json:"options"`
	Stack   []StackFigure      `json:"stack,omitempty"`
	Runs    []ThroughputResult `json:"runs"`
	Ratios  map[string]float64 `json:"ratiosOursToUpstream"`
	Idle    *IdleResult        `json:"idle,omitempty"`
	// Isolation is what tenant isolation costs in throughput.
	Isolation *IsolationResult `json:"isolation,omitempty"`
	// Listeners are the figures of idle EventListeners.
	Listeners *ListenersResult `json:"listeners,omitempty"`
	Gateway   *GatewayResult   `json:"gateway,omitempty"`
	Profile   string           `json:"controllerCPUProfile,omitempty"`
	TopFuncs  []string         `json:"controllerCPUProfileTop,omitempty"`
	// KCPProfile is kcp's CPU profile over the first kcpProfileSeconds of
	// our run; KCPTopFuncs where that CPU went, by cumulative time.
	KCPProfile  string   `json:"kcpCPUProfile,omitempty"`
	KCPTopFuncs []string `json:"kcpCPUProfileTop,omitempty"`
	// Trace is one of our PipelineRuns (the median first pod) from
	// creation to first pod, step by step.
	Trace *RunTrace `json:"trace,omitempty"`
	// Timings are our controller's reconcile and API request durations
	// over its run: where its wall-clock time goes.
	Timings []ControllerTiming `json:"controllerTimings,omitempty"`
	// Servers are the apiservers' own figures over each controller's run.
	Servers []ServerFigures `json:"servers,omitempty"`
}

// StackFigure is one figure of the stack itself.
type StackFigure struct {
	Measure, Component, Value string
}

// runner is one benchmark run on a stack.
type runner struct {
	stack *devstack.Stack
	cfg   devstack.Config
	log   *zap.SugaredLogger
}

// Run measures the stack, then the same PipelineRuns through
// pipelines-service and through upstream Tekton's controller on the same
// workload cluster, then idle-tenant scale; it prints a table and writes
// the report as JSON.
func Run(ctx context.Context, stack *devstack.Stack, out io.Writer, opts Options) error {
	r := &runner{stack: stack, cfg: stack.Config(), log: stack.Logger()}
	if r.cfg.ControllerInCluster() {
		return fmt.Errorf("the controller runs in the workload cluster (devstack deploy): run devstack undeploy first, the benchmark measures the host process")
	}
	report := Report{Date: time.Now().UTC(), Machine: machine(), Options: opts}
	if err := r.stack.Up(ctx); err != nil { // every build cached, everything running
		return err
	}
	// Both controllers run on the first workload cluster: upstream Tekton
	// is installed there, and its pods are what the benchmark watches.
	first := r.cfg.WorkloadClusters()[0]
	pinned := fleetv1alpha1.TenantPolicySpec{ClusterSelector: &metav1.LabelSelector{MatchLabels: first.Labels}}
	if err := r.stack.SetTenantPolicy(ctx, fleetv1alpha1.DefaultTenantPolicy, pinned); err != nil {
		return err
	}
	defer func() { _ = r.stack.DeleteTenantPolicy(context.Background(), fleetv1alpha1.DefaultTenantPolicy) }()
	if opts.Stack {
		r.log.Infow("bench: the stack (down, then a warm bring-up)")
		figures, err := r.measureStack(ctx)
		if err != nil {
			return err
		}
		report.Stack = figures
	}
	if opts.GatewayRequests > 0 {
		r.log.Infow("bench: the gateway against kcp, then a followed step", "requests", opts.GatewayRequests)
		gw, err := r.measureGateway(ctx, opts.GatewayRequests)
		if err != nil {
			return fmt.Errorf("gateway: %w", err)
		}
		report.Gateway = &gw
	}
	dir := filepath.Join(r.cfg.StateDir, "bench")
	if opts.Workspaces > 0 && opts.Runs > 0 {
		r.log.Infow("bench: our controller, then upstream Tekton's, on the same PipelineRuns",
			"pipelineRuns", opts.Workspaces*opts.Runs, "tasks", opts.Tasks, "typically", "1-2 min each on 2 cores")
		var unrecorded *ThroughputResult
		if opts.RecorderOverhead {
			r.log.Infow("bench: our controller without its Results recorder first", "typically", "1-2 min")
			res, err := r.measureWithoutRecorder(ctx, opts)
			if err != nil {
				return err
			}
			unrecorded = &res
		}
		ours, upstream, err := r.compareControllers(ctx, opts, dir, &report)
		if err != nil {
			return err
		}
		report.Runs = []ThroughputResult{ours, upstream}
		if unrecorded != nil {
			report.Runs = append(report.Runs, *unrecorded)
		}
		report.Ratios = ratios(ours, upstream)
		if opts.Replicas > 1 {
			r.log.Infow("bench: our controller with replicas splitting the workspaces", "replicas", opts.Replicas, "typically", "1-2 min")
			replicated, err := r.measureReplicas(ctx, opts)
			if err != nil {
				return err
			}
			report.Runs = append(report.Runs, replicated)
			report.Ratios[fmt.Sprintf("pipelineRunsPerMinute%dReplicasTo1", opts.Replicas)] = ratio(replicated.PerMinute, ours.PerMinute)
		}
	}
	if opts.IdleWorkspaces > 0 {
		r.log.Infow("bench: idle workspaces (kcp binds 0.7-1.3 per second on 2 cores)", "workspaces", opts.IdleWorkspaces)
		idle, err := r.idleScale(ctx, opts.IdleWorkspaces, opts.IdleShards, opts.KeepIdle)
		if err != nil {
			return fmt.Errorf("idle scale: %w", err)
		}
		report.Idle = &idle
	}
	if opts.Listeners > 0 && opts.ListenerWorkspaces > 0 {
		r.log.Infow("bench: idle EventListeners, then webhooks to PipelineRuns", "listeners", opts.Listeners, "workspaces", opts.ListenerWorkspaces, "events", opts.ListenerEvents)
		listeners, err := r.listenerScale(ctx, opts.Listeners, opts.ListenerWorkspaces, opts.ListenerEvents)
		if err != nil {
			return fmt.Errorf("listeners: %w", err)
		}
		report.Listeners = &listeners
	}
	path := opts.JSON
	if path == "" {
		path = filepath.Join(dir, "bench.json")
	}
	if err := writeJSON(path, report); err != nil {
		return err
	}
	printReport(out, report)
	fmt.Fprintf(out, "\nreport: %s\n", path)
	var failed []error
	for _, t := range report.Runs {
		if t.Error != "" {
			failed = append(failed, fmt.Errorf("%s: %s", t.Controller, t.Error))
		}
	}
	return errors.Join(failed...)
}

// measureStack: cold build times (as recorded), no-op and warm bring-up
// times, resident memory per component.
func (r *runner) measureStack(ctx context.Context) ([]StackFigure, error) {
	var figures []StackFigure
	for _, rec := range r.cfg.BuildRecords() {
		figures = append(figures, StackFigure{"cold build", rec.Component + "@" + rec.Version,
			fmt.Sprintf("%.0f s (%s, built %s)", rec.Seconds, rec.GoVersion, rec.BuiltAt.Format(time.RFC3339))})
	}
	start := time.Now()
	if err := r.stack.Up(ctx); err != nil {
		return nil, err
	}
	figures = append(figures, StackFigure{"no-op bring-up", "stack", fmt.Sprintf("%.1f s", time.Since(start).Seconds())})
	if err := r.stack.Down(ctx); err != nil {
		return nil, err
	}
	start = time.Now()
	if err := r.stack.Up(ctx); err != nil {
		return nil, err
	}
	figures = append(figures, StackFigure{"warm bring-up", "stack", fmt.Sprintf("%.1f s", time.Since(start).Seconds())})
	for _, st := range r.stack.Status() {
		figures = append(figures, StackFigure{"resident memory", st.Name, fmt.Sprintf("%d MiB", st.RSSBytes>>20)})
	}
	return figures, nil
}

// measureWithoutRecorder runs the PipelineRuns through our controller
// started without its Results recorder; the controller is then started
// with it again.
func (r *runner) measureWithoutRecorder(ctx context.Context, opts Options) (ThroughputResult, error) {
	target, err := r.oursTarget(ctx, opts.Workspaces)
	if err != nil {
		return ThroughputResult{}, err
	}
	target.name, target.recorded = "pipelines-service (no recorder)", false
	if err := clearRuns(ctx, target); err != nil {
		return ThroughputResult{}, err
	}
	r.stack.SetRecorder(false)
	defer r.stack.SetRecorder(true)
	pid, _, err := r.stack.RestartController(ctx)
	if err != nil {
		return ThroughputResult{}, err
	}
	res, err := r.measureThroughput(ctx, target, pid, opts.Runs, opts.Tasks, opts.Timeout)
	if err != nil {
		res.Error = err.Error()
	}
	return res, clearRuns(ctx, target)
}

// measureReplicas runs the PipelineRuns through our controller with
// opts.Replicas replicas: the stack's leads, the others are started
// beside it and stopped after.
func (r *runner) measureReplicas(ctx context.Context, opts Options) (ThroughputResult, error) {
	target, err := r.oursTarget(ctx, opts.Workspaces)
	if err != nil {
		return ThroughputResult{}, err
	}
	target.name = fmt.Sprintf("pipelines-service (%d replicas)", opts.Replicas)
	if err := clearRuns(ctx, target); err != nil {
		return ThroughputResult{}, err
	}
	pid, _, err := r.stack.RestartController(ctx)
	if err != nil {
		return ThroughputResult{}, err
	}
	defer func() {
		for n := 2; n <= opts.Replicas; n++ {
			if err := r.stack.StopControllerReplica(n); err != nil {
				r.log.Errorw("stop controller replica", "replica", n, "error", err)
			}
		}
	}()
	if err := r.stack.WaitControllerLeader(ctx, 1, time.Minute); err != nil {
		return ThroughputResult{}, err
	}
	for n := 2; n <= opts.Replicas; n++ {
		if _, err := r.stack.StartControllerReplica(ctx, n); err != nil {
			return ThroughputResult{}, err
		}
	}
	// The replicas split the workspaces' parts before the burst: the
	// measure is of the split work, not of the hand-over.
	parts, err := r.stack.WaitControllerParts(ctx, time.Minute, devstack.PartsSpread(opts.Replicas, devstack.ControllerParts/opts.Replicas))
	if err != nil {
		return ThroughputResult{}, err
	}
	r.log.Infow("bench: the replicas hold the parts (part:replica)", "parts", devstack.DescribeParts(parts))
	res, err := r.measureThroughput(ctx, target, pid, opts.Runs, opts.Tasks, opts.Timeout)
	if err != nil {
		res.Error = err.Error()
	}
	return res, clearRuns(ctx, target)
}

// compareControllers runs the same PipelineRuns through our controller (with
// a CPU profile) and then through upstream Tekton's, each freshly started
// and alone on the workload cluster.
func (r *runner) compareControllers(ctx context.Context, opts Options, dir string, report *Report) (ThroughputResult, ThroughputResult, error) {
	var ours, upstream ThroughputResult
	oursTarget, err := r.oursTarget(ctx, opts.Workspaces)
	if err != nil {
		return ours, upstream, err
	}
	if err := clearRuns(ctx, oursTarget); err != nil {
		return ours, upstream, err
	}
	pid, _, err := r.stack.RestartController(ctx)
	if err != nil {
		return ours, upstream, err
	}
	report.Profile = filepath.Join(dir, "controller-cpu.pprof")
	stopProfile, err := controllerProfile(report.Profile)
	if err != nil {
		return ours, upstream, err
	}
	serversOurs, err := r.watchServers(ctx, "ours", true)
	if err != nil {
		return ours, upstream, err
	}
	kcpAdmin, err := kcpMetricsConfig(r.cfg.KCPAdminKubeconfig())
	if err != nil {
		return ours, upstream, err
	}
	report.KCPProfile = filepath.Join(dir, "kcp-cpu.pprof")
	kcpProfileDone := kcpProfile(ctx, kcpAdmin, report.KCPProfile)
	ours, err = r.measureThroughput(ctx, oursTarget, pid, opts.Runs, opts.Tasks, opts.Timeout)
	if serr := serversOurs(report); serr != nil && err == nil {
		err = serr
	}
	if perr := kcpProfileDone(); perr != nil && err == nil {
		err = perr
	} else if perr == nil {
		report.KCPTopFuncs = kcpProfileTop(report.KCPProfile, 30)
	}
	if perr := stopProfile(); perr != nil && err == nil {
		err = perr
	}
	if err != nil {
		// The other row is still measured and the table printed.
		ours.Error = err.Error()
	}
	report.TopFuncs = profileTop(r.cfg.ControllerBinary(), report.Profile)
	if ours.median != nil {
		if report.Trace, err = controllerTrace(ctx, *ours.median, filepath.Join(dir, "controller-trace.json")); err != nil {
			return ours, upstream, err
		}
	}
	if report.Timings, err = controllerTimings(); err != nil {
		return ours, upstream, err
	}
	if err := clearRuns(ctx, oursTarget); err != nil {
		return ours, upstream, err
	}
	if opts.IsolationRounds > 0 {
		isolation, err := r.measureIsolation(ctx, opts, oursTarget, pid, opts.IsolationRounds)
		if err != nil {
			isolation.Error = err.Error()
		}
		report.Isolation = &isolation
	}

	if err := r.stack.StopController(); err != nil {
		return ours, upstream, err
	}
	defer func() {
		if err := r.stopUpstreamTekton(context.Background()); err != nil {
			r.log.Errorw("uninstall upstream Tekton", "error", err)
		}
		if err := r.stack.StartController(context.Background()); err != nil {
			r.log.Errorw("restart controller", "error", err)
		}
	}()
	upstreamPID, err := r.startUpstreamTekton(ctx)
	if err != nil {
		return ours, upstream, err
	}
	upstreamTarget, err := r.upstreamTarget(ctx, opts.Workspaces)
	if err != nil {
		return ours, upstream, err
	}
	serversUpstream, err := r.watchServers(ctx, "upstream", false)
	if err != nil {
		return ours, upstream, err
	}
	upstream, err = r.measureThroughput(ctx, upstreamTarget, upstreamPID, opts.Runs, opts.Tasks, opts.Timeout)
	if serr := serversUpstream(report); serr != nil && err == nil {
		err = serr
	}
	if err != nil {
		upstream.Error = err.Error()
	}
	return ours, upstream, nil
}

// watchServers snapshots the /metrics of the first workload cluster's
// apiserver (and kcp's, withKCP) before a controller's run; the function
// it returns adds their figures over the run to the report.
func (r *runner) watchServers(ctx context.Context, controller string, withKCP bool) (func(*Report) error, error) {
	type server struct {
		name string
		done func() (ServerFigures, error)
	}
	var servers []server
	if withKCP {
		rc, err := kcpMetricsConfig(r.cfg.KCPAdminKubeconfig())
		if err != nil {
			return nil, err
		}
		done, err := serverWatch(ctx, "kcp ("+controller+")", rc)
		if err != nil {
			return nil, err
		}
		servers = append(servers, server{"kcp", done})
	}
	rc, err := clientcmd.BuildConfigFromFlags("", r.cfg.WorkloadAdminKubeconfig())
	if err != nil {
		return nil, err
	}
	done, err := serverWatch(ctx, r.cfg.WorkloadClusters()[0].Name+" apiserver ("+controller+")", rc)
	if err != nil {
		return nil, err
	}
	servers = append(servers, server{"workload", done})
	return func(report *Report) error {
		for _, s := range servers {
			figures, err := s.done()
			if err != nil {
				return err
			}
			report.Servers = append(report.Servers, figures)
		}
		return nil
	}, nil
}

// ratio is a/b, 0 where b is.
func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func ratios(ours, upstream ThroughputResult) map[string]float64 {
	return map[string]float64{
		"pipelineRunsPerMinute": ratio(ours.PerMinute, upstream.PerMinute),
		"firstPodSecondsP50":    ratio(ours.FirstPodP50, upstream.FirstPodP50),
		"firstPodSecondsP99":    ratio(ours.FirstPodP99, upstream.FirstPodP99),
		"controllerCPUSeconds":  ratio(ours.CPUSeconds, upstream.CPUSeconds),
		"controllerPeakRSSMiB":  ratio(ours.PeakRSSMiB, upstream.PeakRSSMiB),
	}
}

// profileTop is the head of `go tool pprof -top` for a profile.
func profileTop(binary, profile string) []string {
	out, err := exec.Command("go", "tool", "pprof", "-top", "-nodecount=15", binary, profile).Output()
	if err != nil {
		return []string{"pprof: " + err.Error()}
	}
	var lines []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if strings.HasPrefix(line, "File:") || strings.HasPrefix(line, "Build ID:") || strings.HasPrefix(line, "Type:") || strings.HasPrefix(line, "Time:") {
			continue
		}
		lines = append(lines, line)
	}
	return lines
}

func printReport(out io.Writer, r Report) {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "benchmark %s on %s\n", r.Date.Format(time.RFC3339), r.Machine)
	if len(r.Stack) > 0 {
		fmt.Fprintln(tw, "\nMEASURE\tCOMPONENT\tVALUE")
		for _, f := range r.Stack {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", f.Measure, f.Component, f.Value)
		}
	}
	if len(r.Runs) > 0 {
		fmt.Fprintf(tw, "\n%d workspaces x %d PipelineRuns x %d tasks\n", r.Options.Workspaces, r.Options.Runs, r.Options.Tasks)
		fmt.Fprintln(tw, "CONTROLLER\tRUNS\tSUCCEEDED\tSECONDS\tRUNS/MIN\tFIRST POD p50\tFIRST POD p99\tCPU s\tPEAK RSS MiB")
		for _, t := range r.Runs {
			name := t.Controller
			if t.Error != "" {
				name += " (FAILED)"
			}
			fmt.Fprintf(tw, "%s\t%d\t%d\t%.1f\t%.1f\t%.2f s\t%.2f s\t%.1f\t%.0f\n", name, t.PipelineRuns, t.Succeeded, t.Seconds, t.PerMinute, t.FirstPodP50, t.FirstPodP99, t.CPUSeconds, t.PeakRSSMiB)
		}
		fmt.Fprintf(tw, "ours/upstream\t\t\t\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\n", r.Ratios["pipelineRunsPerMinute"], r.Ratios["firstPodSecondsP50"], r.Ratios["firstPodSecondsP99"], r.Ratios["controllerCPUSeconds"], r.Ratios["controllerPeakRSSMiB"])
		if n := r.Options.Replicas; n > 1 {
			fmt.Fprintf(tw, "%d replicas/1 replica\t\t\t\t%.2f\t(the replicas split the workspaces' parts)\n", n, r.Ratios[fmt.Sprintf("pipelineRunsPerMinute%dReplicasTo1", n)])
		}
		for _, t := range r.Runs {
			if t.Error != "" {
				fmt.Fprintf(tw, "%s failed: %s\n", t.Controller, t.Error)
			}
		}
		for _, t := range r.Runs {
			fmt.Fprintf(tw, "%s: creation to first TaskRun p50 %.2f s, p99 %.2f s (the rest of first pod is the TaskRun's)\n", t.Controller, t.FirstTaskRunP50, t.FirstTaskRunP99)
			if t.StoredP50 > 0 || t.StoredP99 > 0 {
				fmt.Fprintf(tw, "%s: run done to stored in Tekton Results: p50 %.2f s, p99 %.2f s\n", t.Controller, t.StoredP50, t.StoredP99)
			}
		}
		fmt.Fprintln(tw, "\nstack CPU seconds during each run (with waited-for children):")
		for _, t := range r.Runs {
			fmt.Fprintf(tw, "%s\t%s; the whole machine %.1f\n", t.Controller, formatStackCPU(t.StackCPUSeconds), t.MachineCPUSeconds)
		}
	}
	printIsolation(tw, r.Isolation)
	if g := r.Gateway; g != nil {
		fmt.Fprintf(tw, "\ngateway: %d requests each way (a list of TaskRuns as the demo tenant)\n", g.Requests)
		fmt.Fprintln(tw, "KCP p50\tGATEWAY p50\tADDED p50\tKCP p99\tGATEWAY p99\tLOG LINES\tLOG LAG p50\tLOG LAG max")
		fmt.Fprintf(tw, "%.1f ms\t%.1f ms\t%.1f ms\t%.1f ms\t%.1f ms\t%d\t%.0f ms\t%.0f ms\n", g.KCPP50MS, g.GatewayP50MS, g.OverheadP50MS, g.KCPP99MS, g.GatewayP99MS, g.LogLines, g.LogLagP50MS, g.LogLagMaxMS)
	}
	if i := r.Idle; i != nil {
		fmt.Fprintf(tw, "\nidle scale: %d bound workspaces (setup %.0f s)\n", i.Workspaces, i.SetupSeconds)
		fmt.Fprintln(tw, "CONTROLLER START-UP\tCONTROLLER RSS\tKCP RSS\tKCP ETCD RSS\tRUN: FIRST POD\tRUN: DONE")
		fmt.Fprintf(tw, "%.1f s\t%.0f MiB\t%.0f MiB\t%.0f MiB\t%.2f s\t%.1f s\n", i.StartupSeconds, i.ControllerRSSMiB, i.KCPRSSMiB, i.KCPEtcdRSSMiB, i.RunFirstPodSeconds, i.RunDoneSeconds)
		fmt.Fprintf(tw, "kcp shards (front-proxy %.0f MiB):\n", i.FrontProxyRSSMiB)
		fmt.Fprintln(tw, "SHARD\tIDLE WORKSPACES\tKCP RSS\tETCD RSS")
		for _, sh := range i.Shards {
			fmt.Fprintf(tw, "%s\t%d\t%.0f MiB\t%.0f MiB\n", sh.Shard, sh.Workspaces, sh.KCPRSSMiB, sh.EtcdRSSMiB)
		}
	}
	if l := r.Listeners; l != nil {
		fmt.Fprintf(tw, "\nidle EventListeners: %d in %d workspaces (created in %.0f s, all Ready after %.0f s)\n", l.Listeners, l.Workspaces, l.SetupSeconds, l.ReadySeconds)
		fmt.Fprintln(tw, "SINK PODS BEFORE\tSINK PODS AFTER\tCONTROLLER RSS\tWORKLOAD PODS CREATED\tWEBHOOK TO PIPELINERUN p50\tp99\tEVENTS")
		fmt.Fprintf(tw, "%.0f MiB\t%.0f MiB\t%.0f MiB\t%d\t%.3f s\t%.3f s\t%d\n", l.SinkRSSBeforeMiB, l.SinkRSSAfterMiB, l.ControllerRSSMiB, l.WorkloadPodsCreated, l.WebhookToRunP50, l.WebhookToRunP99, l.Events)
	}
	if len(r.Timings) > 0 {
		fmt.Fprintln(tw, "\nour controller's time (reconciles; API requests, watches excluded):")
		fmt.Fprintln(tw, "OPERATION\tCOUNT\tMEAN ms\tTOTAL s")
		for _, t := range r.Timings {
			fmt.Fprintf(tw, "%s\t%.0f\t%.1f\t%.1f\n", t.Name, t.Count, t.MeanMS, t.TotalMS/1000)
		}
	}
	if r.Trace != nil {
		printTrace(tw, r.Trace)
	}
	printServerFigures(tw, r.Servers)
	if len(r.KCPTopFuncs) > 0 {
		fmt.Fprintf(tw, "\nkcp's CPU over the first %d s of our run, by cumulative time (%s; runtime, library and filter frames left out):\n", kcpProfileSeconds, r.KCPProfile)
		for _, l := range r.KCPTopFuncs {
			fmt.Fprintln(tw, l)
		}
	}
	if len(r.TopFuncs) > 0 {
		fmt.Fprintf(tw, "\ncontroller CPU profile (%s):\n", r.Profile)
		for _, l := range r.TopFuncs {
			fmt.Fprintln(tw, l)
		}
	}
	_ = tw.Flush()
}

func machine() string {
	mem := procMemTotalGiB()
	return fmt.Sprintf("%d cores, %.0f GiB, %s/%s", runtime.NumCPU(), mem, runtime.GOOS, runtime.GOARCH)
}

func procMemTotalGiB() float64 {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	var kb float64
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			fmt.Sscanf(strings.TrimSpace(v), "%f", &kb)
		}
	}
	return kb / (1 << 20)
}

func writeJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}
