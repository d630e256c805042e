package fleet

import (
	"errors"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/labels"
)

func TestChoose(t *testing.T) {
	a := candidate{name: "a", labels: labels.Set{"region": "eu"}, ready: true, load: 3}
	b := candidate{name: "b", labels: labels.Set{"region": "us"}, ready: true, load: 1}
	down := candidate{name: "c", labels: labels.Set{"region": "us"}, ready: false}
	cordoned := candidate{name: "d", labels: labels.Set{"region": "eu"}, ready: true, unschedulable: true}
	eu := labels.SelectorFromSet(labels.Set{"region": "eu"})
	tests := []struct {
		name      string
		cands     []candidate
		selectors []labels.Selector
		required  string
		want      string
		wantWhy   string // in the error when no cluster fits
	}{
		{name: "least loaded", cands: []candidate{a, b}, want: "b"},
		{name: "tie by name", cands: []candidate{{name: "y", ready: true}, {name: "x", ready: true}}, want: "x"},
		{name: "selector", cands: []candidate{a, b}, selectors: []labels.Selector{eu}, want: "a"},
		{name: "not ready skipped", cands: []candidate{down, a}, want: "a"},
		{name: "unschedulable skipped", cands: []candidate{cordoned, a}, selectors: []labels.Selector{eu}, want: "a"},
		{name: "required", cands: []candidate{a, b}, required: "a", want: "a"},
		{name: "required not ready", cands: []candidate{a, down}, required: "c", wantWhy: "c: not ready"},
		{name: "nothing matches", cands: []candidate{b, down}, selectors: []labels.Selector{eu}, wantWhy: "b: does not match region=eu"},
		{name: "none registered", wantWhy: "none is registered"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := choose(tt.cands, tt.selectors, tt.required)
			if tt.wantWhy != "" {
				if !errors.Is(err, ErrNoCluster) || !strings.Contains(err.Error(), tt.wantWhy) {
					t.Fatalf("choose() = %q, %v; want ErrNoCluster saying %q", got, err, tt.wantWhy)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("choose() = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}
