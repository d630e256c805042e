//go:build e2e

package gateway

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kcp-dev/logicalcluster/v3"
	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/pipelines-service/pipelines-service/pkg/devstack"
	"github.com/pipelines-service/pipelines-service/pkg/workload"
	"github.com/pipelines-service/pipelines-service/test/e2e/framework"
)

// say is a finished TaskRun whose step printed a line.
func say(ctx context.Context, t *testing.T, tn *framework.Tenant) *v1.TaskRun {
	t.Helper()
	tr := &v1.TaskRun{ObjectMeta: metav1.ObjectMeta{Name: "say"}, Spec: v1.TaskRunSpec{TaskSpec: &v1.TaskSpec{Steps: []v1.Step{{
		Name: "x", Image: "docker.io/library/busybox:1.36", Script: "#!/bin/sh\necho said-by-step-x\n",
	}}}}}
	if _, err := tn.Tekton.TektonV1().TaskRuns(ns).Create(ctx, tr, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	done := tn.WaitTaskRunDone(ctx, t, ns, "say", 3*time.Minute)
	if status, reason := framework.Condition(done); status != "True" {
		t.Fatalf("say ended %s/%s", status, reason)
	}
	return done
}

// TestKubectlPodsAndLogs: kubectl get pods and kubectl logs work against
// the tenant's kubeconfig; the pods are the tenant's view (its namespace,
// nothing that leads to the workload cluster); they are read-only.
func TestKubectlPodsAndLogs(t *testing.T) {
	ctx := context.Background()
	tn := env.NewTenant(ctx, t, "e2e-kubectl")
	tr := say(ctx, t, tn)
	pod := tr.Status.PodName

	out, errOut, err := framework.Kubectl(ctx, t, tn.Kubeconfig, "get", "pods", "-n", ns)
	if err != nil || !strings.Contains(out, pod) || !strings.Contains(out, "Completed") {
		t.Errorf("kubectl get pods: %v\n%s%s", err, out, errOut)
	}
	out, errOut, err = framework.Kubectl(ctx, t, tn.Kubeconfig, "logs", pod, "-c", "step-x", "-n", ns)
	if err != nil || strings.TrimSpace(out) != "said-by-step-x" {
		t.Errorf("kubectl logs %s -c step-x: %v\n%s%s", pod, err, out, errOut)
	}
	out, errOut, err = framework.Kubectl(ctx, t, tn.Kubeconfig, "get", "pod", pod, "-n", ns, "-o", "json")
	if err != nil {
		t.Fatalf("kubectl get pod -o json: %v\n%s", err, errOut)
	}
	var got corev1.Pod
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	wns := workload.Namespace(tn.Cluster, ns)
	if got.Namespace != ns || strings.Contains(out, wns) || got.Status.HostIP != "" || len(got.Status.HostIPs) != 0 {
		t.Errorf("the tenant's pod shows namespace %q, hostIP %q; the workload namespace %s appears: %v", got.Namespace, got.Status.HostIP, wns, strings.Contains(out, wns))
	}
	// A pod named ".." would lead from the pod to the workload namespace.
	client, err := rest.HTTPClientFor(tn.Rest)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Get(tn.Rest.Host + "/api/v1/namespaces/" + ns + "/pods/..")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || strings.Contains(string(body), wns) {
		t.Errorf("GET pods/..: %s %s; want 400 without the workload namespace", resp.Status, body)
	}
	_, errOut, err = framework.Kubectl(ctx, t, tn.Kubeconfig, "delete", "pod", pod, "-n", ns)
	if err == nil || !strings.Contains(errOut, "MethodNotAllowed") {
		t.Errorf("kubectl delete pod: %v %s; want MethodNotAllowed", err, errOut)
	}
	if _, err := env.Workload.CoreV1().Pods(wns).Get(ctx, pod, metav1.GetOptions{}); err != nil {
		t.Errorf("the workload pod after the refused delete: %v", err)
	}
}

// TestPodsAndLogsFollowWorkspaceRBAC: another tenant's identity, and a
// user of the workspace whose roles do not cover pods, get 403 for the
// pods and logs of the workspace; a service account token with a role
// for them is let in (reviewed by kcp), a made-up token is not.
func TestPodsAndLogsFollowWorkspaceRBAC(t *testing.T) {
	ctx := context.Background()
	victim := env.NewTenant(ctx, t, "e2e-victim")
	attacker := env.NewTenant(ctx, t, "e2e-intruder")
	pod := say(ctx, t, victim).Status.PodName
	workspace := logicalcluster.NewPath("root").Join(victim.Name)

	intruder, err := env.Stack.UserKubeconfig(devstack.TenantUser(attacker.Name), workspace)
	if err != nil {
		t.Fatal(err)
	}
	viewer := "e2e-viewer-" + victim.Name
	grant(ctx, t, victim, viewer, "User", rbacv1.PolicyRule{APIGroups: []string{"tekton.dev"}, Resources: []string{"taskruns"}, Verbs: []string{"get", "list"}})
	viewerKubeconfig, err := env.Stack.UserKubeconfig(viewer, workspace)
	if err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, 30*time.Second, "the viewer's role is in force", func() (bool, string, error) {
		out, errOut, err := framework.Kubectl(ctx, t, viewerKubeconfig, "get", "taskruns", "-n", ns)
		return err == nil && strings.Contains(out, "say"), out + errOut, nil
	})
	for who, kubeconfig := range map[string]string{"another tenant": intruder, "a user without a role for pods": viewerKubeconfig} {
		for _, args := range [][]string{{"get", "pods"}, {"get", "pod", pod}, {"logs", pod, "-c", "step-x"}} {
			out, errOut, err := framework.Kubectl(ctx, t, kubeconfig, append(args, "-n", ns)...)
			if err == nil || !strings.Contains(errOut, "Forbidden") || strings.Contains(out, "said-by-step-x") {
				t.Errorf("%s: kubectl %s: %v\n%s%s; want Forbidden", who, strings.Join(args, " "), err, out, errOut)
			}
		}
	}

	// A service account of the workspace, by token.
	if _, err := victim.Kube.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "log-reader"}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	grant(ctx, t, victim, "log-reader", "ServiceAccount",
		rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"pods", "pods/log"}, Verbs: []string{"get", "list"}})
	token, err := victim.Kube.CoreV1().ServiceAccounts(ns).CreateToken(ctx, "log-reader", &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("a token of the service account: %v", err)
	}
	bearer := func(token string) kubernetes.Interface {
		rc := rest.AnonymousClientConfig(victim.Rest)
		rc.BearerToken = token
		return kubernetes.NewForConfigOrDie(rc)
	}
	framework.Eventually(t, 30*time.Second, "the service account reads the step's log by token", func() (bool, string, error) {
		data, err := bearer(token.Status.Token).CoreV1().Pods(ns).GetLogs(pod, &corev1.PodLogOptions{Container: "step-x"}).DoRaw(ctx)
		return err == nil && strings.TrimSpace(string(data)) == "said-by-step-x", string(data) + errString(err), nil
	})
	if _, err := bearer("not-a-token").CoreV1().Pods(ns).List(ctx, metav1.ListOptions{}); !apierrors.IsUnauthorized(err) {
		t.Errorf("a made-up token listing pods: %v, want Unauthorized", err)
	}
}

