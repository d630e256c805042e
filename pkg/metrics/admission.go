package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pipelines-service/pipelines-service/pkg/fleet"
)

// admission exports the fleet's admission at each scrape: the TaskRuns
// admitted (running) and those waiting for a slot (queued), per workspace
// and workload cluster.
type admission struct {
	state func() fleet.AdmissionState
	runs  *Runs
	desc  *prometheus.Desc
}

// Admission is a collector of the fleet's admission state; workspaces are
// bounded as the run metrics' are (and dropped when those have no
// workspace label).
func (m *Metrics) Admission(state func() fleet.AdmissionState) prometheus.Collector {
	labels := []string{"state", "cluster"}
	if m.Runs.workspaceLabel {
		labels = append(labels, "workspace")
	}
	return &admission{state: state, runs: m.Runs, desc: prometheus.NewDesc("pipelines_service_admission_taskruns",
		"TaskRuns the fleet has admitted (state running) or keeps waiting (state queued), per workload cluster and workspace.", labels, nil)}
}

func (a *admission) Describe(ch chan<- *prometheus.Desc) { ch <- a.desc }

func (a *admission) Collect(ch chan<- prometheus.Metric) {
	type key struct{ state, cluster, workspace string }
	counts := map[key]float64{}
	s := a.state()
	for state, slots := range map[string]map[string]fleet.AdmissionSlot{"running": s.Running, "queued": s.Waiting} {
		for _, slot := range slots {
			counts[key{state, slot.Cluster, a.runs.workspace(slot.Workspace)}]++
		}
	}
	for k, n := range counts {
		ch <- prometheus.MustNewConstMetric(a.desc, prometheus.GaugeValue, n, a.runs.values(k.workspace, k.state, k.cluster)...)
	}
}
