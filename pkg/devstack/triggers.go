package devstack

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/kcp-dev/logicalcluster/v3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	metaapply "k8s.io/client-go/applyconfigurations/meta/v1"
	networkingapply "k8s.io/client-go/applyconfigurations/networking/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/pipelines-service/pipelines-service/pkg/provider"
	"github.com/pipelines-service/pipelines-service/pkg/triggers"
)

// The triggers sink serves every tenant's EventListeners: a Deployment of
// two replicas behind a Service on the first workload cluster, built from
// this checkout with ko. The gateway passes it /hooks/… at the Service's
// ClusterIP, which the host reaches through kube-proxy on the cluster's
// first node.
const (
	triggersNamespace = "pipelines-service-triggers"
	triggersSinkName  = "triggers-sink"
	triggersReplicas  = 2
	// triggersSinkServiceIndex is the sink Service's ClusterIP, as an
	// offset in the cluster's service range: fixed, so the gateway can be
	// told before the Service exists.
	triggersSinkServiceIndex = 20
)

// TriggersURL is the base of EventListeners' addresses: the gateway's
// /hooks.
func (c Config) TriggersURL() string {
	return c.GatewayURL() + strings.TrimSuffix(triggers.PathPrefix, "/")
}

// triggersSinkCluster is where the sink runs.
func (c Config) triggersSinkCluster() WorkloadCluster { return c.WorkloadClusters()[0] }

// TriggersSinkURL is the sink's Service, as the gateway reaches it.
func (c Config) TriggersSinkURL() string {
	ip := nthIP(c.triggersSinkCluster().ServiceCIDR, triggersSinkServiceIndex)
	return "http://" + net.JoinHostPort(ip.String(), "80")
}

// triggersSinkProcess is the sink as a host process, as earlier stacks ran
// it: stopped if found.
func (c Config) triggersSinkProcess() *process {
	return c.newProcess("triggers-sink", c.Path("bin", "triggers-sink"))
}

// startTriggersSink deploys the sink: its identity in a Secret, the image
// (rebuilt when the checkout changed), the Deployment and the Service;
// it waits until every replica is ready.
func (s *Stack) startTriggersSink(ctx context.Context) error {
	c := s.cfg
	if err := c.triggersSinkProcess().stop(10 * time.Second); err != nil {
		return err
	}
	kubeconfigPath := c.Path("triggers-sink", "kcp.kubeconfig")
	if err := s.writeKCPUserKubeconfig(kubeconfigPath, provider.TriggersSinkUser, logicalcluster.Path{}); err != nil {
		return err
	}
	kubeconfig, err := os.ReadFile(kubeconfigPath)
	if err != nil {
		return err
	}
	image, err := c.ensureTriggersSinkImage(ctx)
	if err != nil {
		return componentErr("triggers sink image", c.LogFile("ko-triggers-sink"), err)
	}
	client, err := c.clusterClient(c.triggersSinkCluster())
	if err != nil {
		return err
	}
	if err := applyObject(ctx, client, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: triggersNamespace}}); err != nil {
		return err
	}
	if err := applyObject(ctx, client, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: triggersSinkName, Namespace: triggersNamespace},
		Data: map[string][]byte{"kcp.kubeconfig": kubeconfig}}); err != nil {
		return err
	}
	if err := serverSideApply(ctx, client, "deployments", triggersSinkDeployment(image, checksum(kubeconfig))); err != nil {
		return err
	}
	if err := serverSideApply(ctx, client, "services", c.triggersSinkService()); err != nil {
		return err
	}
	if _, err := client.NetworkingV1().NetworkPolicies(triggersNamespace).Apply(ctx, c.triggersSinkIngress(),
		metav1.ApplyOptions{FieldManager: "pipelines-service-devstack", Force: true}); err != nil {
		return fmt.Errorf("apply the triggers sink's network policy: %w", err)
	}
	return waitDeploymentReady(ctx, client, triggersNamespace, triggersSinkName, 3*time.Minute)
}

