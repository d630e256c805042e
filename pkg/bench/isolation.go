package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"testing"
	"time"

	"github.com/kcp-dev/logicalcluster/v3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	psaapi "k8s.io/pod-security-admission/api"
	"k8s.io/utils/ptr"

	fleetv1alpha1 "github.com/pipelines-service/pipelines-service/apis/fleet/v1alpha1"
	"github.com/pipelines-service/pipelines-service/pkg/devstack"
	"github.com/pipelines-service/pipelines-service/pkg/fleet"
	"github.com/pipelines-service/pipelines-service/pkg/podsecurity"
)

// IsolationPart is what of the isolation the isolated rows have: all of
// it, or one part, for what each part costs.
type IsolationPart string

const (
	IsolationAll IsolationPart = "all"
	// IsolationUserNamespaces: the default Pod Security level (pods in
	// user namespaces where the nodes support them), the agents stopped.
	IsolationUserNamespaces IsolationPart = "user-namespaces"
	// IsolationNetworkPolicy: the agents running, the privileged level
	// (no user namespaces).
	IsolationNetworkPolicy IsolationPart = "network-policy"
)

func (p IsolationPart) String() string { return string(p) }

// ParseIsolationPart reads a part by name.
func ParseIsolationPart(name string) (IsolationPart, error) {
	switch p := IsolationPart(name); p {
	case IsolationAll, IsolationUserNamespaces, IsolationNetworkPolicy:
		return p, nil
	}
	return "", fmt.Errorf("isolation part %q: want %s, %s or %s", name, IsolationAll, IsolationUserNamespaces, IsolationNetworkPolicy)
}

// level is whether the isolated rows run at the default Pod Security
// level; agents, whether the policy agents run in them.
func (p IsolationPart) level() bool  { return p != IsolationNetworkPolicy }
func (p IsolationPart) agents() bool { return p != IsolationUserNamespaces }

// IsolationResult is what tenant isolation costs our controller in
// throughput. The same PipelineRuns go through our controller in the
// benchmark's tenant workspaces, in alternating rounds:
//   - isolated, as every tenant is: the default Pod Security level
//     (baseline, pods in user namespaces where the nodes support them) and
//     the network policy agents enforcing each namespace's isolation
//     policy;
//   - plain: the workspaces at the privileged level (no user namespaces)
//     and the agents stopped (their rules stay, but no new pod gets a
//     filter), which is the platform without its isolation.
//
// Alternating rounds of neighbours: the drift of a 2-core machine (one
// controller moved between 8 and 27 runs/min from one bench to the next)
// weighs on both alike. The rows keep the machine's cores busy, so what
// the isolation costs in CPU anywhere (the agents, the runtime's work for
// user namespaces, the kernel's) it costs in throughput: each row has the
// machine's CPU time beside the stack's. The controller's own Pod
// Security check of every pod is timed apart (testing.Benchmark).
type IsolationResult struct {
	Rounds []IsolationRound `json:"rounds"`
	// RatioMedian is the median of the rounds' isolated/plain throughput.
	RatioMedian float64 `json:"ratioMedian"`
	// Part is what of the isolation the isolated rows had.
	Part IsolationPart `json:"part"`
	// UserNamespaces: the isolated pods ran in user namespaces.
	UserNamespaces bool `json:"userNamespaces"`
	// CheckMicroseconds is our controller's Pod Security check of one
	// pod of Tekton's shape at baseline.
	CheckMicroseconds float64 `json:"podSecurityCheckMicroseconds"`
	// Error says why the rounds stopped; the figures are those before.
	Error string `json:"error,omitempty"`
}

// IsolationRound is one round's pair, run one after the other.
type IsolationRound struct {
	Plain    ThroughputResult `json:"plain"`
	Isolated ThroughputResult `json:"isolated"`
	Ratio    float64          `json:"ratio"`
}

