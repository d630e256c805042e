package devstack

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// CoreDNSVersion is the CoreDNS release the workload clusters' DNS is
// built from (third_party/coredns).
const CoreDNSVersion = "v1.12.1"

// Cluster DNS: CoreDNS as Kubernetes runs it, a Deployment behind the
// kube-dns Service in kube-system, answering cluster.local from the
// cluster's Services. Its ClusterIP is fixed (the tenth address of the
// service range), as kubelets are told it in their configuration.
const (
	dnsNamespace    = "kube-system"
	dnsName         = "coredns"
	dnsServiceIndex = 10
	// DNSPodPort is where CoreDNS listens in its pod: above 1024, so it
	// runs without any capability; the Service maps 53 to it.
	DNSPodPort = 1053
	// DNSAppLabel is the label of CoreDNS's pods, as Kubernetes' own
	// manifests have it (k8s-app=kube-dns).
	DNSAppLabel = "kube-dns"
)

// clusterDNSIP is the kube-dns Service's ClusterIP of a cluster.
func clusterDNSIP(cl WorkloadCluster) net.IP { return nthIP(cl.ServiceCIDR, dnsServiceIndex) }

const corefile = `.:%d {
    errors
    health :8080
    ready :8181
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        pods disabled
        ttl 30
    }
    cache 30
    loadbalance
}
`

// startClusterDNS deploys CoreDNS on every workload cluster and waits until
// it is ready.
func (s *Stack) startClusterDNS(ctx context.Context) error {
	c := s.cfg
	image, err := s.ensureCoreDNSImage(ctx)
	if err != nil {
		return componentErr("coredns image", c.LogFile("ko-coredns"), err)
	}
	for _, cl := range c.WorkloadClusters() {
		client, err := c.clusterClient(cl)
		if err != nil {
			return err
		}
		if err := applyClusterDNS(ctx, client, cl, image); err != nil {
			return fmt.Errorf("%s: %w", cl.Name, err)
		}
	}
	for _, cl := range c.WorkloadClusters() {
		client, err := c.clusterClient(cl)
		if err != nil {
			return err
		}
		if err := waitDeploymentReady(ctx, client, dnsNamespace, dnsName, 3*time.Minute); err != nil {
			return fmt.Errorf("%s: %w", cl.Name, err)
		}
	}
	return nil
}

func applyClusterDNS(ctx context.Context, client kubernetes.Interface, cl WorkloadCluster, image string) error {
	read := []string{"list", "watch"}
	objects := []struct {
		resource string
		obj      metav1.Object
	}{
		{"serviceaccounts", &corev1.ServiceAccount{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"},
			ObjectMeta: metav1.ObjectMeta{Name: dnsName, Namespace: dnsNamespace}}},
		{"clusterroles", &rbacv1.ClusterRole{TypeMeta: metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRole"},
			ObjectMeta: metav1.ObjectMeta{Name: "system:coredns"},
			Rules: []rbacv1.PolicyRule{
				{APIGroups: []string{""}, Resources: []string{"endpoints", "services", "pods", "namespaces"}, Verbs: read},
				{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: read},
			}}},
		{"clusterrolebindings", &rbacv1.ClusterRoleBinding{TypeMeta: metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRoleBinding"},
			ObjectMeta: metav1.ObjectMeta{Name: "system:coredns"},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "system:coredns"},
			Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: dnsName, Namespace: dnsNamespace}}}},
		{"configmaps", &corev1.ConfigMap{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
			ObjectMeta: metav1.ObjectMeta{Name: dnsName, Namespace: dnsNamespace},
			Data:       map[string]string{"Corefile": fmt.Sprintf(corefile, DNSPodPort)}}},
		{"deployments", coreDNSDeployment(image, checksum([]byte(fmt.Sprintf(corefile, DNSPodPort))))},
		{"services", &corev1.Service{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
			ObjectMeta: metav1.ObjectMeta{Name: "kube-dns", Namespace: dnsNamespace, Labels: map[string]string{"k8s-app": DNSAppLabel}},
			Spec: corev1.ServiceSpec{
				ClusterIP: clusterDNSIP(cl).String(),
				Selector:  map[string]string{"k8s-app": DNSAppLabel},
				Ports: []corev1.ServicePort{
					{Name: "dns", Protocol: corev1.ProtocolUDP, Port: 53, TargetPort: intstr.FromInt32(DNSPodPort)},
					{Name: "dns-tcp", Protocol: corev1.ProtocolTCP, Port: 53, TargetPort: intstr.FromInt32(DNSPodPort)},
				},
			}}},
	}
	for _, o := range objects {
		if err := serverSideApply(ctx, client, o.resource, o.obj); err != nil {
			return err
		}
	}
	return nil
}

func coreDNSDeployment(image, configSum string) *appsv1.Deployment {
	labels := map[string]string{"k8s-app": DNSAppLabel}
	return &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Name: dnsName, Namespace: dnsNamespace, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: map[string]string{"pipelines-service.dev/corefile-checksum": configSum}},
				Spec: corev1.PodSpec{
					ServiceAccountName: dnsName,
					// Its own resolver is the node's, not itself.
					DNSPolicy: corev1.DNSDefault,
					SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](65532),
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
					Containers: []corev1.Container{{
						Name: dnsName, Image: image, Args: []string{"-conf", "/etc/coredns/Corefile"},
						Ports: []corev1.ContainerPort{{Name: "dns", ContainerPort: DNSPodPort, Protocol: corev1.ProtocolUDP},
							{Name: "dns-tcp", ContainerPort: DNSPodPort, Protocol: corev1.ProtocolTCP}},
						ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/ready", Port: intstr.FromInt32(8181)}}, PeriodSeconds: 2},
						LivenessProbe:  &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/health", Port: intstr.FromInt32(8080)}}, PeriodSeconds: 10},
						Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
							corev1.ResourceCPU: resourceQuantity("20m"), corev1.ResourceMemory: resourceQuantity("32Mi")}},
						SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(false), ReadOnlyRootFilesystem: ptr.To(true),
							Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}},
						VolumeMounts: []corev1.VolumeMount{{Name: "config", MountPath: "/etc/coredns", ReadOnly: true}},
					}},
					Volumes: []corev1.Volume{{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
						LocalObjectReference: corev1.LocalObjectReference{Name: dnsName}}}}},
				},
			},
		},
	}
}

// ensureCoreDNSImage builds CoreDNS's image with ko from its build module
// (third_party/coredns) unless the one recorded for this module's content
// is still in the registry.
func (s *Stack) ensureCoreDNSImage(ctx context.Context) (string, error) {
	c := s.cfg
	key := CoreDNSVersion + "+" + c.ownSourceDigest("coredns")
	record := c.Path("coredns", "image.json")
	if data, err := os.ReadFile(record); err != nil || !strings.Contains(string(data), key) {
		s.log.Infow("building CoreDNS's image with ko", "version", CoreDNSVersion, "typically", "1-3 min on 2 cores", "log", c.LogFile("ko-coredns"))
	}
	return c.koImage(ctx, filepath.Join(c.RepoRoot, "third_party", "coredns"), "./cmd/coredns", key, record, "ko-coredns")
}
