//go:build e2e

package stack

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/pipelines-service/pipelines-service/test/e2e/framework"
)

// TestServicesAndClusterDNS: on every workload cluster, a Deployment behind
// a Service works as on any cluster. A pod finds the Service by name
// through cluster DNS (CoreDNS) and reads the Deployment's pods through
// kube-proxy, and the host reaches the ClusterIP too (the gateway reaches
// the triggers sink that way).
func TestServicesAndClusterDNS(t *testing.T) {
	ctx := context.Background()
	for _, cl := range env.Stack.Config().WorkloadClusters() {
		t.Run(cl.Name, func(t *testing.T) {
			client := env.ClusterClient(t, cl.Name)
			ns := framework.CreateNamespace(ctx, t, client, "e2e-services")
			labels := map[string]string{"app": "web"}
			body := "hello from " + cl.Name
			web := &appsv1.Deployment{
				ObjectMeta: metav1.ObjectMeta{Name: "web"},
				Spec: appsv1.DeploymentSpec{
					Replicas: ptr.To[int32](2),
					Selector: &metav1.LabelSelector{MatchLabels: labels},
					Template: corev1.PodTemplateSpec{
						ObjectMeta: metav1.ObjectMeta{Labels: labels},
						Spec: corev1.PodSpec{Containers: []corev1.Container{{
							Name: "web", Image: "docker.io/library/busybox:1.36",
							Command: []string{"sh", "-c", fmt.Sprintf("mkdir -p /tmp/www && echo %q > /tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www", body)},
							Ports:   []corev1.ContainerPort{{ContainerPort: 8080}},
						}}},
					},
				},
			}
			if _, err := client.AppsV1().Deployments(ns).Create(ctx, web, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			svc, err := client.CoreV1().Services(ns).Create(ctx, &corev1.Service{
				ObjectMeta: metav1.ObjectMeta{Name: "web"},
				Spec:       corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Port: 8080, TargetPort: intstr.FromInt32(8080)}}},
			}, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			framework.Eventually(t, 2*time.Minute, "Deployment web ready", func() (bool, string, error) {
				d, err := client.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
				if err != nil {
					return false, err.Error(), nil
				}
				return d.Status.ReadyReplicas == 2, fmt.Sprintf("%d ready", d.Status.ReadyReplicas), nil
			})
			name := "web." + ns + ".svc.cluster.local"
			script := fmt.Sprintf(`nslookup %[1]s | awk '/^Address: /{a=$2} END{print "resolved " a}'
for i in 1 2 3 4 5; do out=$(timeout 5 wget -q -O- http://web.%[2]s:8080/) && break; sleep 1; done
echo "read $out"`, name, ns)
			logs := framework.RunPodToCompletion(ctx, t, client, ns, &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "client"},
				Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{
					Name: "client", Image: "docker.io/library/busybox:1.36", Command: []string{"sh", "-c", script}}}},
			}, 2*time.Minute)
			if !strings.Contains(logs, "resolved "+svc.Spec.ClusterIP) {
				t.Errorf("cluster DNS: %s did not resolve to the Service's ClusterIP %s:\n%s", name, svc.Spec.ClusterIP, logs)
			}
			if !strings.Contains(logs, "read "+body) {
				t.Errorf("a pod reading the Service by name got:\n%s\nwant %q", logs, body)
			}
			framework.Eventually(t, 30*time.Second, "the host reads the ClusterIP", func() (bool, string, error) {
				resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + svc.Spec.ClusterIP + ":8080/")
				if err != nil {
					return false, err.Error(), nil
				}
				defer resp.Body.Close()
				got, _ := io.ReadAll(resp.Body)
				return strings.TrimSpace(string(got)) == body, string(got), nil
			})
		})
	}
}