// measureIsolation runs rounds pairs of our controller's runs in target,
// plain and isolated, the order alternating from round to round, after a
// plain row that is not counted. The workspaces and the agents are left
// isolated.
func (r *runner) measureIsolation(ctx context.Context, opts Options, target runTarget, pid int, rounds int) (res IsolationResult, err error) {
	if res.CheckMicroseconds, err = podSecurityCheckMicroseconds(); err != nil {
		return res, err
	}
	kube, err := r.cfg.WorkloadClient()
	if err != nil {
		return res, err
	}
	part := opts.IsolationPart
	if part == "" {
		part = IsolationAll
	}
	res.Part = part
	if res.UserNamespaces, err = nodesSupportUserNamespaces(ctx, kube); err != nil {
		return res, err
	}
	res.UserNamespaces = res.UserNamespaces && part.level()
	workspaces, err := r.benchWorkspaces(ctx, opts.Workspaces)
	if err != nil {
		return res, err
	}
	// Isolated is the default policy (no TenantPolicy of its own), plain
	// the privileged level; part may leave one of the two out.
	isolate := func(ctx context.Context, on bool, part IsolationPart) error {
		for _, ws := range workspaces {
			var err error
			if on && part.level() {
				err = r.stack.DeleteTenantPolicy(ctx, ws)
			} else {
				err = r.stack.SetTenantPolicy(ctx, ws, fleetv1alpha1.TenantPolicySpec{PodSecurity: string(psaapi.LevelPrivileged)})
			}
			if err != nil {
				return err
			}
		}
		if on && part.agents() {
			return r.stack.StartNetworkPolicyAgents(ctx)
		}
		return r.stack.StopNetworkPolicyAgents()
	}
	defer func() {
		// Also when the bench is interrupted: no stack is left without its
		// isolation.
		if ierr := isolate(context.WithoutCancel(ctx), true, IsolationAll); ierr != nil && err == nil {
			err = fmt.Errorf("isolate the bench workspaces again: %w", ierr)
		}
	}()
	kubelets, err := newNodeMetrics(r.cfg)
	if err != nil {
		return res, err
	}
	row := func(ctx context.Context, round int, isolated bool) (ThroughputResult, error) {
		if err := isolate(ctx, isolated, part); err != nil {
			return ThroughputResult{}, err
		}
		if err := waitPoliciesInForce(ctx, workspaces, isolated && part.level()); err != nil {
			return ThroughputResult{}, err
		}
		r.log.Infow("isolation round: measuring", "round", round, "isolated", isolated)
		if err := clearRuns(ctx, target); err != nil {
			return ThroughputResult{}, err
		}
		if err := r.waitSandboxesRemoved(ctx); err != nil {
			return ThroughputResult{}, err
		}
		figures, err := kubelets.watch(ctx)
		if err != nil {
			return ThroughputResult{}, err
		}
		tp, err := r.measureThroughput(ctx, target, pid, opts.Runs, opts.Tasks, opts.Timeout)
		if err != nil {
			return tp, err
		}
		tp.Kubelets, err = figures()
		return tp, err
	}
	// A plain row first, not counted. A row pays for the teardown of the
	// row before it (the workload clusters stop and remove its pods while
	// the next one runs), and the first round's plain row had none to pay:
	// it used 39 CPU seconds of the stack where the other rows used 50-52,
	// containerd 8.6 where the others used 12.6-15.3. After a plain row
	// first, each round's two rows follow a row of the same kind (plain,
	// then plain in odd rounds; isolated, then isolated in even ones).
	if rounds > 0 {
		if _, err := row(ctx, 0, false); err != nil {
			return res, fmt.Errorf("isolation warm-up row: %w", err)
		}
	}
	var ratios []float64
	for i := range rounds {
		order := []bool{false, true}
		if i%2 == 1 {
			order = []bool{true, false}
		}
		var round IsolationRound
		for _, isolated := range order {
			tp, err := row(ctx, i+1, isolated)
			if err != nil {
				return res, fmt.Errorf("isolation round %d: %w", i+1, err)
			}
			if isolated {
				round.Isolated = tp
			} else {
				round.Plain = tp
			}
		}
		round.Ratio = ratio(round.Isolated.PerMinute, round.Plain.PerMinute)
		r.log.Infow("isolation round", "round", i+1, "plain", round.Plain.PerMinute, "isolated", round.Isolated.PerMinute, "ratio", round.Ratio)
		res.Rounds = append(res.Rounds, round)
		ratios = append(ratios, round.Ratio)
	}
	sort.Float64s(ratios)
	if n := len(ratios); n > 0 {
		res.RatioMedian = (ratios[(n-1)/2] + ratios[n/2]) / 2
	}
	return res, clearRuns(ctx, target)
}

