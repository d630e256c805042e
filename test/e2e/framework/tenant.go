package framework

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kcp-dev/logicalcluster/v3"
	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	tektonclient "github.com/tektoncd/pipeline/pkg/client/clientset/versioned"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"knative.dev/pkg/apis"

	fleetv1alpha1 "github.com/pipelines-service/pipelines-service/apis/fleet/v1alpha1"
	"github.com/pipelines-service/pipelines-service/pkg/devstack"
	"github.com/pipelines-service/pipelines-service/pkg/tenantconfig"
)

// Tenant is a tenant workspace bound to the Tekton export, seen with the
// tenant's own identity (not admin).
type Tenant struct {
	Name string
	// Cluster is the workspace's logical cluster.
	Cluster    logicalcluster.Name
	Kubeconfig string
	Rest       *rest.Config
	Tekton     tektonclient.Interface
	Kube       kubernetes.Interface
}

// TenantPrefix begins the name of every e2e tenant workspace.
const TenantPrefix = "e2e-"

// DeleteLeftoverTenants deletes the e2e tenant workspaces (and their
// policies) that a run which did not finish left behind: their runs would
// otherwise take workload cluster slots from this run's. Test runs never
// overlap, so every e2e workspace at setup is a leftover.
func (e *Env) DeleteLeftoverTenants(ctx context.Context) ([]string, error) {
	workspaces := e.KCP.Cluster(logicalcluster.NewPath("root")).TenancyV1alpha1().Workspaces()
	list, err := workspaces.List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	var deleted []string
	for _, ws := range list.Items {
		if !strings.HasPrefix(ws.Name, TenantPrefix) || ws.DeletionTimestamp != nil {
			continue
		}
		if err := e.Stack.DeleteTenantPolicy(ctx, ws.Spec.Cluster); err != nil {
			return deleted, fmt.Errorf("delete the policy of leftover tenant %s: %w", ws.Name, err)
		}
		if err := workspaces.Delete(ctx, ws.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return deleted, fmt.Errorf("delete leftover tenant %s: %w", ws.Name, err)
		}
		deleted = append(deleted, ws.Name)
	}
	return deleted, nil
}

// NewTenant creates a tenant workspace with a unique name for this test,
// its runs pinned to the first workload cluster (PinnedRegion): tests
// that look at workload objects look there. Fleet tests use
// NewFleetTenant.
func (e *Env) NewTenant(ctx context.Context, t testing.TB, prefix string) *Tenant {
	t.Helper()
	return e.NewFleetTenant(ctx, t, prefix, fleetv1alpha1.TenantPolicySpec{
		ClusterSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"region": PinnedRegion}},
	})
}

// NewTenantOn is NewTenant with the workspace on the kcp shard named.
func (e *Env) NewTenantOn(ctx context.Context, t testing.TB, prefix, shard string) *Tenant {
	t.Helper()
	return e.newTenant(ctx, t, prefix, shard, fleetv1alpha1.TenantPolicySpec{
		ClusterSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"region": PinnedRegion}},
	})
}

// NewFleetTenant creates a tenant workspace with a unique name for this
// test and the platform's policy for it.
func (e *Env) NewFleetTenant(ctx context.Context, t testing.TB, prefix string, policy fleetv1alpha1.TenantPolicySpec) *Tenant {
	t.Helper()
	return e.newTenant(ctx, t, prefix, devstack.RootShard, policy)
}

func (e *Env) newTenant(ctx context.Context, t testing.TB, prefix, shard string, policy fleetv1alpha1.TenantPolicySpec) *Tenant {
	t.Helper()
	name := fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano()%1_000_000_000)
	kubeconfig, err := e.Stack.AddTenantOn(ctx, name, shard)
	if err != nil {
		t.Fatalf("add tenant %s: %v", name, err)
	}
	tenant, err := TenantFromKubeconfig(name, kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	ws, err := e.KCP.Cluster(logicalcluster.NewPath("root")).TenancyV1alpha1().Workspaces().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("read tenant workspace %s: %v", name, err)
	}
	tenant.Cluster = logicalcluster.Name(ws.Spec.Cluster)
	if err := e.Stack.SetTenantPolicy(ctx, tenant.Cluster.String(), policy); err != nil {
		t.Fatalf("set the policy of tenant %s: %v", name, err)
	}
	if e.hostController() {
		WaitPolicyInForce(t, tenant.Cluster.String(), policy)
	} else {
		// A controller deployed in the workload cluster serves no
		// /debug/fleet on this host: what it acts on cannot be read.
		t.Logf("the controller runs in-cluster; not waiting for it to act on the policy of %s", name)
	}
	t.Cleanup(func() {
		if err := e.Stack.DeleteTenantPolicy(context.Background(), tenant.Cluster.String()); err != nil {
			t.Logf("delete the policy of tenant %s: %v", name, err)
		}
		if err := e.KCP.Cluster(logicalcluster.NewPath("root")).TenancyV1alpha1().Workspaces().Delete(context.Background(), name, metav1.DeleteOptions{}); err != nil {
			t.Logf("delete tenant workspace %s: %v", name, err)
		}
	})
	// After the deletion's cleanup, so that it runs before it.
	e.logControllerOnFailure(t, tenant.Cluster.String())
	return tenant
}

// TenantFromKubeconfig builds a tenant's clients.
func TenantFromKubeconfig(name, kubeconfig string) (*Tenant, error) {
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, err
	}
	return TenantFromRest(name, kubeconfig, rc)
}