// triggersSinkIngress admits to the sink's pods no pod: its callers are
// the gateway on the host, through kube-proxy (host and node addresses),
// and the kubelet's probes. Tenant pods are kept off it by their own
// namespace's policy already; this one also holds for a pod whose own
// filter its node has not written yet, whose traffic kube-router judges
// by the destination's policy alone.
func (c Config) triggersSinkIngress() *networkingapply.NetworkPolicyApplyConfiguration {
	return networkingapply.NetworkPolicy(triggersSinkName+"-ingress", triggersNamespace).WithSpec(
		networkingapply.NetworkPolicySpec().
			WithPodSelector(metaapply.LabelSelector()).
			WithPolicyTypes(networkingv1.PolicyTypeIngress).
			WithIngress(networkingapply.NetworkPolicyIngressRule().WithFrom(
				networkingapply.NetworkPolicyPeer().WithIPBlock(
					networkingapply.IPBlock().WithCIDR("0.0.0.0/0").WithExcept(c.PodNetwork.String())))))
}

func triggersSinkDeployment(image, configSum string) *appsv1.Deployment {
	labels := map[string]string{"app.kubernetes.io/name": triggersSinkName, "app.kubernetes.io/part-of": "pipelines-service"}
	return &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Name: triggersSinkName, Namespace: triggersNamespace, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](triggersReplicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				// The identity's checksum rolls the pods when it changes.
				ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: map[string]string{"pipelines-service.dev/identity-checksum": configSum}},
				Spec: corev1.PodSpec{
					AutomountServiceAccountToken: ptr.To(false),
					SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](65532),
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
					Containers: []corev1.Container{{
						Name:  triggersSinkName,
						Image: image,
						Args: []string{"--kubeconfig=/etc/triggers-sink/kcp.kubeconfig", "--provider-workspace=" + providerPath().String(),
							"--listen=:8080", "--debug-listen=:8081"},
						Ports:          []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
						ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/readyz", Port: intstr.FromInt32(8081)}}, PeriodSeconds: 2},
						Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
							corev1.ResourceCPU: resourceQuantity("50m"), corev1.ResourceMemory: resourceQuantity("64Mi")}},
						SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(false), ReadOnlyRootFilesystem: ptr.To(true),
							Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}},
						VolumeMounts: []corev1.VolumeMount{{Name: "identity", MountPath: "/etc/triggers-sink", ReadOnly: true}},
					}},
					Volumes: []corev1.Volume{{Name: "identity", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: triggersSinkName}}}},
				},
			},
		},
	}
}

func (c Config) triggersSinkService() *corev1.Service {
	return &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{Name: triggersSinkName, Namespace: triggersNamespace},
		Spec: corev1.ServiceSpec{
			ClusterIP: nthIP(c.triggersSinkCluster().ServiceCIDR, triggersSinkServiceIndex).String(),
			Selector:  map[string]string{"app.kubernetes.io/name": triggersSinkName},
			Ports:     []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}},
		},
	}
}

// ensureTriggersSinkImage builds the sink's image with ko unless the one
// recorded for this checkout's build is still in the registry.
func (c Config) ensureTriggersSinkImage(ctx context.Context) (string, error) {
	buildID, err := c.checkoutBuildID(ctx, c.Path("bin", "triggers-sink"))
	if err != nil {
		return "", err
	}
	return c.koImage(ctx, c.RepoRoot, "./cmd/triggers-sink", buildID, c.Path("triggers-sink", "image.json"), "ko-triggers-sink")
}