// sandboxesRemovedWithin bounds the wait for the kubelets' garbage
// collection: it runs once a minute, and removes some 60 sandboxes in
// about 30 s on this machine.
const sandboxesRemovedWithin = 3 * time.Minute

// waitSandboxesRemoved waits until the workload nodes have removed the
// sandboxes of the pods the last row left. The kubelets remove them in
// their container garbage collection, once a minute, and a row takes 30
// to 45 s: without the wait, every other row paid for the row before it
// (the CNI plugins ran 2.5 times as much in those rows, containerd 40%
// more), and which row of a round paid decided much of its ratio.
func (r *runner) waitSandboxesRemoved(ctx context.Context) error {
	start := time.Now()
	left := 0
	err := wait.PollUntilContextTimeout(ctx, time.Second, sandboxesRemovedWithin, true, func(ctx context.Context) (bool, error) {
		var err error
		left, err = r.cfg.SandboxesOfGonePods(ctx)
		return err == nil && left == 0, err
	})
	if err != nil {
		return fmt.Errorf("the workload nodes keep %d sandboxes of removed pods after %s: %w", left, sandboxesRemovedWithin, err)
	}
	r.log.Infow("isolation round: the last row's sandboxes are removed", "seconds", time.Since(start).Seconds())
	return nil
}

// waitPoliciesInForce waits until the controller acts on the workspaces'
// policies (it reads them from an informer, /debug/fleet shows what it
// acts on): their own privileged one, or none at the default level.
func waitPoliciesInForce(ctx context.Context, workspaces []string, defaultLevel bool) error {
	return wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		resp, err := http.Get("http://" + devstack.ControllerDebugAddress + "/debug/fleet")
		if err != nil {
			return false, nil
		}
		defer resp.Body.Close()
		var view fleet.View
		if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&view) != nil {
			return false, nil
		}
		for _, ws := range workspaces {
			policy, ok := view.Policies[ws]
			inForce := !ok
			if !defaultLevel {
				inForce = ok && policy.PodSecurity == string(psaapi.LevelPrivileged)
			}
			if !inForce {
				return false, nil
			}
		}
		return true, nil
	})
}

// benchWorkspaces are the logical clusters of the benchmark's w tenant
// workspaces (oursTarget's).
func (r *runner) benchWorkspaces(ctx context.Context, w int) ([]string, error) {
	client, err := r.cfg.KCPClusterClient()
	if err != nil {
		return nil, err
	}
	var out []string
	for i := range w {
		ws, err := client.Cluster(logicalcluster.NewPath("root")).TenancyV1alpha1().Workspaces().Get(ctx, fmt.Sprintf("bench-%d", i), metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		out = append(out, ws.Spec.Cluster)
	}
	return out, nil
}

// nodesSupportUserNamespaces is the fleet's rule: every node says so.
func nodesSupportUserNamespaces(ctx context.Context, kube kubernetes.Interface) (bool, error) {
	nodes, err := kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return false, err
	}
	for i := range nodes.Items {
		if !fleet.NodeSupportsUserNamespaces(&nodes.Items[i]) {
			return false, nil
		}
	}
	return len(nodes.Items) > 0, nil
}

