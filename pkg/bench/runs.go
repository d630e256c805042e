package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	tektonclient "github.com/tektoncd/pipeline/pkg/client/clientset/versioned"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/pipelines-service/pipelines-service/pkg/devstack"
	"github.com/pipelines-service/pipelines-service/pkg/metrics"
)

// ThroughputResult is one controller's figures for the same PipelineRuns.
type ThroughputResult struct {
	Controller   string  `json:"controller"`
	PipelineRuns int     `json:"pipelineRuns"`
	Succeeded    int     `json:"succeeded"`
	Seconds      float64 `json:"seconds"`
	PerMinute    float64 `json:"pipelineRunsPerMinute"`
	FirstPodP50  float64 `json:"firstPodSecondsP50"`
	FirstPodP99  float64 `json:"firstPodSecondsP99"`
	// FirstTaskRunP50 and FirstTaskRunP99 are from creation to its first
	// TaskRun seen by a watch: first pod minus this is the TaskRun's own
	// way to its pod.
	FirstTaskRunP50 float64 `json:"firstTaskRunSecondsP50"`
	FirstTaskRunP99 float64 `json:"firstTaskRunSecondsP99"`
	CPUSeconds      float64 `json:"controllerCPUSeconds"`
	PeakRSSMiB      float64 `json:"controllerPeakRSSMiB"`
	// StackCPUSeconds is the CPU time of the stack's processes during the
	// run, by kind (kcp, kubelet, network-policy-agent, ...): where the
	// machine's two cores went besides the controller.
	StackCPUSeconds map[string]float64 `json:"stackCPUSeconds,omitempty"`
	// MachineCPUSeconds is the CPU time of the whole machine during the
	// run, the kernel and the processes of no stack component (shims,
	// runc, CNI plugins, the pods themselves) included.
	MachineCPUSeconds float64 `json:"machineCPUSeconds,omitempty"`
	// MachineBusy is MachineCPUSeconds over what the machine's processors
	// offer in the same time: 1 is every core busy throughout.
	MachineBusy float64 `json:"machineBusy,omitempty"`
	// StoredP50 and StoredP99 are how long after a run was done the
	// recorder marked it stored in Tekton Results (recorded runs only).
	StoredP50 float64 `json:"storedSecondsP50,omitempty"`
	StoredP99 float64 `json:"storedSecondsP99,omitempty"`
	// Kubelets are the workload nodes' kubelet histograms over the run
	// (isolation rows only): where a pod's time on the nodes went.
	Kubelets []ServerFigure `json:"kubelets,omitempty"`
	// Error says why this controller's measurement failed; the figures
	// are what was measured before.
	Error string `json:"error,omitempty"`

	// median is the run with the median first pod, for the trace.
	median *tracedRun
}

// machineCPUPerRun is the machine's CPU seconds per PipelineRun of the
// measurement, 0 without runs.
func (t ThroughputResult) machineCPUPerRun() float64 {
	if t.PipelineRuns == 0 {
		return 0
	}
	return t.MachineCPUSeconds / float64(t.PipelineRuns)
}

// runTarget is where benchmark PipelineRuns are created: tenant workspaces
// through kcp (ours) or namespaces of the workload cluster (upstream).
type runTarget struct {
	name    string
	clients []tektonclient.Interface // one per workspace or namespace
	ns      func(i int) string
	// recorded: the runs are archived in Tekton Results (our controller
	// with its recorder), and the time to that is measured.
	recorded bool
}

const benchPipelineRunLabel = "tekton.dev/pipelineRunUID"

// benchPipelineRun is a PipelineRun of tasks trivial tasks, all parallel,
// with a generated name (runs never meet leftovers of an earlier run).
func benchPipelineRun(prefix string, tasks int) *v1.PipelineRun {
	spec := &v1.PipelineSpec{}
	for i := 0; i < tasks; i++ {
		spec.Tasks = append(spec.Tasks, v1.PipelineTask{
			Name: fmt.Sprintf("t%d", i),
			TaskSpec: &v1.EmbeddedTask{TaskSpec: v1.TaskSpec{Steps: []v1.Step{
				{Name: "echo", Image: "busybox:1.36", Script: "echo ok"},
			}}},
		})
	}
	return &v1.PipelineRun{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix}, Spec: v1.PipelineRunSpec{PipelineSpec: spec}}
}