// koImage builds the image of a Go main package (importPath, in the module
// at dir) with ko and records it with key in record; while the recorded
// key matches and the image is in the registry, it is not built again.
func (c Config) koImage(ctx context.Context, dir, importPath, key, record, logName string) (string, error) {
	var recorded struct{ Key, Image string }
	if data, err := os.ReadFile(record); err == nil && json.Unmarshal(data, &recorded) == nil && recorded.Key == key && c.imageExists(ctx, recorded.Image) {
		return recorded.Image, nil
	}
	if err := c.ensureKo(ctx); err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, c.koBinary(), "build", "-B", "--platform=linux/amd64", importPath)
	cmd.Dir = dir
	cmd.Env = c.koEnv()
	var out strings.Builder
	cmd.Stdout = &out
	if err := c.runLogged(cmd, logName); err != nil {
		return "", err
	}
	image := strings.TrimSpace(out.String())
	if image == "" {
		return "", fmt.Errorf("ko printed no image for %s", importPath)
	}
	recorded.Key, recorded.Image = key, image
	data, _ := json.Marshal(recorded)
	return image, writeFile(record, string(data))
}

func (c Config) imageExists(ctx context.Context, image string) bool {
	ref, err := name.ParseReference(image, name.Insecure)
	if err != nil {
		return false
	}
	_, err = remote.Head(ref, remote.WithContext(ctx))
	return err == nil
}

// serverSideApply applies a typed object (with its TypeMeta) as the
// stack's field manager.
func serverSideApply(ctx context.Context, client kubernetes.Interface, resource string, obj metav1.Object) error {
	data, err := json.Marshal(obj)
	if err != nil {
		return err
	}
	opts := metav1.PatchOptions{FieldManager: "pipelines-service-devstack", Force: ptr.To(true)}
	switch resource {
	case "deployments":
		_, err = client.AppsV1().Deployments(obj.GetNamespace()).Patch(ctx, obj.GetName(), types.ApplyPatchType, data, opts)
	case "services":
		_, err = client.CoreV1().Services(obj.GetNamespace()).Patch(ctx, obj.GetName(), types.ApplyPatchType, data, opts)
	case "serviceaccounts":
		_, err = client.CoreV1().ServiceAccounts(obj.GetNamespace()).Patch(ctx, obj.GetName(), types.ApplyPatchType, data, opts)
	case "configmaps":
		_, err = client.CoreV1().ConfigMaps(obj.GetNamespace()).Patch(ctx, obj.GetName(), types.ApplyPatchType, data, opts)
	case "clusterroles":
		_, err = client.RbacV1().ClusterRoles().Patch(ctx, obj.GetName(), types.ApplyPatchType, data, opts)
	case "clusterrolebindings":
		_, err = client.RbacV1().ClusterRoleBindings().Patch(ctx, obj.GetName(), types.ApplyPatchType, data, opts)
	default:
		return fmt.Errorf("serverSideApply: unsupported %s", resource)
	}
	if err != nil {
		return fmt.Errorf("apply %s %s/%s: %w", resource, obj.GetNamespace(), obj.GetName(), err)
	}
	return nil
}

// waitDeploymentReady waits until every replica of the Deployment's
// current template is ready.
func waitDeploymentReady(ctx context.Context, client kubernetes.Interface, namespace, name string, timeout time.Duration) error {
	var last string
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		d, err := client.AppsV1().Deployments(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			last = err.Error()
			return false, nil
		}
		want := ptr.Deref(d.Spec.Replicas, 1)
		s := d.Status
		last = fmt.Sprintf("%d of %d replicas updated, %d ready", s.UpdatedReplicas, want, s.ReadyReplicas)
		return s.ObservedGeneration >= d.Generation && s.UpdatedReplicas == want && s.ReadyReplicas == want && s.Replicas == want, nil
	})
	if err != nil {
		return fmt.Errorf("Deployment %s/%s not ready: %s: %w", namespace, name, last, err)
	}
	return nil
}

func resourceQuantity(s string) resource.Quantity { return resource.MustParse(s) }

// checksum identifies content (e.g. to roll pods when a mounted Secret
// changes).
func checksum(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:8])
}
