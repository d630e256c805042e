package bench

import (
	"context"
	"fmt"
	"io"
	"sort"
	"testing"

	"github.com/tektoncd/pipeline/pkg/apis/pipeline/pod"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	psaapi "k8s.io/pod-security-admission/api"
	"k8s.io/utils/ptr"

	"github.com/pipelines-service/pipelines-service/pkg/fleet"
	"github.com/pipelines-service/pipelines-service/pkg/podsecurity"
	"github.com/pipelines-service/pipelines-service/pkg/workload"
)

// IsolationResult is what tenant isolation costs in throughput. The
// isolation acts at two places:
//   - on the workload cluster: Pod Security admission, the isolation
//     NetworkPolicy (enforced by the network policy agent), and pods in
//     user namespaces where the nodes support them. The same controller
//     (upstream Tekton, so that kcp's latency is not in the figure) runs
//     the same PipelineRuns in plain namespaces and in namespaces isolated
//     as ours are, in alternating rounds: the drift of a 2-core machine
//     (upstream alone moved between 8 and 27 runs/min from one bench to
//     the next) then weighs on both alike, and each round's ratio compares
//     neighbours;
//   - in our controller: the Pod Security check of every pod before it is
//     created, timed on its own (testing.Benchmark).
type IsolationResult struct {
	Rounds []IsolationRound `json:"rounds"`
	// RatioMedian is the median of the rounds' isolated/plain throughput.
	RatioMedian float64 `json:"ratioMedian"`
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

// measureIsolation runs rounds pairs of upstream Tekton's (pid) runs,
// plain and isolated, the order alternating from round to round.
func (r *runner) measureIsolation(ctx context.Context, opts Options, pid int, rounds int) (IsolationResult, error) {
	var res IsolationResult
	check, err := podSecurityCheckMicroseconds()
	if err != nil {
		return res, err
	}
	res.CheckMicroseconds = check
	plain, err := r.upstreamTarget(ctx, opts.Workspaces)
	if err != nil {
		return res, err
	}
	isolated, err := r.isolatedTarget(ctx, opts.Workspaces)
	if err != nil {
		return res, err
	}
	res.UserNamespaces = isolated.podTemplate.HostUsers != nil
	var ratios []float64
	for i := range rounds {
		targets := []*runTarget{&plain, &isolated}
		if i%2 == 1 {
			targets[0], targets[1] = targets[1], targets[0]
		}
		results := map[string]ThroughputResult{}
		for _, t := range targets {
			if err := clearRuns(ctx, *t); err != nil {
				return res, err
			}
			tp, err := r.measureThroughput(ctx, *t, pid, opts.Runs, opts.Tasks, opts.Timeout)
			if err != nil {
				return res, fmt.Errorf("isolation round %d: %w", i+1, err)
			}
			results[t.name] = tp
		}
		round := IsolationRound{Plain: results[plain.name], Isolated: results[isolated.name]}
		round.Ratio = ratio(round.Isolated.PerMinute, round.Plain.PerMinute)
		r.log.Infow("isolation round", "round", i+1, "plain", round.Plain.PerMinute, "isolated", round.Isolated.PerMinute, "ratio", round.Ratio)
		res.Rounds = append(res.Rounds, round)
		ratios = append(ratios, round.Ratio)
	}
	for _, t := range []runTarget{plain, isolated} {
		if err := clearRuns(ctx, t); err != nil {
			return res, err
		}
	}
	sort.Float64s(ratios)
	if n := len(ratios); n > 0 {
		res.RatioMedian = (ratios[(n-1)/2] + ratios[n/2]) / 2
	}
	return res, nil
}

// isolatedTarget is upstream's target in namespaces isolated as our
// controller isolates a tenant's at the default level: the Pod Security
// labels, the isolation NetworkPolicy, and user namespaces where every
// node supports them.
func (r *runner) isolatedTarget(ctx context.Context, w int) (runTarget, error) {
	t, err := r.upstreamTarget(ctx, 0)
	if err != nil {
		return t, err
	}
	t.name = "tekton (upstream), isolated"
	t.ns = func(i int) string { return fmt.Sprintf("bench-isolated-%d", i) }
	kube, err := r.cfg.WorkloadClient()
	if err != nil {
		return t, err
	}
	userNamespaces, err := nodesSupportUserNamespaces(ctx, kube)
	if err != nil {
		return t, err
	}
	t.podTemplate = &pod.PodTemplate{}
	if userNamespaces {
		t.podTemplate.HostUsers = ptr.To(false)
	}
	client, err := benchClient(r.cfg.WorkloadAdminKubeconfig())
	if err != nil {
		return t, err
	}
	for i := range w {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: t.ns(i), Labels: podsecurity.NamespaceLabels(psaapi.LevelBaseline)}}
		if _, err := kube.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return t, err
		}
		if err := (workload.Isolation{}).Ensure(ctx, kube, ns.Name); err != nil {
			return t, fmt.Errorf("isolation policy of %s: %w", ns.Name, err)
		}
		t.clients = append(t.clients, client)
	}
	return t, nil
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
	fmt.Fprintf(out, "\nisolation: upstream Tekton, plain namespaces and namespaces isolated as ours (Pod Security, NetworkPolicy, user namespaces: %v), alternating\n", iso.UserNamespaces)
	fmt.Fprintln(out, "ROUND\tPLAIN RUNS/MIN\tISOLATED RUNS/MIN\tISOLATED/PLAIN\tFIRST POD p50 PLAIN\tISOLATED")
	for i, round := range iso.Rounds {
		fmt.Fprintf(out, "%d\t%.1f\t%.1f\t%.2f\t%.2f s\t%.2f s\n", i+1, round.Plain.PerMinute, round.Isolated.PerMinute, round.Ratio, round.Plain.FirstPodP50, round.Isolated.FirstPodP50)
	}
	fmt.Fprintf(out, "median isolated/plain\t\t\t%.2f\n", iso.RatioMedian)
	fmt.Fprintf(out, "our controller's Pod Security check of a pod: %.1f us\n", iso.CheckMicroseconds)
	if iso.Error != "" {
		fmt.Fprintf(out, "isolation rounds failed: %s\n", iso.Error)
	}
}