// measureThroughput creates runs PipelineRuns of tasks tasks in every
// workspace of target at once and waits for all of them, timing creation to
// first pod (seen by a watch on the workload cluster) and to completion, and
// the controller's CPU time and peak memory (pid).
func (r *runner) measureThroughput(ctx context.Context, target runTarget, pid int, runs, tasks int, timeout time.Duration) (ThroughputResult, error) {
	res := ThroughputResult{Controller: target.name}
	firstPod, stopWatch, err := r.watchFirstPods(ctx)
	if err != nil {
		return res, err
	}
	defer stopWatch()
	cpu0, err := procCPUSeconds(pid)
	if err != nil {
		return res, err
	}
	stack0 := stackCPU(r.stack.Status())
	machine0, err := readMachineCPU()
	if err != nil {
		return res, err
	}
	machineSince := time.Now()

	// Informers (not polling, which would load kcp and the apiserver
	// unevenly) report each PipelineRun when it is done.
	tracker := newRunTracker()
	stopTracking := trackRuns(ctx, target, tracker)
	defer stopTracking()

	start := time.Now()
	var wg sync.WaitGroup
	var namesMu sync.Mutex
	names := map[types.UID]string{}
	errs := make(chan error, len(target.clients))
	for i, client := range target.clients {
		wg.Add(1)
		go func(i int, client tektonclient.Interface) {
			defer wg.Done()
			for range runs {
				pr, err := client.TektonV1().PipelineRuns(target.ns(i)).Create(ctx, benchPipelineRun("bench-", tasks), metav1.CreateOptions{})
				if err != nil {
					errs <- fmt.Errorf("%s: create PipelineRun: %w", target.name, err)
					return
				}
				tracker.create(pr.UID, time.Now())
				namesMu.Lock()
				names[pr.UID] = pr.Name
				namesMu.Unlock()
			}
		}(i, client)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		return res, err
	}
	created := tracker.createdAt()
	res.PipelineRuns = len(created)

	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if done, _, _ := tracker.tally(); done == len(created) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if done, _, _ := tracker.tally(); done < len(created) {
		// A missed event must not turn a success into a failure.
		if err := listRuns(ctx, target, tracker); err != nil {
			return res, fmt.Errorf("%s: list PipelineRuns at the deadline: %w", target.name, err)
		}
	}
	done, succeeded, last := tracker.tally()
	res.Succeeded = succeeded
	res.Seconds = last.Sub(start).Seconds()
	if res.Seconds > 0 {
		res.PerMinute = float64(done) / res.Seconds * 60
	}
	var latencies, toTaskRun []float64
	for uid, t := range created {
		if seen, ok := firstPod(uid); ok {
			latencies = append(latencies, seen.Sub(t).Seconds())
		}
		if seen, ok := tracker.firstTaskRunOf(uid); ok {
			toTaskRun = append(toTaskRun, seen.Sub(t).Seconds())
		}
	}
	res.FirstPodP50, res.FirstPodP99 = percentile(latencies, 50), percentile(latencies, 99)
	res.FirstTaskRunP50, res.FirstTaskRunP99 = percentile(toTaskRun, 50), percentile(toTaskRun, 99)
	res.median = medianRun(created, firstPod, names)
	if target.recorded {
		if err := waitStored(ctx, target, tracker, timeout); err != nil {
			res.Error = err.Error()
		}
		stored, _ := tracker.storedAfterDone()
		res.StoredP50, res.StoredP99 = percentile(stored, 50), percentile(stored, 99)
	}
	cpu1, err := procCPUSeconds(pid)
	if err != nil {
		return res, err
	}
	res.CPUSeconds = cpu1 - cpu0
	res.StackCPUSeconds = cpuDelta(stack0, stackCPU(r.stack.Status()))
	machine1, err := readMachineCPU()
	if err != nil {
		return res, err
	}
	res.MachineCPUSeconds = machine1.busySeconds - machine0.busySeconds
	res.MachineBusy = busyFraction(res.MachineCPUSeconds, time.Since(machineSince), machine1.processors)
	res.PeakRSSMiB = procStatusMiB(pid, "VmHWM")
	if done < len(created) {
		return res, fmt.Errorf("%s: %d of %d PipelineRuns finished within %s", target.name, done, len(created), timeout)
	}
	return res, nil
}

