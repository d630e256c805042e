package localpath

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func releasedVolume(name, node, path string) *corev1.PersistentVolume {
	return &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{annProvisionedBy: ProvisionerName}},
		Spec: corev1.PersistentVolumeSpec{
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimDelete,
			PersistentVolumeSource:        corev1.PersistentVolumeSource{Local: &corev1.LocalVolumeSource{Path: path}},
			NodeAffinity: &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
				MatchExpressions: []corev1.NodeSelectorRequirement{{Key: corev1.LabelHostname, Operator: corev1.NodeSelectorOpIn, Values: []string{node}}},
			}}}},
		},
		Status: corev1.PersistentVolumeStatus{Phase: corev1.VolumeReleased},
	}
}

func TestReclaimDeletesOnlyVolumesOfItsNode(t *testing.T) {
	dir := t.TempDir()
	ours := releasedVolume("pvc-ours", "node-a", filepath.Join(dir, "pvc-ours"))
	theirs := releasedVolume("pvc-theirs", "node-b", "/elsewhere/pvc-theirs")
	if err := os.Mkdir(ours.Spec.Local.Path, 0o755); err != nil {
		t.Fatal(err)
	}
	client := fake.NewSimpleClientset(ours, theirs)
	p, err := New(client, "node-a", dir, zap.NewNop().Sugar())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, pv := range []*corev1.PersistentVolume{ours, theirs} {
		if err := p.reclaim(ctx, pv); err != nil {
			t.Fatalf("reclaim %s: %v", pv.Name, err)
		}
	}
	if _, err := client.CoreV1().PersistentVolumes().Get(ctx, "pvc-ours", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("volume of node-a: get = %v, want not found", err)
	}
	if _, err := os.Stat(ours.Spec.Local.Path); !os.IsNotExist(err) {
		t.Errorf("directory of node-a's volume: stat = %v, want not exist", err)
	}
	if _, err := client.CoreV1().PersistentVolumes().Get(ctx, "pvc-theirs", metav1.GetOptions{}); err != nil {
		t.Errorf("volume of node-b was touched: %v", err)
	}
}
