package taskrun

import (
	"sort"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestPodSourcesFindsEveryReferenceAndRewritesInPlace(t *testing.T) {
	optional := true
	pod := &corev1.Pod{Spec: corev1.PodSpec{
		Volumes: []corev1.Volume{
			{Name: "ws", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "creds"}}},
			{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}, Optional: &optional}}},
			{Name: "proj", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
				{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "p-secret"}}},
				{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "p-cm"}}},
			}}}},
			{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		},
		Containers: []corev1.Container{{
			Env: []corev1.EnvVar{
				{Name: "A", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "env-secret"}, Key: "k"}}},
				{Name: "B", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "env-cm"}, Key: "k"}}},
				{Name: "C", Value: "plain"},
			},
			EnvFrom: []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "all-secret"}}}},
		}},
	}}
	refs := podSources(pod)
	var got []string
	for _, r := range refs {
		got = append(got, r.resource.Resource+"/"+*r.name)
		*r.name = "copy-of-" + *r.name
	}
	sort.Strings(got)
	want := []string{"configmaps/env-cm", "configmaps/p-cm", "configmaps/settings", "secrets/all-secret", "secrets/creds", "secrets/env-secret", "secrets/p-secret"}
	if len(got) != len(want) {
		t.Fatalf("podSources found %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("podSources found %v, want %v", got, want)
		}
	}
	if pod.Spec.Volumes[0].Secret.SecretName != "copy-of-creds" || pod.Spec.Containers[0].EnvFrom[0].SecretRef.Name != "copy-of-all-secret" ||
		pod.Spec.Volumes[2].Projected.Sources[1].ConfigMap.Name != "copy-of-p-cm" {
		t.Error("references were not rewritten in the pod")
	}
}