// waitStored waits until every run is seen stored in Results, or timeout
// (then a list has the last word).
func waitStored(ctx context.Context, target runTarget, tracker *runTracker, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if _, missing := tracker.storedAfterDone(); missing == 0 {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err := listRuns(ctx, target, tracker); err != nil {
		return err
	}
	if _, missing := tracker.storedAfterDone(); missing > 0 {
		return fmt.Errorf("%s: %d PipelineRuns not stored in Results within %s", target.name, missing, timeout)
	}
	return nil
}

// watchFirstPods records when a pod of each PipelineRun (by UID label) is
// first seen on a workload cluster.
func (r *runner) watchFirstPods(ctx context.Context) (func(types.UID) (time.Time, bool), func(), error) {
	var mu sync.Mutex
	seen := map[types.UID]time.Time{}
	stop := make(chan struct{})
	// Every workload cluster: our runs are placed on either, and a run
	// whose pods went elsewhere would have no first pod.
	for _, cl := range r.cfg.WorkloadClusters() {
		client, err := r.cfg.WorkloadClusterClient(cl.Name)
		if err != nil {
			close(stop)
			return nil, nil, err
		}
		factory := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.LabelSelector = benchPipelineRunLabel
		}))
		inf := factory.Core().V1().Pods().Informer()
		if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: func(obj interface{}) {
			pod, ok := obj.(*corev1.Pod)
			if !ok {
				return
			}
			uid := types.UID(pod.Labels[benchPipelineRunLabel])
			mu.Lock()
			defer mu.Unlock()
			if _, ok := seen[uid]; !ok {
				seen[uid] = time.Now()
			}
		}}); err != nil {
			close(stop)
			return nil, nil, err
		}
		factory.Start(stop)
		if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
			close(stop)
			return nil, nil, fmt.Errorf("pod watch of %s did not sync", cl.Name)
		}
	}
	get := func(uid types.UID) (time.Time, bool) {
		mu.Lock()
		defer mu.Unlock()
		t, ok := seen[uid]
		return t, ok
	}
	return get, func() { close(stop) }, nil
}

func percentile(values []float64, p float64) float64 {
	if len(values) == 0 {
		return 0
	}
	sorted := append([]float64(nil), values...)
	sort.Float64s(sorted)
	i := int(float64(len(sorted)-1) * p / 100)
	return sorted[i]
}

// procStatusMiB reads a kB figure (VmRSS, VmHWM) of /proc/<pid>/status.
func procStatusMiB(pid int, key string) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, key+":"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

// oursTarget makes (or reuses) w tenant workspaces bench-<i>.
func (r *runner) oursTarget(ctx context.Context, w int) (runTarget, error) {
	t := runTarget{name: "pipelines-service", ns: func(int) string { return "default" }, recorded: true}
	for i := 0; i < w; i++ {
		kubeconfig, err := r.stack.AddTenant(ctx, fmt.Sprintf("bench-%d", i))
		if err != nil {
			return t, err
		}
		client, err := benchClient(kubeconfig)
		if err != nil {
			return t, err
		}
		t.clients = append(t.clients, client)
	}
	return t, nil
}

// upstreamTarget uses w namespaces bench-<i> of the workload cluster.
func (r *runner) upstreamTarget(ctx context.Context, w int) (runTarget, error) {
	t := runTarget{name: "tekton (upstream)", ns: func(i int) string { return fmt.Sprintf("bench-%d", i) }}
	client, err := benchClient(r.cfg.WorkloadAdminKubeconfig())
	if err != nil {
		return t, err
	}
	kube, err := r.cfg.WorkloadClient()
	if err != nil {
		return t, err
	}
	for i := 0; i < w; i++ {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: t.ns(i)}}
		if _, err := kube.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return t, err
		}
		t.clients = append(t.clients, client)
	}
	return t, nil
}

