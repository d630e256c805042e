package bench

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"net/http"
	"sort"
	"time"

	"github.com/kcp-dev/logicalcluster/v3"
	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	tektonclient "github.com/tektoncd/pipeline/pkg/client/clientset/versioned"
	tektonv1 "github.com/tektoncd/pipeline/pkg/client/clientset/versioned/typed/pipeline/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
	"sigs.k8s.io/yaml"

	"github.com/pipelines-service/pipelines-service/pkg/devstack"
	"github.com/pipelines-service/pipelines-service/pkg/kcp"
	"github.com/pipelines-service/pipelines-service/pkg/provider"
	"github.com/pipelines-service/pipelines-service/pkg/reconciler/eventlistener"
	"github.com/pipelines-service/pipelines-service/pkg/triggers"
)

// ListenersResult are the figures of many idle EventListeners: what they
// cost (the shared sink's and the controller's memory, pods on the
// workload clusters) and how soon a webhook becomes a PipelineRun.
type ListenersResult struct {
	Listeners    int     `json:"listeners"`
	Workspaces   int     `json:"workspaces"`
	SetupSeconds float64 `json:"setupSeconds"`
	ReadySeconds float64 `json:"readySeconds"`
	// SinkRSS…: the working set of all the sink's pods on the workload
	// cluster.
	SinkRSSBeforeMiB float64 `json:"sinkWorkingSetBeforeMiB"`
	SinkRSSAfterMiB  float64 `json:"sinkWorkingSetAfterMiB"`
	ControllerRSSMiB float64 `json:"controllerRSSMiB"`
	// WorkloadPodsCreated are the pods created on the workload clusters
	// between the first listener's creation and all being Ready.
	WorkloadPodsCreated int `json:"workloadPodsCreated"`
	Events              int `json:"events"`
	// WebhookToRunP50/P99: from sending a signed event to the gateway to
	// the PipelineRun's ADDED event on a watch of its workspace.
	WebhookToRunP50 float64 `json:"webhookToPipelineRunSecondsP50"`
	WebhookToRunP99 float64 `json:"webhookToPipelineRunSecondsP99"`
	CleanupSeconds  float64 `json:"cleanupSeconds"`
}

const listenerSecret = "bench-webhook-secret"

// listenerObjects are one workspace's listeners: a webhook secret, an
// identity allowed to create PipelineRuns, a binding and a template making
// a pending PipelineRun (it never starts: the figure is the sink's, not
// the runs'), and perWorkspace listeners with a signed GitHub trigger.
func listenerObjects(perWorkspace int) []*unstructured.Unstructured {
	docs := []string{
		`{"apiVersion":"v1","kind":"Secret","metadata":{"name":"webhook","namespace":"default"},"stringData":{"token":"` + listenerSecret + `"}}`,
		`{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"listener","namespace":"default"}}`,
		`{"apiVersion":"triggers.tekton.dev/v1beta1","kind":"TriggerBinding","metadata":{"name":"push","namespace":"default"},"spec":{"params":[{"name":"revision","value":"$(body.after)"}]}}`,
		`{"apiVersion":"triggers.tekton.dev/v1beta1","kind":"TriggerTemplate","metadata":{"name":"pending","namespace":"default"},"spec":{"params":[{"name":"revision"}],"resourcetemplates":[` +
			`{"apiVersion":"tekton.dev/v1","kind":"PipelineRun","metadata":{"generateName":"bench-hook-"},"spec":{"status":"PipelineRunPending","params":[{"name":"revision","value":"$(tt.params.revision)"}],` +
			`"pipelineSpec":{"params":[{"name":"revision"}],"tasks":[{"name":"t","taskSpec":{"steps":[{"name":"s","image":"docker.io/library/busybox:1.36","script":"true"}]}}]}}}]}}`,
	}
	for i := 0; i < perWorkspace; i++ {
		docs = append(docs, fmt.Sprintf(`{"apiVersion":"triggers.tekton.dev/v1beta1","kind":"EventListener","metadata":{"name":"hook-%03d","namespace":"default"},"spec":{"serviceAccountName":"listener","triggers":[`+
			`{"name":"push","interceptors":[{"ref":{"name":"github"},"params":[{"name":"secretRef","value":{"secretName":"webhook","secretKey":"token"}},{"name":"eventTypes","value":["push"]}]}],`+
			`"bindings":[{"ref":"push"}],"template":{"ref":"pending"}}]}}`, i))
	}
	var out []*unstructured.Unstructured
	for _, d := range docs {
		u := &unstructured.Unstructured{}
		_ = yaml.Unmarshal([]byte(d), &u.Object)
		out = append(out, u)
	}
	return out
}

