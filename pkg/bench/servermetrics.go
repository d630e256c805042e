package bench

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/pipelines-service/pipelines-service/pkg/metrics"
)

// ServerFigures are what an apiserver says of itself over one controller's
// run: the difference of its /metrics before and after. They show where a
// write's time goes on the server (request, delegated authorisation,
// admission, storage), next to the controller's own client-side waits.
type ServerFigures struct {
	// Server names the apiserver and the controller that ran against it.
	Server string `json:"server"`
	// Requests are apiserver_request_duration_seconds by verb and
	// resource (watches excluded).
	Requests []ServerFigure `json:"requests"`
	// Authz is apiserver_delegated_authz_request_duration_seconds: the
	// SubjectAccessReview round trips a virtual workspace makes.
	Authz ServerFigure `json:"delegatedAuthz"`
	// Admission is apiserver_admission_controller_admission_duration_seconds
	// by plugin and operation.
	Admission []ServerFigure `json:"admission"`
	// Etcd is etcd_request_duration_seconds by operation and type.
	Etcd []ServerFigure `json:"etcd"`
}

// ServerFigure is a histogram's count and mean over the run.
type ServerFigure struct {
	Name   string  `json:"name"`
	Count  float64 `json:"count"`
	MeanMS float64 `json:"meanMs"`
}

func (f ServerFigure) totalMS() float64 { return f.Count * f.MeanMS }

// metricsSnapshot is a parsed /metrics.
type metricsSnapshot = metrics.Families

// serverMetrics reads an apiserver's /metrics.
func serverMetrics(ctx context.Context, rc *rest.Config) (metricsSnapshot, error) {
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, err
	}
	data, err := client.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s/metrics: %w", rc.Host, err)
	}
	return metrics.Parse(bytes.NewReader(data))
}

// histogramByLabels sums a histogram family's count and sum per key (the
// values of labels, joined by spaces), skipping series keep refuses.
func histogramByLabels(s metricsSnapshot, family string, labels []string, keep func(map[string]string) bool) map[string][2]float64 {
	out := map[string][2]float64{}
	f := s[family]
	if f == nil {
		return out
	}
	for _, m := range f.GetMetric() {
		h := m.GetHistogram()
		if h == nil {
			continue
		}
		values := map[string]string{}
		for _, l := range m.GetLabel() {
			values[l.GetName()] = l.GetValue()
		}
		if keep != nil && !keep(values) {
			continue
		}
		var parts []string
		for _, l := range labels {
			if v := values[l]; v != "" {
				parts = append(parts, v)
			}
		}
		key := strings.Join(parts, " ")
		acc := out[key]
		acc[0] += float64(h.GetSampleCount())
		acc[1] += h.GetSampleSum()
		out[key] = acc
	}
	return out
}

// histogramDelta is after minus before, per key, as figures sorted by
// total time, the largest first (keys with no new samples left out).
func histogramDelta(before, after metricsSnapshot, family string, labels []string, keep func(map[string]string) bool) []ServerFigure {
	b := histogramByLabels(before, family, labels, keep)
	var out []ServerFigure
	for key, a := range histogramByLabels(after, family, labels, keep) {
		count, sum := a[0]-b[key][0], a[1]-b[key][1]
		if count <= 0 {
			continue
		}
		out = append(out, ServerFigure{Name: key, Count: count, MeanMS: sum / count * 1000})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].totalMS() > out[j].totalMS() })
	return out
}

// serverDelta compares two snapshots of one apiserver.
func serverDelta(server string, before, after metricsSnapshot) ServerFigures {
	notWatch := func(l map[string]string) bool { return l["verb"] != "WATCH" && l["verb"] != "CONNECT" }
	figures := ServerFigures{
		Server:    server,
		Requests:  histogramDelta(before, after, "apiserver_request_duration_seconds", []string{"verb", "resource", "subresource"}, notWatch),
		Admission: histogramDelta(before, after, "apiserver_admission_controller_admission_duration_seconds", []string{"name", "operation"}, nil),
		Etcd:      histogramDelta(before, after, "etcd_request_duration_seconds", []string{"operation", "type"}, nil),
	}
	if authz := histogramDelta(before, after, "apiserver_delegated_authz_request_duration_seconds", nil, nil); len(authz) > 0 {
		figures.Authz = authz[0]
		figures.Authz.Name = "delegated authorisation"
	}
	return figures
}

// kcpMetricsConfig is the stack's kcp shard as its admin (shard-base:
// /metrics is the shard's).
func kcpMetricsConfig(kubeconfig string) (*rest.Config, error) {
	return clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
		&clientcmd.ClientConfigLoadingRules{ExplicitPath: kubeconfig},
		&clientcmd.ConfigOverrides{CurrentContext: "shard-base"}).ClientConfig()
}

// serverWatch snapshots an apiserver's /metrics now and gives the figures
// since when called.
func serverWatch(ctx context.Context, server string, rc *rest.Config) (func() (ServerFigures, error), error) {
	before, err := serverMetrics(ctx, rc)
	if err != nil {
		return nil, err
	}
	return func() (ServerFigures, error) {
		after, err := serverMetrics(ctx, rc)
		if err != nil {
			return ServerFigures{}, err
		}
		return serverDelta(server, before, after), nil
	}, nil
}

// serverTop is how many rows of each server table are printed.
const serverTop = 12

func printServerFigures(tw *tabwriter.Writer, all []ServerFigures) {
	for _, s := range all {
		fmt.Fprintf(tw, "\n%s: server-side time over the run (its /metrics, before and after)\n", s.Server)
		if s.Authz.Count > 0 {
			fmt.Fprintf(tw, "delegated authorisation\t%.0f\t%.1f ms mean\t%.1f s\n", s.Authz.Count, s.Authz.MeanMS, s.Authz.totalMS()/1000)
		}
		for _, table := range []struct {
			title string
			rows  []ServerFigure
		}{{"REQUEST (verb resource)", s.Requests}, {"ADMISSION (plugin operation)", s.Admission}, {"ETCD (operation type)", s.Etcd}} {
			if len(table.rows) == 0 {
				continue
			}
			fmt.Fprintf(tw, "%s\tCOUNT\tMEAN ms\tTOTAL s\n", table.title)
			for i, f := range table.rows {
				if i == serverTop {
					fmt.Fprintf(tw, "(%d more)\n", len(table.rows)-serverTop)
					break
				}
				fmt.Fprintf(tw, "%s\t%.0f\t%.1f\t%.1f\n", f.Name, f.Count, f.MeanMS, f.totalMS()/1000)
			}
		}
	}
}
