package provider

import (
	"context"
	"strings"
	"testing"

	kcpfakedynamic "github.com/kcp-dev/client-go/third_party/k8s.io/client-go/dynamic/fake"
	kcptesting "github.com/kcp-dev/client-go/third_party/k8s.io/client-go/testing"
	"github.com/kcp-dev/logicalcluster/v3"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	fleetv1alpha1 "github.com/pipelines-service/pipelines-service/apis/fleet/v1alpha1"
)

// TestApplySpecBesideStatusWrites: the controller writes a
// WorkloadCluster's status while bring-up applies its spec (the stack is
// brought up again before every e2e package). An update that loses to a
// status write is retried on the latest object; an unchanged object is not
// written.
func TestApplySpecBesideStatusWrites(t *testing.T) {
	provider := logicalcluster.NewPath("root:pipelines-service")
	wc := func(region string) *fleetv1alpha1.WorkloadCluster {
		return &fleetv1alpha1.WorkloadCluster{
			TypeMeta:   metav1.TypeMeta{APIVersion: fleetv1alpha1.SchemeGroupVersion.String(), Kind: "WorkloadCluster"},
			ObjectMeta: metav1.ObjectMeta{Name: "workload-2", Labels: map[string]string{"region": region}},
			Spec:       fleetv1alpha1.WorkloadClusterSpec{Unschedulable: true},
		}
	}
	tests := []struct {
		name       string
		region     string
		conflicts  int
		wantWrites int
		wantErr    string
	}{
		{name: "unchanged: no write", region: "local-2"},
		{name: "changed", region: "local-3", wantWrites: 1},
		{name: "changed, lost to a status write once", region: "local-3", conflicts: 1, wantWrites: 2},
		{name: "lost every time", region: "local-3", conflicts: 100, wantWrites: 5, wantErr: "apply workloadclusters workload-2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			existing, err := runtime.DefaultUnstructuredConverter.ToUnstructured(wc("local-2"))
			if err != nil {
				t.Fatal(err)
			}
			u := &unstructured.Unstructured{Object: existing}
			u.SetAnnotations(map[string]string{logicalcluster.AnnotationKey: provider.String()})
			client := kcpfakedynamic.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
				map[schema.GroupVersionResource]string{fleetv1alpha1.WorkloadClustersResource: "WorkloadClusterList"}, u)
			writes, conflicts := 0, tt.conflicts
			client.PrependReactor("update", "workloadclusters", func(kcptesting.Action) (bool, runtime.Object, error) {
				writes++
				if conflicts > 0 {
					conflicts--
					return true, nil, apierrors.NewConflict(fleetv1alpha1.WorkloadClustersResource.GroupResource(), "workload-2", nil)
				}
				return false, nil, nil
			})
			err = applySpec(context.Background(), Clients{Dynamic: client}, provider, fleetv1alpha1.WorkloadClustersResource, wc(tt.region))
			if (err == nil) != (tt.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("applySpec = %v, want error %q", err, tt.wantErr)
			}
			if writes != tt.wantWrites {
				t.Errorf("updates: %d, want %d", writes, tt.wantWrites)
			}
		})
	}
}
