package devstack

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/pipelines-service/pipelines-service/pkg/controller"
)

const deployNamespace = "pipelines-service"

// Deploy runs the controller in the workload cluster instead of on the
// host: it stops the host controller, writes the controller's Secret (and
// the dev-only environment ConfigMap) and runs `ko apply -f config/`.
func (s *Stack) Deploy(ctx context.Context) error {
	c := s.cfg
	if err := c.controllerProcess("").stop(0); err != nil {
		return err
	}
	imgs, err := c.ensureTektonImages(ctx)
	if err != nil {
		return err
	}
	client, err := c.WorkloadClient()
	if err != nil {
		return err
	}
	kcpKubeconfig, err := os.ReadFile(c.ControllerKCPKubeconfig())
	if err != nil {
		return err
	}
	cfg, err := yaml.Marshal(controller.Config{
		KCPKubeconfig:     "/etc/pipelines-service/kcp.kubeconfig",
		ProviderWorkspace: providerPath().String(),
		TektonImages:      imgs,
		ImageMap:          c.controllerImageMap(imgs),
		Workers:           4,
		TenantEgress:      c.TenantEgress(),
		MetricsAddress:    ":9090",
		Resolution:        c.resolutionConfig(),
	})
	if err != nil {
		return err
	}
	if err := applyObject(ctx, client, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: deployNamespace}}); err != nil {
		return err
	}
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "pipelines-service-config", Namespace: deployNamespace},
		Data:       map[string][]byte{"config.yaml": cfg, "kcp.kubeconfig": kcpKubeconfig},
	}
	if err := applyObject(ctx, client, secret); err != nil {
		return err
	}
	env := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "pipelines-service-env", Namespace: deployNamespace},
		Data: map[string]string{
			"KUBERNETES_SERVICE_HOST": c.clusterAddress(c.Clusters[0]).String(),
			"KUBERNETES_SERVICE_PORT": fmt.Sprint(c.Clusters[0].APIPort),
		},
	}
	if err := applyObject(ctx, client, env); err != nil {
		return err
	}
	if err := c.ensureKo(ctx); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, c.koBinary(), "apply", "-B", "-f", "config/")
	cmd.Dir = c.RepoRoot
	cmd.Env = append(c.koEnv(), "KUBECONFIG="+c.WorkloadAdminKubeconfig())
	cmd.Stdout = os.Stdout
	if err := c.runLogged(cmd, "ko-apply"); err != nil {
		return err
	}
	return writeFile(c.inClusterMarker(), "pipelines-service/pipelines-service-controller\n")
}

// Undeploy removes the in-cluster controller and runs it on the host again.
func (s *Stack) Undeploy(ctx context.Context) error {
	client, err := s.cfg.WorkloadClient()
	if err != nil {
		return err
	}
	err = client.AppsV1().Deployments(deployNamespace).Delete(ctx, "pipelines-service-controller", metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	if err := os.Remove(s.cfg.inClusterMarker()); err != nil && !os.IsNotExist(err) {
		return err
	}
	if err := s.startController(ctx); err != nil {
		return err
	}
	// The deleted pods release the Lease as they end; until the host
	// controller holds it, nothing reconciles.
	return s.WaitControllerLeader(ctx, 1, 2*time.Minute)
}

func (c Config) inClusterMarker() string { return c.Path("controller", "in-cluster") }

// controllerInCluster reports whether the controller runs in the workload
// cluster (devstack deploy) rather than as a host process.
func (c Config) controllerInCluster() bool {
	_, err := os.Stat(c.inClusterMarker())
	return err == nil
}

// applyObject creates or replaces a namespace, secret or configmap.
func applyObject(ctx context.Context, client kubernetes.Interface, obj any) error {
	var err error
	switch o := obj.(type) {
	case *corev1.Namespace:
		_, err = client.CoreV1().Namespaces().Create(ctx, o, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			return nil
		}
	case *corev1.Secret:
		_, err = client.CoreV1().Secrets(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			_, err = client.CoreV1().Secrets(o.Namespace).Update(ctx, o, metav1.UpdateOptions{})
		}
	case *corev1.ConfigMap:
		_, err = client.CoreV1().ConfigMaps(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			_, err = client.CoreV1().ConfigMaps(o.Namespace).Update(ctx, o, metav1.UpdateOptions{})
		}
	default:
		return fmt.Errorf("applyObject: unsupported %T", obj)
	}
	return err
}