// grant gives a subject of the tenant's workspace access to it and one
// rule, as the tenant (its admin) would.
func grant(ctx context.Context, t *testing.T, tn *framework.Tenant, subject, kind string, rule rbacv1.PolicyRule) {
	t.Helper()
	name := "e2e-" + strings.ToLower(kind) + "-" + subject
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: []rbacv1.PolicyRule{
		{NonResourceURLs: []string{"/"}, Verbs: []string{"access"}}, rule,
	}}
	if _, err := tn.Kube.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	s := rbacv1.Subject{Kind: kind, Name: subject}
	if kind == "ServiceAccount" {
		s.Namespace = ns
	} else {
		s.APIGroup = rbacv1.GroupName
	}
	binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name}, Subjects: []rbacv1.Subject{s}}
	if _, err := tn.Kube.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestCallerIdentityReachesKCP: kcp sees the tenant behind the gateway,
// and a client that names another identity in kcp's request headers
// (X-Remote-User, X-Remote-Group) is still only itself.
func TestCallerIdentityReachesKCP(t *testing.T) {
	ctx := context.Background()
	tn := env.NewTenant(ctx, t, "e2e-whoami")
	want := devstack.TenantUser(tn.Name)
	out, errOut, err := framework.Kubectl(ctx, t, tn.Kubeconfig, "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}")
	if err != nil || out != want {
		t.Errorf("kubectl auth whoami through the gateway: %q %v %s, want %q", out, err, errOut, want)
	}
	forged := rest.CopyConfig(tn.Rest)
	forged.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		return roundTripperFunc(func(r *http.Request) (*http.Response, error) {
			r = r.Clone(r.Context())
			r.Header.Set("X-Remote-User", "system:admin")
			r.Header.Add("X-Remote-Group", "system:masters")
			r.Header.Set("X-Remote-Extra-Authentication.kcp.io%2Fscopes", "cluster:root")
			return rt.RoundTrip(r)
		})
	}
	review, err := kubernetes.NewForConfigOrDie(forged).AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if u := review.Status.UserInfo; u.Username != want || slices.Contains(u.Groups, "system:masters") || len(u.Extra["authentication.kcp.io/scopes"]) > 0 {
		t.Errorf("a client naming system:admin in request headers is seen by kcp as %+v, want %s only", u, want)
	}
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func errString(err error) string {
	if err == nil {
		return ""
	}
	return " " + err.Error()
}
