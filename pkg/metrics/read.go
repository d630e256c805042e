package metrics

import (
	"fmt"
	"io"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Families are scraped metric families by name, for tests and the
// benchmark to read figures back.
type Families map[string]*dto.MetricFamily

// Parse reads the Prometheus text exposition format, checking it.
func Parse(in io.Reader) (Families, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(in)
	if err != nil {
		return nil, fmt.Errorf("metrics exposition: %w", err)
	}
	return families, nil
}

// Gather reads a registry's families (m's, or another Gatherer).
func Gather(g prometheus.Gatherer) (Families, error) {
	list, err := g.Gather()
	if err != nil {
		return nil, err
	}
	out := Families{}
	for _, f := range list {
		out[f.GetName()] = f
	}
	return out, nil
}

// Gatherer is m's registry.
func (m *Metrics) Gatherer() prometheus.Gatherer { return m.registry }

// Sample is what one series holds: a counter's or gauge's value, or a
// histogram's count and sum.
type Sample struct {
	Value, Count, Sum float64
	Labels            map[string]string
}

// Samples are the series of family whose labels include match.
func (f Families) Samples(family string, match map[string]string) []Sample {
	var out []Sample
	mf, ok := f[family]
	if !ok {
		return nil
	}
	for _, m := range mf.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if !includes(labels, match) {
			continue
		}
		s := Sample{Labels: labels}
		switch {
		case m.Counter != nil:
			s.Value = m.GetCounter().GetValue()
		case m.Gauge != nil:
			s.Value = m.GetGauge().GetValue()
		case m.Histogram != nil:
			s.Count, s.Sum = float64(m.GetHistogram().GetSampleCount()), m.GetHistogram().GetSampleSum()
			s.Value = s.Count
		}
		out = append(out, s)
	}
	return out
}

// Total adds up the values (a histogram's: its count) of family's series
// whose labels include match.
func (f Families) Total(family string, match map[string]string) float64 {
	total := 0.0
	for _, s := range f.Samples(family, match) {
		total += s.Value
	}
	return total
}

func includes(labels, match map[string]string) bool {
	for k, v := range match {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// String names a series, for messages.
func (s Sample) String() string {
	parts := make([]string, 0, len(s.Labels))
	for k, v := range s.Labels {
		parts = append(parts, k+"="+v)
	}
	return "{" + strings.Join(parts, ",") + "}"
}
