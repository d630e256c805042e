package bench

import (
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/pipelines-service/pipelines-service/pkg/metrics"
)

func kubeletSnapshot(t *testing.T, runSandboxes, runSandboxSeconds, podStarts, podStartSeconds float64) metricsSnapshot {
	t.Helper()
	text := `# TYPE kubelet_runtime_operations_duration_seconds histogram
kubelet_runtime_operations_duration_seconds_bucket{operation_type="run_podsandbox",le="+Inf"} ` + f(runSandboxes) + `
kubelet_runtime_operations_duration_seconds_sum{operation_type="run_podsandbox"} ` + f(runSandboxSeconds) + `
kubelet_runtime_operations_duration_seconds_count{operation_type="run_podsandbox"} ` + f(runSandboxes) + `
kubelet_runtime_operations_duration_seconds_bucket{operation_type="version",le="+Inf"} 7
kubelet_runtime_operations_duration_seconds_sum{operation_type="version"} 0.01
kubelet_runtime_operations_duration_seconds_count{operation_type="version"} 7
# TYPE kubelet_pod_start_sli_duration_seconds histogram
kubelet_pod_start_sli_duration_seconds_bucket{le="+Inf"} ` + f(podStarts) + `
kubelet_pod_start_sli_duration_seconds_sum ` + f(podStartSeconds) + `
kubelet_pod_start_sli_duration_seconds_count ` + f(podStarts) + `
`
	s, err := metrics.Parse(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func f(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

func TestKubeletDeltaSumsTheNodes(t *testing.T) {
	// Two nodes: 10 sandboxes in 3 s and 5 in 2 s over the row, so 15 at
	// 333 ms; the runtime's version calls did not change and are left out.
	before := []metricsSnapshot{kubeletSnapshot(t, 4, 1, 4, 8), kubeletSnapshot(t, 0, 0, 0, 0)}
	after := []metricsSnapshot{kubeletSnapshot(t, 14, 4, 10, 20), kubeletSnapshot(t, 5, 2, 5, 10)}
	got := kubeletDelta(before, after)
	want := map[string][2]float64{
		"runtime run_podsandbox": {15, 5000.0 / 15},
		"pod start (SLI)":        {11, 22000.0 / 11},
	}
	if len(got) != len(want) {
		t.Fatalf("figures %+v, want %v", got, want)
	}
	if got[0].Name != "pod start (SLI)" {
		t.Errorf("first figure %s, want the largest total (pod start) first", got[0].Name)
	}
	for _, fig := range got {
		w, ok := want[fig.Name]
		if !ok || fig.Count != w[0] || math.Abs(fig.MeanMS-w[1]) > 0.001 {
			t.Errorf("%s: %.0f at %.3f ms, want %v", fig.Name, fig.Count, fig.MeanMS, w)
		}
	}
}
