package fleet

import (
	"errors"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/cache"

	fleetv1alpha1 "github.com/pipelines-service/pipelines-service/apis/fleet/v1alpha1"
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

// TestAllows: a placement recorded on a run (an annotation the tenant can
// write) stands only where the fleet would place the run: a registered,
// uncordoned member its TenantPolicy and its own selector allow, holding
// its volumes. Readiness is not asked: a run placed on a cluster that is
// briefly not ready keeps its place.
func TestAllows(t *testing.T) {
	member := func(name, region string, cordoned, ready bool) *Member {
		return &Member{Name: name, wc: &fleetv1alpha1.WorkloadCluster{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"region": region}},
			Spec:       fleetv1alpha1.WorkloadClusterSpec{Unschedulable: cordoned},
		}, state: memberState{synced: ready, reachable: ready, readyNodes: 1}}
	}
	policies := cache.NewSharedIndexInformer(&cache.ListWatch{}, &unstructured.Unstructured{}, 0, cache.Indexers{})
	pinned, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&fleetv1alpha1.TenantPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "pinned-ws"},
		Spec:       fleetv1alpha1.TenantPolicySpec{ClusterSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"region": "eu"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := policies.GetStore().Add(&unstructured.Unstructured{Object: pinned}); err != nil {
		t.Fatal(err)
	}
	f := &Fleet{policies: policies, members: map[string]*Member{
		"eu-1":     member("eu-1", "eu", false, true),
		"eu-down":  member("eu-down", "eu", false, false),
		"eu-cordo": member("eu-cordo", "eu", true, true),
		"us-1":     member("us-1", "us", false, true),
	}}
	tests := []struct {
		name, member string
		req          Request
		wantWhy      string // "" : allowed
	}{
		{name: "policy allows", member: "eu-1", req: Request{Workspace: "pinned-ws"}},
		{name: "policy forbids", member: "us-1", req: Request{Workspace: "pinned-ws"}, wantWhy: "us-1: does not match region=eu"},
		{name: "no policy", member: "us-1", req: Request{Workspace: "free-ws"}},
		{name: "not ready still stands", member: "eu-down", req: Request{Workspace: "pinned-ws"}},
		{name: "cordoned", member: "eu-cordo", req: Request{Workspace: "pinned-ws"}, wantWhy: "eu-cordo: unschedulable"},
		{name: "unknown", member: "nowhere", req: Request{Workspace: "free-ws"}, wantWhy: "nowhere: not registered"},
		{name: "run's own selector", member: "eu-1", req: Request{Workspace: "free-ws", Selector: "region=us"}, wantWhy: "does not match region=us"},
		{name: "volumes elsewhere", member: "eu-1", req: Request{Workspace: "free-ws", Required: "us-1"}, wantWhy: "volumes are on us-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := f.Allows(tt.req, tt.member)
			if tt.wantWhy == "" {
				if err != nil {
					t.Fatalf("Allows = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrNoCluster) || !strings.Contains(err.Error(), tt.wantWhy) {
				t.Fatalf("Allows = %v, want ErrNoCluster saying %q", err, tt.wantWhy)
			}
		})
	}
	var invalid InvalidSelectorError
	if err := f.Allows(Request{Workspace: "free-ws", Selector: "region in (("}, "eu-1"); !errors.As(err, &invalid) {
		t.Errorf("Allows with a selector that does not parse = %v, want InvalidSelectorError", err)
	}
}