// podSecurityCheckMicroseconds times our controller's check of a pod of
// Tekton's shape (two init containers, a step, Tekton's volumes).
func podSecurityCheckMicroseconds() (float64, error) {
	checker, err := podsecurity.NewChecker()
	if err != nil {
		return 0, err
	}
	meta, spec := tektonShapedPod()
	if err := checker.Check(psaapi.LevelBaseline, meta, spec); err != nil {
		return 0, fmt.Errorf("a pod of Tekton's shape fails baseline: %w", err)
	}
	result := testing.Benchmark(func(b *testing.B) {
		for b.Loop() {
			_ = checker.Check(psaapi.LevelBaseline, meta, spec)
		}
	})
	return float64(result.NsPerOp()) / 1e3, nil
}

func tektonShapedPod() (*metav1.ObjectMeta, *corev1.PodSpec) {
	mounts := []corev1.VolumeMount{{Name: "tekton-internal-tools", MountPath: "/tekton/bin"}, {Name: "tekton-internal-scripts", MountPath: "/tekton/scripts"}}
	emptyDir := corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}
	return &metav1.ObjectMeta{Name: "bench-t0-pod", Namespace: "bench"}, &corev1.PodSpec{
		RestartPolicy: corev1.RestartPolicyNever,
		HostUsers:     ptr.To(false),
		InitContainers: []corev1.Container{
			{Name: "prepare", Image: "entrypoint", Command: []string{"/ko-app/entrypoint", "init"}, VolumeMounts: mounts[:1]},
			{Name: "place-scripts", Image: "busybox", Command: []string{"sh"}, VolumeMounts: mounts},
		},
		Containers: []corev1.Container{{Name: "step-echo", Image: "busybox", Command: []string{"/tekton/bin/entrypoint"}, VolumeMounts: mounts}},
		Volumes:    []corev1.Volume{{Name: "tekton-internal-tools", VolumeSource: emptyDir}, {Name: "tekton-internal-scripts", VolumeSource: emptyDir}},
	}
}

func printIsolation(out io.Writer, iso *IsolationResult) {
	if iso == nil {
		return
	}
	isolated := "baseline, agents running"
	switch iso.Part {
	case IsolationUserNamespaces:
		isolated = "only the part " + string(iso.Part) + ": baseline, agents stopped"
	case IsolationNetworkPolicy:
		isolated = "only the part " + string(iso.Part) + ": privileged, agents running"
	}
	fmt.Fprintf(out, "\nisolation: our controller, the bench workspaces plain (privileged, policy agents stopped) and isolated (%s, user namespaces: %v), alternating\n", isolated, iso.UserNamespaces)
	fmt.Fprintln(out, "ROUND\tPLAIN RUNS/MIN\tISOLATED RUNS/MIN\tISOLATED/PLAIN\tFIRST POD p50 PLAIN\tISOLATED\tMACHINE CPU s/RUN PLAIN\tISOLATED\tMACHINE BUSY PLAIN\tISOLATED")
	for i, round := range iso.Rounds {
		fmt.Fprintf(out, "%d\t%.1f\t%.1f\t%.2f\t%.2f s\t%.2f s\t%.2f\t%.2f\t%.0f%%\t%.0f%%\n", i+1, round.Plain.PerMinute, round.Isolated.PerMinute, round.Ratio,
			round.Plain.FirstPodP50, round.Isolated.FirstPodP50, round.Plain.machineCPUPerRun(), round.Isolated.machineCPUPerRun(),
			100*round.Plain.MachineBusy, 100*round.Isolated.MachineBusy)
	}
	fmt.Fprintf(out, "median isolated/plain\t\t\t%.2f\n", iso.RatioMedian)
	printKubeletRounds(out, iso.Rounds)
	fmt.Fprintf(out, "our controller's Pod Security check of a pod: %.1f us\n", iso.CheckMicroseconds)
	if iso.Error != "" {
		fmt.Fprintf(out, "isolation rounds failed: %s\n", iso.Error)
	}
}