// TenantFromRest builds a tenant's clients on a rest config (kubeconfig:
// the file it came from, if any).
func TenantFromRest(name, kubeconfig string, rc *rest.Config) (*Tenant, error) {
	tk, err := tektonclient.NewForConfig(rc)
	if err != nil {
		return nil, err
	}
	kube, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, err
	}
	return &Tenant{Name: name, Kubeconfig: kubeconfig, Rest: rc, Tekton: tk, Kube: kube}, nil
}

// ArchiveView is the tenant seen through the gateway's archive view of its
// workspace (https://<gateway>/archive/clusters/<workspace>), where runs
// and pods that are gone are read from Tekton Results: the same
// credentials, a kubeconfig of its own.
func (tn *Tenant) ArchiveView(t testing.TB) *Tenant {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(tn.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	for name, cluster := range cfg.Clusters {
		base, ws, ok := strings.Cut(cluster.Server, "/clusters/")
		if !ok {
			t.Fatalf("tenant kubeconfig's cluster %s (%s) names no workspace", name, cluster.Server)
		}
		cluster.Server = base + "/archive/clusters/" + ws
	}
	kubeconfig := t.TempDir() + "/archive.kubeconfig"
	if err := clientcmd.WriteToFile(*cfg, kubeconfig); err != nil {
		t.Fatal(err)
	}
	view, err := TenantFromKubeconfig(tn.Name, kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	view.Cluster = tn.Cluster
	return view
}

// WaitTaskRunDone waits until the TaskRun's Succeeded condition is no
// longer Unknown and returns it.
func (tn *Tenant) WaitTaskRunDone(ctx context.Context, t testing.TB, namespace, name string, timeout time.Duration) *v1.TaskRun {
	t.Helper()
	return tn.waitTaskRun(ctx, t, namespace, name, timeout, "done", func(c *apis.Condition) bool { return !c.IsUnknown() })
}

// WaitTaskRunRunning waits until the TaskRun's pod runs its steps
// (reason Running) and returns it.
func (tn *Tenant) WaitTaskRunRunning(ctx context.Context, t testing.TB, namespace, name string, timeout time.Duration) *v1.TaskRun {
	t.Helper()
	return tn.waitTaskRun(ctx, t, namespace, name, timeout, "running", func(c *apis.Condition) bool {
		return c.IsUnknown() && c.Reason == string(v1.TaskRunReasonRunning)
	})
}

// waitTaskRun waits until the TaskRun's Succeeded condition satisfies ok.
func (tn *Tenant) waitTaskRun(ctx context.Context, t testing.TB, namespace, name string, timeout time.Duration, what string, ok func(*apis.Condition) bool) *v1.TaskRun {
	t.Helper()
	var tr *v1.TaskRun
	Eventually(t, timeout, "TaskRun "+tn.Name+"/"+namespace+"/"+name+" "+what, func() (bool, string, error) {
		var err error
		tr, err = tn.Tekton.TektonV1().TaskRuns(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error(), nil
		}
		cond := tr.Status.GetCondition(apis.ConditionSucceeded)
		if cond == nil {
			return false, "no Succeeded condition yet", nil
		}
		return ok(cond), fmt.Sprintf("%s %s: %s", cond.Status, cond.Reason, cond.Message), nil
	})
	return tr
}

// Condition returns the Succeeded condition's status and reason.
func Condition(tr *v1.TaskRun) (string, string) {
	cond := tr.Status.GetCondition(apis.ConditionSucceeded)
	if cond == nil {
		return "", ""
	}
	return string(cond.Status), cond.Reason
}

// SetFeatureFlags writes the tenant's Tekton feature flags, as one would
// on a Tekton cluster: ConfigMap feature-flags in namespace tekton-pipelines.
func (tn *Tenant) SetFeatureFlags(ctx context.Context, t testing.TB, flags map[string]string) {
	t.Helper()
	tn.SetConfigMap(ctx, t, "feature-flags", flags)
}

// SetConfigMap writes one of the tenant's configuration ConfigMaps in
// namespace tekton-pipelines (Tekton's, or Results' retention policy).
func (tn *Tenant) SetConfigMap(ctx context.Context, t testing.TB, name string, data map[string]string) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: tenantconfig.Namespace}}
	if _, err := tn.Kube.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: tenantconfig.Namespace}, Data: data}
	_, err := tn.Kube.CoreV1().ConfigMaps(tenantconfig.Namespace).Create(ctx, cm, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		_, err = tn.Kube.CoreV1().ConfigMaps(tenantconfig.Namespace).Update(ctx, cm, metav1.UpdateOptions{})
	}
	if err != nil {
		t.Fatal(err)
	}
}

// CancelTaskRun cancels a TaskRun as `tkn taskrun cancel` does.
func (tn *Tenant) CancelTaskRun(ctx context.Context, t testing.TB, namespace, name string) {
	t.Helper()
	patch := []byte(`{"spec":{"status":"` + string(v1.TaskRunSpecStatusCancelled) + `"}}`)
	if _, err := tn.Tekton.TektonV1().TaskRuns(namespace).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatalf("cancel TaskRun %s/%s: %v", namespace, name, err)
	}
}

// hostController says the stack's controller runs as a host process,
// serving /debug/ on this host (not as a Deployment: bin/devstack deploy).
func (e *Env) hostController() bool {
	for _, line := range e.Stack.StatusLines() {
		if strings.HasPrefix(line, "CONTROLLER_STATE=") {
			return strings.HasPrefix(line, "CONTROLLER_STATE=running")
		}
	}
	return false
}
