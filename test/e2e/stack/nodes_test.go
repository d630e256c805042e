//go:build e2e

package stack

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/pipelines-service/pipelines-service/pkg/devstack/localpath"
	"github.com/pipelines-service/pipelines-service/test/e2e/framework"
)

const busybox = "docker.io/library/busybox:1.36"

// pinnedPod runs script in busybox on node, which it names in $NODE.
func pinnedPod(name, node, script string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			NodeSelector:  map[string]string{corev1.LabelHostname: node},
			Containers: []corev1.Container{{
				Name: "main", Image: busybox, Command: []string{"sh", "-c", script},
				Env: []corev1.EnvVar{{Name: "NODE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}}},
			}},
		},
	}
}

// TestPodRunsAndLogsOnEveryNodeOfEveryCluster: every node of every
// workload cluster is Ready (with the labels the stack gives it), runs a
// pod scheduled to it and serves its logs through its cluster's API.
func TestPodRunsAndLogsOnEveryNodeOfEveryCluster(t *testing.T) {
	ctx := context.Background()
	clusters := env.Stack.Config().WorkloadClusters()
	if len(clusters) < 2 {
		t.Fatalf("%d workload clusters, want at least 2", len(clusters))
	}
	for _, cl := range clusters {
		t.Run(cl.Name, func(t *testing.T) {
			client := env.ClusterClient(t, cl.Name)
			for _, name := range cl.Nodes {
				node, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
				if err != nil {
					t.Fatalf("node %s: %v", name, err)
				}
				if !nodeIsReady(node) {
					t.Errorf("node %s is not Ready: %v", name, node.Status.Conditions)
				}
				for k, v := range cl.NodeLabels[name] {
					if node.Labels[k] != v {
						t.Errorf("node %s: label %s=%q, want %q", name, k, node.Labels[k], v)
					}
				}
			}
			ns := framework.CreateNamespace(ctx, t, client, "e2e-nodes-")
			for _, node := range cl.Nodes {
				t.Run(node, func(t *testing.T) {
					t.Parallel()
					logs := framework.RunPodToCompletion(ctx, t, client, ns, pinnedPod("hello-"+node, node, "echo hello from $NODE"), 3*time.Minute)
					if want := "hello from " + node; logs != want {
						t.Errorf("logs = %q, want %q", logs, want)
					}
				})
			}
		})
	}
}

// TestLocalPathVolumeOnEveryNode: a claim of the local-path StorageClass
// gets a volume on the node of the pod that uses it, on every node of every
// cluster.
func TestLocalPathVolumeOnEveryNode(t *testing.T) {
	ctx := context.Background()
	for _, cl := range env.Stack.Config().WorkloadClusters() {
		t.Run(cl.Name, func(t *testing.T) {
			client := env.ClusterClient(t, cl.Name)
			ns := framework.CreateNamespace(ctx, t, client, "e2e-volumes-")
			for _, node := range cl.Nodes {
				t.Run(node, func(t *testing.T) {
					t.Parallel()
					claim := &corev1.PersistentVolumeClaim{
						ObjectMeta: metav1.ObjectMeta{Name: "data-" + node},
						Spec: corev1.PersistentVolumeClaimSpec{
							AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
							StorageClassName: ptr.To(localpath.ClassName),
							Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("10Mi")}},
						},
					}
					if _, err := client.CoreV1().PersistentVolumeClaims(ns).Create(ctx, claim, metav1.CreateOptions{}); err != nil {
						t.Fatalf("create claim: %v", err)
					}
					pod := pinnedPod("write-"+node, node, "echo written on $NODE > /data/f && cat /data/f")
					pod.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
						PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim.Name}}}}
					pod.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}
					if logs := framework.RunPodToCompletion(ctx, t, client, ns, pod, 3*time.Minute); logs != "written on "+node {
						t.Errorf("logs = %q, want %q", logs, "written on "+node)
					}
					bound, err := client.CoreV1().PersistentVolumeClaims(ns).Get(ctx, claim.Name, metav1.GetOptions{})
					if err != nil {
						t.Fatal(err)
					}
					pv, err := client.CoreV1().PersistentVolumes().Get(ctx, bound.Spec.VolumeName, metav1.GetOptions{})
					if err != nil {
						t.Fatalf("volume of claim %s: %v", claim.Name, err)
					}
					if got := volumeNode(pv); got != node {
						t.Errorf("volume %s is on node %q, want %s", pv.Name, got, node)
					}
				})
			}
		})
	}
}

// TestWorkloadAPIServerStopsAndStartsAgain: stopping one cluster's
// apiserver leaves the other cluster serving and its own node running; it
// serves again after StartWorkloadAPIServer and its node stays Ready.
func TestWorkloadAPIServerStopsAndStartsAgain(t *testing.T) {
	ctx := context.Background()
	clusters := env.Stack.Config().WorkloadClusters()
	stopped, other := clusters[len(clusters)-1], clusters[0]
	client, otherClient := env.ClusterClient(t, stopped.Name), env.ClusterClient(t, other.Name)
	if err := env.Stack.StopWorkloadAPIServer(stopped.Name); err != nil {
		t.Fatalf("stop %s apiserver: %v", stopped.Name, err)
	}
	restarted := false
	t.Cleanup(func() {
		if !restarted {
			_ = env.Stack.StartWorkloadAPIServer(context.Background(), stopped.Name)
		}
	})
	if _, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{}); err == nil {
		t.Errorf("%s still serves with its apiserver stopped", stopped.Name)
	}
	if _, err := otherClient.CoreV1().Nodes().List(ctx, metav1.ListOptions{}); err != nil {
		t.Errorf("%s stopped serving with %s's apiserver stopped: %v", other.Name, stopped.Name, err)
	}
	for _, st := range env.Stack.Status() {
		if st.Name == "kubelet-"+stopped.Nodes[0] && !st.Running {
			t.Errorf("%s stopped with its cluster's apiserver", st.Name)
		}
	}
	if err := env.Stack.StartWorkloadAPIServer(ctx, stopped.Name); err != nil {
		t.Fatalf("start %s apiserver: %v", stopped.Name, err)
	}
	restarted = true
	framework.Eventually(t, 2*time.Minute, fmt.Sprintf("node %s Ready", stopped.Nodes[0]), func() (bool, string, error) {
		node, err := client.CoreV1().Nodes().Get(ctx, stopped.Nodes[0], metav1.GetOptions{})
		if err != nil {
			return false, err.Error(), nil
		}
		return nodeIsReady(node), fmt.Sprint(node.Status.Conditions), nil
	})
	if !env.Stack.Running() {
		t.Errorf("stack not running after the apiserver restart: %v", env.Stack.StatusLines())
	}
}

func nodeIsReady(node *corev1.Node) bool {
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// volumeNode is the node a local volume's affinity names.
func volumeNode(pv *corev1.PersistentVolume) string {
	if pv.Spec.NodeAffinity == nil || pv.Spec.NodeAffinity.Required == nil {
		return ""
	}
	for _, term := range pv.Spec.NodeAffinity.Required.NodeSelectorTerms {
		for _, expr := range term.MatchExpressions {
			if expr.Key == corev1.LabelHostname && len(expr.Values) == 1 {
				return expr.Values[0]
			}
		}
	}
	return ""
}
