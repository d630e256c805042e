//go:build e2e

package results

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/pipelines-service/pipelines-service/pkg/gateway"
	"github.com/pipelines-service/pipelines-service/test/e2e/framework"
)

// checkArchiveView: once tenant A's runs are pruned, the archive view of
// its workspace answers tkn and kubectl from Results as the live objects
// did (the run, its pod, the step's log); the plain view keeps them 404;
// tenant B is refused on A's view and, in its own, never meets A's runs.
// tr is one of A's pruned TaskRuns, as it was before pruning.
func checkArchiveView(ctx context.Context, t *testing.T, a, b *framework.Tenant, tr v1.TaskRun) {
	t.Helper()
	pod, prName := tr.Status.PodName, tr.Labels["tekton.dev/pipelineRun"]
	said := prName + " says hello\nsecond line\n"

	if _, err := a.Tekton.TektonV1().TaskRuns(ns).Get(ctx, tr.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("pruned TaskRun %s in the plain view: %v, want 404", tr.Name, err)
	}
	if _, err := a.Kube.CoreV1().Pods(ns).Get(ctx, pod, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("pod %s of a pruned run in the plain view: %v, want 404", pod, err)
	}

	view := a.ArchiveView(t)
	got, err := view.Tekton.TektonV1().TaskRuns(ns).Get(ctx, tr.Name, metav1.GetOptions{})
	switch {
	case err != nil:
		t.Errorf("pruned TaskRun %s in the archive view: %v", tr.Name, err)
	case got.UID != tr.UID || got.Status.PodName != pod || !got.IsSuccessful() ||
		!strings.HasPrefix(got.Annotations[gateway.AnnotationArchived], ns+"/results/"):
		t.Errorf("archived TaskRun %s: uid %s pod %s successful %t annotation %q; want uid %s pod %s",
			got.Name, got.UID, got.Status.PodName, got.IsSuccessful(), got.Annotations[gateway.AnnotationArchived], tr.UID, pod)
	}
	if _, err := view.Tekton.TektonV1().PipelineRuns(ns).Get(ctx, prName, metav1.GetOptions{}); err != nil {
		t.Errorf("pruned PipelineRun %s in the archive view: %v", prName, err)
	}
	if p, err := view.Kube.CoreV1().Pods(ns).Get(ctx, pod, metav1.GetOptions{}); err != nil || len(p.Spec.Containers) != 1 || p.Spec.Containers[0].Name != "step-hello" {
		t.Errorf("archived pod %s: %v %+v", pod, err, p)
	}
	if log, err := view.Kube.CoreV1().Pods(ns).GetLogs(pod, &corev1.PodLogOptions{Container: "step-hello"}).DoRaw(ctx); err != nil || string(log) != said {
		t.Errorf("archived log of pod %s: %v %q, want %q", pod, err, log, said)
	}
	if _, err := view.Tekton.TektonV1().TaskRuns(ns).Get(ctx, "never-ran", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("a TaskRun that never was, in the archive view: %v, want 404", err)
	}

	// The tools, unchanged, on the archive view's kubeconfig.
	if out, errOut, err := framework.Kubectl(ctx, t, view.Kubeconfig, "logs", pod, "-c", "step-hello", "-n", ns); err != nil || out != said {
		t.Errorf("kubectl logs %s (archive view): %v %q %s, want %q", pod, err, out, errOut, said)
	}
	for _, args := range [][]string{{"taskrun", "logs", tr.Name}, {"pipelinerun", "logs", prName}} {
		out, errOut, err := env.Tkn(ctx, t, view.Kubeconfig, append(args, "-n", ns)...)
		if err != nil || !strings.Contains(out, prName+" says hello") || !strings.Contains(out, "second line") {
			t.Errorf("tkn %s (archive view): %v\n%s%s", strings.Join(args, " "), err, out, errOut)
		}
	}

	// Tenant B: refused on A's archive view; in its own view, a pod of
	// the same name is B's own (the same run names), never A's.
	rc := rest.CopyConfig(b.Rest)
	base, _, _ := strings.Cut(rc.Host, "/clusters/")
	rc.Host = base + "/archive/clusters/" + a.Cluster.String()
	bOnA, err := framework.TenantFromRest(b.Name, "", rc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bOnA.Kube.CoreV1().Pods(ns).GetLogs(pod, &corev1.PodLogOptions{Container: "step-hello"}).DoRaw(ctx); !apierrors.IsForbidden(err) {
		t.Errorf("tenant B reading A's archived log: %v, want 403", err)
	}
	if _, err := bOnA.Tekton.TektonV1().TaskRuns(ns).Get(ctx, tr.Name, metav1.GetOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("tenant B reading A's archived TaskRun: %v, want 403", err)
	}
	// B's runs (same names) still live here: B's view gives B's pod.
	bPod, err := b.ArchiveView(t).Kube.CoreV1().Pods(ns).Get(ctx, pod, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("tenant B's own pod %s in its archive view: %v", pod, err)
	}
	for _, ref := range bPod.OwnerReferences {
		if ref.UID == tr.UID {
			t.Errorf("tenant B's archive view gave A's pod %s", pod)
		}
	}
	if rec := bPod.Annotations[gateway.AnnotationArchived]; rec != "" {
		t.Errorf("tenant B's live pod %s was answered from an archive (%s)", pod, rec)
	}
}

// checkTknResults: Tekton Results' own CLI, configured as its docs say
// (`tkn-results config set --host --api-path`) on a copy of the tenant's kubeconfig,
// lists the tenant's PipelineRuns and prints a TaskRun's log through the
// gateway with the kubeconfig's client certificate; pointed at another
// tenant's workspace, it is refused.
func checkTknResults(ctx context.Context, t *testing.T, a, b *framework.Tenant, prNames []string, tr v1.TaskRun) {
	t.Helper()
	// tkn-results keeps the scheme and host of --host and puts its API
	// path after them: the workspace goes into --api-path.
	host, wsPath, _ := strings.Cut(a.Rest.Host, "/clusters/")
	kubeconfig := func(tn *framework.Tenant, apiPath string) string {
		data, err := os.ReadFile(tn.Kubeconfig)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "kubeconfig")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		// tkn-results reads --kubeconfig or ~/.kube/config, not $KUBECONFIG.
		if out, errOut, err := env.TknResults(ctx, t, path, "config", "set", "--kubeconfig="+path, "--host="+host, "--api-path="+apiPath); err != nil {
			t.Fatalf("tkn-results config set --host=%s --api-path=%s: %v\n%s%s", host, apiPath, err, out, errOut)
		}
		return path
	}
	aKubeconfig := kubeconfig(a, "/clusters/"+wsPath)
	out, errOut, err := env.TknResults(ctx, t, aKubeconfig, "pipelinerun", "list", "--kubeconfig="+aKubeconfig, "-n", ns, "--limit", "50")
	if err != nil {
		t.Errorf("tkn-results pipelinerun list: %v\n%s%s", err, out, errOut)
	}
	for _, name := range prNames {
		if !strings.Contains(out, name) {
			t.Errorf("tkn-results pipelinerun list lacks %s:\n%s", name, out)
		}
	}
	out, errOut, err = env.TknResults(ctx, t, aKubeconfig, "taskrun", "logs", "--kubeconfig="+aKubeconfig, tr.Name, "-n", ns)
	if err != nil || !strings.Contains(out, tr.Labels["tekton.dev/pipelineRun"]+" says hello") {
		t.Errorf("tkn-results taskrun logs %s: %v\n%s%s", tr.Name, err, out, errOut)
	}
	bOnA := kubeconfig(b, "/clusters/"+wsPath)
	out, errOut, err = env.TknResults(ctx, t, bOnA, "pipelinerun", "list", "--kubeconfig="+bOnA, "-n", ns)
	if err == nil || !strings.Contains(out+errOut, "403") && !strings.Contains(strings.ToLower(out+errOut), "forbidden") {
		t.Errorf("tenant B's tkn-results on tenant A's workspace: %v\n%s%s; want refused (403)", err, out, errOut)
	}
}
