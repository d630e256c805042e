package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sort"

	"k8s.io/client-go/kubernetes"

	"github.com/pipelines-service/pipelines-service/pkg/devstack"
	"github.com/pipelines-service/pipelines-service/pkg/metrics"
)

// kubeletFamilies are the kubelet histograms that split a pod's way from
// the kubelet seeing it to its containers running: the runtime's calls
// (run_podsandbox, create_container, start_container, and the teardown
// ones) and the pod worker's syncs. An isolated row's extra time on the
// nodes shows here by step (a sandbox in a user namespace, a container's
// idmapped mounts), where the CPU seconds of the stack's processes only
// say that the nodes worked more.
var kubeletFamilies = []struct{ family, label string }{
	{"kubelet_runtime_operations_duration_seconds", "operation_type"},
	{"kubelet_pod_worker_duration_seconds", "operation_type"},
	{"kubelet_pod_start_sli_duration_seconds", ""},
}

// nodeMetrics reads every workload node's kubelet /metrics through its
// cluster's apiserver (the nodes proxy subresource), the families of all
// nodes together.
type nodeMetrics struct {
	nodes []kubeletOf
}

type kubeletOf struct {
	node   string
	client kubernetes.Interface
}

func newNodeMetrics(cfg devstack.Config) (*nodeMetrics, error) {
	var nm nodeMetrics
	for _, cl := range cfg.WorkloadClusters() {
		client, err := cfg.WorkloadClusterClient(cl.Name)
		if err != nil {
			return nil, err
		}
		for _, node := range cl.Nodes {
			nm.nodes = append(nm.nodes, kubeletOf{node: node, client: client})
		}
	}
	return &nm, nil
}

// snapshot reads each node's /metrics.
func (nm *nodeMetrics) snapshot(ctx context.Context) ([]metricsSnapshot, error) {
	out := make([]metricsSnapshot, 0, len(nm.nodes))
	for _, k := range nm.nodes {
		data, err := k.client.CoreV1().RESTClient().Get().
			Resource("nodes").Name(k.node).SubResource("proxy").Suffix("metrics").DoRaw(ctx)
		if err != nil {
			return nil, fmt.Errorf("node %s: kubelet /metrics: %w", k.node, err)
		}
		s, err := metrics.Parse(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("node %s: kubelet /metrics: %w", k.node, err)
		}
		out = append(out, s)
	}
	return out, nil
}

// watch snapshots the kubelets now and gives their figures since when
// called: count and mean of each family's operations over all nodes, the
// largest total first.
func (nm *nodeMetrics) watch(ctx context.Context) (func() ([]ServerFigure, error), error) {
	before, err := nm.snapshot(ctx)
	if err != nil {
		return nil, err
	}
	return func() ([]ServerFigure, error) {
		after, err := nm.snapshot(ctx)
		if err != nil {
			return nil, err
		}
		return kubeletDelta(before, after), nil
	}, nil
}

// kubeletDelta sums the per-node differences of kubeletFamilies. A
// figure's name is the family's short name and its label's value.
func kubeletDelta(before, after []metricsSnapshot) []ServerFigure {
	totals := map[string][2]float64{}
	for i := range after {
		for _, f := range kubeletFamilies {
			var labels []string
			if f.label != "" {
				labels = []string{f.label}
			}
			short := kubeletShortName(f.family)
			for _, fig := range histogramDelta(before[i], after[i], f.family, labels, nil) {
				name := short
				if fig.Name != "" {
					name += " " + fig.Name
				}
				acc := totals[name]
				acc[0] += fig.Count
				acc[1] += fig.totalMS()
				totals[name] = acc
			}
		}
	}
	out := make([]ServerFigure, 0, len(totals))
	for name, t := range totals {
		out = append(out, ServerFigure{Name: name, Count: t[0], MeanMS: t[1] / t[0]})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].totalMS() > out[j].totalMS() })
	return out
}

func kubeletShortName(family string) string {
	switch family {
	case "kubelet_runtime_operations_duration_seconds":
		return "runtime"
	case "kubelet_pod_worker_duration_seconds":
		return "pod worker"
	case "kubelet_pod_start_sli_duration_seconds":
		return "pod start (SLI)"
	}
	return family
}

// printKubeletRounds prints each round's kubelet figures, plain beside
// isolated, by figure name in the plain row's order.
func printKubeletRounds(out io.Writer, rounds []IsolationRound) {
	for i, round := range rounds {
		if len(round.Plain.Kubelets) == 0 && len(round.Isolated.Kubelets) == 0 {
			continue
		}
		fmt.Fprintf(out, "round %d on the nodes (kubelets' /metrics over each row)\tCOUNT PLAIN\tMEAN ms\tCOUNT ISOLATED\tMEAN ms\n", i+1)
		isolated := map[string]ServerFigure{}
		for _, f := range round.Isolated.Kubelets {
			isolated[f.Name] = f
		}
		seen := map[string]bool{}
		for _, p := range round.Plain.Kubelets {
			seen[p.Name] = true
			q := isolated[p.Name]
			fmt.Fprintf(out, "%s\t%.0f\t%.1f\t%.0f\t%.1f\n", p.Name, p.Count, p.MeanMS, q.Count, q.MeanMS)
		}
		for _, q := range round.Isolated.Kubelets {
			if !seen[q.Name] {
				fmt.Fprintf(out, "%s\t0\t\t%.0f\t%.1f\n", q.Name, q.Count, q.MeanMS)
			}
		}
	}
}