// benchClient is a Tekton client that submits as fast as the controllers
// are allowed to work (50 QPS, burst 100).
func benchClient(kubeconfig string) (tektonclient.Interface, error) {
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, err
	}
	rc.QPS, rc.Burst = 50, 100
	return tektonclient.NewForConfig(rc)
}

// clearRuns deletes the benchmark's PipelineRuns and TaskRuns of a target
// and waits until they are gone, so that every measurement starts empty.
func clearRuns(ctx context.Context, target runTarget) error {
	for i, client := range target.clients {
		for _, del := range []func(context.Context, metav1.DeleteOptions, metav1.ListOptions) error{
			client.TektonV1().PipelineRuns(target.ns(i)).DeleteCollection,
			client.TektonV1().TaskRuns(target.ns(i)).DeleteCollection,
		} {
			if err := del(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil && !apierrors.IsNotFound(err) {
				return err
			}
		}
	}
	// Until the TaskRuns are gone too: a controller finalizing an earlier
	// run's TaskRuns (their workload objects) while the next run is
	// measured would be counted against it.
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		left := 0
		for i, client := range target.clients {
			prs, err := client.TektonV1().PipelineRuns(target.ns(i)).List(ctx, metav1.ListOptions{})
			if err != nil && !apierrors.IsNotFound(err) {
				return err
			}
			trs, err := client.TektonV1().TaskRuns(target.ns(i)).List(ctx, metav1.ListOptions{})
			if err != nil && !apierrors.IsNotFound(err) {
				return err
			}
			if prs != nil {
				left += len(prs.Items)
			}
			if trs != nil {
				left += len(trs.Items)
			}
		}
		if left == 0 {
			return nil
		}
		time.Sleep(time.Second)
	}
	return fmt.Errorf("%s: runs of an earlier run not deleted within 3m", target.name)
}

// ControllerTiming is the count and time of one operation of our
// controller (a reconcile per controller, a request per server, verb and
// resource) since its start, from its /metrics histograms.
type ControllerTiming struct {
	Name    string  `json:"name"`
	Count   float64 `json:"count"`
	MeanMS  float64 `json:"meanMs"`
	TotalMS float64 `json:"totalMs"`
}

// controllerTimings reads the host controller's reconcile and request
// histograms, the largest total first.
func controllerTimings() ([]ControllerTiming, error) {
	resp, err := http.Get("http://" + devstack.ControllerDebugAddress + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	families, err := metrics.Parse(resp.Body)
	if err != nil {
		return nil, err
	}
	return timingsOf(families), nil
}

// timingsOf sums the reconcile and request histograms by operation
// (results and response codes together).
func timingsOf(families metrics.Families) []ControllerTiming {
	byName := map[string]*ControllerTiming{}
	add := func(name string, s metrics.Sample) {
		t, ok := byName[name]
		if !ok {
			t = &ControllerTiming{Name: name}
			byName[name] = t
		}
		t.Count += s.Count
		t.TotalMS += s.Sum * 1000
	}
	for _, s := range families.Samples("pipelines_service_reconcile_duration_seconds", nil) {
		add("reconcile "+s.Labels["controller"], s)
	}
	for _, s := range families.Samples("pipelines_service_client_request_duration_seconds", nil) {
		add(strings.TrimSpace(s.Labels["server"]+" "+s.Labels["verb"]+" "+s.Labels["resource"]), s)
	}
	out := make([]ControllerTiming, 0, len(byName))
	for _, t := range byName {
		if t.Count > 0 {
			t.MeanMS = t.TotalMS / t.Count
		}
		out = append(out, *t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].TotalMS > out[j].TotalMS })
	return out
}

// controllerProfile starts a CPU profile of the host controller and returns
// a function that stops it and writes it to path.
func controllerProfile(path string) (func() error, error) {
	base := "http://" + devstack.ControllerDebugAddress + "/debug/cpuprofile/"
	resp, err := http.Post(base+"start", "text/plain", nil)
	if err != nil {
		return nil, err
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("start CPU profile: %s", resp.Status)
	}
	return func() error {
		resp, err := http.Get(base + "stop")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("stop CPU profile: %s", resp.Status)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(f, resp.Body)
		return err
	}, nil
}