// listenerScale creates n listeners over the first w idle workspaces,
// waits until all are Ready, measures memory and pods, then times events
// sent through the gateway to PipelineRuns created; it deletes the
// listeners at the end.
func (r *runner) listenerScale(ctx context.Context, n, w, events int) (ListenersResult, error) {
	res := ListenersResult{Listeners: n, Workspaces: w}
	clients, err := r.stack.ProviderClients()
	if err != nil {
		return res, err
	}
	// The idle workspaces may be on any shard: through the front-proxy.
	base, err := r.cfg.KCPProxyBaseRestConfig()
	if err != nil {
		return res, err
	}
	// A fresh sink, settled: what it holds before any listener.
	if err := r.stack.RestartTriggersSink(ctx); err != nil {
		return res, err
	}
	time.Sleep(10 * time.Second)
	before, err := r.stack.TriggersSinkMemoryBytes(ctx)
	if err != nil {
		return res, err
	}
	res.SinkRSSBeforeMiB = float64(before) / (1 << 20)
	objects := listenerObjects(n / w)
	workspaces := make([]logicalcluster.Path, w)
	start := time.Now()
	if err := r.forEach(ctx, "listener workspaces set up", w, 8, func(i int) error {
		path, err := devstack.EnsureWorkspace(ctx, clients.KCP, logicalcluster.NewPath("root"), idleWorkspace(i))
		if err != nil {
			return err
		}
		if err := provider.BindTenant(ctx, clients, path, devstack.ProviderPath(), "bench-idle"); err != nil {
			return err
		}
		workspaces[i] = path
		return createListeners(ctx, kcp.ForCluster(base, logicalcluster.Name(path.String())), objects)
	}); err != nil {
		return res, err
	}
	res.SetupSeconds = time.Since(start).Seconds()
	urls, err := waitListenersReady(ctx, base, workspaces, n/w)
	if err != nil {
		return res, err
	}
	res.ReadySeconds = time.Since(start).Seconds()
	r.log.Infow("listeners ready", "listeners", n, "seconds", fmt.Sprintf("%.0f", res.ReadySeconds))
	time.Sleep(10 * time.Second) // let the sink's and controller's caches settle before reading memory
	after, err := r.stack.TriggersSinkMemoryBytes(ctx)
	if err != nil {
		return res, err
	}
	res.SinkRSSAfterMiB = float64(after) / (1 << 20)
	res.ControllerRSSMiB = float64(r.stack.ControllerRSSBytes()) / (1 << 20)
	if res.WorkloadPodsCreated, err = r.workloadPodsSince(ctx, start); err != nil {
		return res, err
	}
	latencies, err := r.webhookToRun(ctx, base, workspaces, urls, events)
	if err != nil {
		return res, err
	}
	res.Events = len(latencies)
	res.WebhookToRunP50, res.WebhookToRunP99 = percentile(latencies, 50), percentile(latencies, 99)
	start = time.Now()
	err = r.forEach(ctx, "listener workspaces cleaned up", w, 8, func(i int) error {
		return deleteListeners(ctx, kcp.ForCluster(base, logicalcluster.Name(workspaces[i].String())), n/w)
	})
	res.CleanupSeconds = time.Since(start).Seconds()
	return res, err
}

func createListeners(ctx context.Context, rc *rest.Config, objects []*unstructured.Unstructured) error {
	client, err := dynamic.NewForConfig(rc)
	if err != nil {
		return err
	}
	kube, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return err
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "listener", Namespace: "default"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "tekton-triggers-eventlistener-roles"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "listener", Namespace: "default"}},
	}
	if _, err := kube.RbacV1().RoleBindings("default").Create(ctx, binding, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	for _, u := range objects {
		gvr := triggers.EventListeners
		switch u.GetKind() {
		case "Secret":
			gvr = corev1.SchemeGroupVersion.WithResource("secrets")
		case "ServiceAccount":
			gvr = corev1.SchemeGroupVersion.WithResource("serviceaccounts")
		case "TriggerBinding":
			gvr = triggers.TriggerBindings
		case "TriggerTemplate":
			gvr = triggers.TriggerTemplates
		}
		if _, err := client.Resource(gvr).Namespace("default").Create(ctx, u, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create %s %s: %w", u.GetKind(), u.GetName(), err)
		}
	}
	return nil
}

func deleteListeners(ctx context.Context, rc *rest.Config, perWorkspace int) error {
	client, err := dynamic.NewForConfig(rc)
	if err != nil {
		return err
	}
	for i := 0; i < perWorkspace; i++ {
		if err := client.Resource(triggers.EventListeners).Namespace("default").Delete(ctx, fmt.Sprintf("hook-%03d", i), metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	tk, err := tektonclient.NewForConfig(rc)
	if err != nil {
		return err
	}
	return tk.TektonV1().PipelineRuns("default").DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: "triggers.tekton.dev/trigger=push"})
}

// waitListenersReady waits until every listener is Ready and returns
// their addresses, by workspace index.
func waitListenersReady(ctx context.Context, base *rest.Config, workspaces []logicalcluster.Path, perWorkspace int) (map[int][]string, error) {
	urls := map[int][]string{}
	deadline := time.Now().Add(10 * time.Minute)
	for i, ws := range workspaces {
		client, err := dynamic.NewForConfig(kcp.ForCluster(base, logicalcluster.Name(ws.String())))
		if err != nil {
			return nil, err
		}
		for {
			list, err := client.Resource(triggers.EventListeners).Namespace("default").List(ctx, metav1.ListOptions{})
			if err != nil {
				return nil, err
			}
			var ready []string
			for _, el := range list.Items {
				reason, _, _ := unstructured.NestedSlice(el.Object, "status", "conditions")
				url, _, _ := unstructured.NestedString(el.Object, "status", "address", "url")
				if readyCondition(reason) && url != "" {
					ready = append(ready, url)
				}
			}
			if len(ready) >= perWorkspace {
				sort.Strings(ready)
				urls[i] = ready
				break
			}
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("workspace %s: %d of %d listeners Ready after 10 min", ws, len(ready), perWorkspace)
			}
			time.Sleep(time.Second)
		}
	}
	return urls, nil
}

func readyCondition(conds []any) bool {
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == "Ready" && m["status"] == "True" && m["reason"] == eventlistener.ReasonReady {
			return true
		}
	}
	return false
}

// webhookToRun sends events to listeners spread over the workspaces, one
// after the other, each signed as GitHub signs a push, and times each
// until its PipelineRun appears on a watch of its workspace.
func (r *runner) webhookToRun(ctx context.Context, base *rest.Config, workspaces []logicalcluster.Path, urls map[int][]string, events int) ([]float64, error) {
	gatewayCA, err := r.cfg.GatewayCAPool()
	if err != nil {
		return nil, err
	}
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: gatewayCA, MinVersion: tls.VersionTLS12}}}
	var latencies []float64
	for e := 0; e < events; e++ {
		i := e % len(workspaces)
		url := urls[i][(e/len(workspaces))%len(urls[i])]
		tk, err := tektonclient.NewForConfig(kcp.ForCluster(base, logicalcluster.Name(workspaces[i].String())))
		if err != nil {
			return nil, err
		}
		revision := fmt.Sprintf("bench-%d-%d", time.Now().UnixNano(), e)
		w, err := watchRuns(ctx, tk.TektonV1().PipelineRuns("default"), "triggers.tekton.dev/trigger=push")
		if err != nil {
			return nil, err
		}
		body := []byte(`{"after":"` + revision + `"}`)
		mac := hmac.New(sha256.New, []byte(listenerSecret))
		mac.Write(body)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-GitHub-Event", "push")
		req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
		sent := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			w.Stop()
			return nil, err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			w.Stop()
			return nil, fmt.Errorf("event to %s: HTTP %d", url, resp.StatusCode)
		}
		got, err := waitRevision(w, revision, time.Minute)
		w.Stop()
		if err != nil {
			return nil, fmt.Errorf("event to %s: %w", url, err)
		}
		latencies = append(latencies, got.Sub(sent).Seconds())
	}
	return latencies, nil
}

// watchRuns watches the PipelineRuns selected from now on, opening the
// watch again where it stopped when kcp or the client's timeout (30 s)
// closes it: a PipelineRun can take longer than one watch to come.
func watchRuns(ctx context.Context, runs tektonv1.PipelineRunInterface, selector string) (watch.Interface, error) {
	list, err := runs.List(ctx, metav1.ListOptions{LabelSelector: selector, Limit: 1})
	if err != nil {
		return nil, err
	}
	return watchtools.NewRetryWatcher(list.ResourceVersion, &cache.ListWatch{WatchFunc: func(opts metav1.ListOptions) (watch.Interface, error) {
		opts.LabelSelector = selector
		return runs.Watch(ctx, opts)
	}})
}

func waitRevision(w watch.Interface, revision string, timeout time.Duration) (time.Time, error) {
	deadline := time.After(timeout)
	for {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				return time.Time{}, fmt.Errorf("watch closed before the PipelineRun of %s", revision)
			}
			if ev.Type == watch.Error {
				return time.Time{}, fmt.Errorf("watching for the PipelineRun of %s: %v", revision, apierrors.FromObject(ev.Object))
			}
			pr, isRun := ev.Object.(*v1.PipelineRun)
			if ev.Type == watch.Added && isRun && len(pr.Spec.Params) > 0 && pr.Spec.Params[0].Value.StringVal == revision {
				return time.Now(), nil
			}
		case <-deadline:
			return time.Time{}, fmt.Errorf("no PipelineRun of %s within %s", revision, timeout)
		}
	}
}

// workloadPodsSince counts the pods created on every workload cluster
// since a time (to the second, as the apiserver stamps them).
func (r *runner) workloadPodsSince(ctx context.Context, since time.Time) (int, error) {
	total := 0
	for _, cl := range r.cfg.WorkloadClusters() {
		client, err := r.cfg.WorkloadClusterClient(cl.Name)
		if err != nil {
			return 0, err
		}
		pods, err := client.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
		if err != nil {
			return 0, err
		}
		for _, p := range pods.Items {
			if !p.CreationTimestamp.Time.Before(since.Truncate(time.Second)) {
				total++
			}
		}
	}
	return total, nil
}
