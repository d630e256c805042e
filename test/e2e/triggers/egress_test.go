//go:build e2e

package triggers

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pipelines-service/pipelines-service/pkg/reconciler/eventlistener"
)

// TestTenantInterceptorsCannotReachThePlatform (hostile tenant): a
// tenant's own ClusterInterceptor, Interceptor and webhook interceptor
// name an address on the stack's host, where the platform's services
// listen. The sink never connects there: the listener's other trigger,
// with the core CEL interceptor only, runs and creates its TaskRun; the
// triggers behind the tenant's interceptors create nothing, and the
// server at that address sees no request.
func TestTenantInterceptorsCannotReachThePlatform(t *testing.T) {
	ctx := context.Background()
	var hits atomic.Int32
	ln, err := net.Listen("tcp", net.JoinHostPort(env.Stack.Config().HostIP.String(), "0"))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		_, _ = w.Write([]byte(`{"continue": true}`))
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	platform := "http://" + ln.Addr().String() + "/"

	tn := env.NewTenant(ctx, t, "e2e-egress")
	tn.Apply(ctx, t, fmt.Sprintf(`
apiVersion: v1
kind: ServiceAccount
metadata: {name: listener, namespace: default}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: listener, namespace: default}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: tekton-triggers-eventlistener-roles}
subjects: [{kind: ServiceAccount, name: listener, namespace: default}]
---
apiVersion: triggers.tekton.dev/v1alpha1
kind: ClusterInterceptor
metadata: {name: platform-probe}
spec: {clientConfig: {url: %[1]q}}
---
apiVersion: triggers.tekton.dev/v1alpha1
kind: Interceptor
metadata: {name: platform-probe, namespace: default}
spec: {clientConfig: {url: %[1]q}}
---
apiVersion: triggers.tekton.dev/v1beta1
kind: TriggerTemplate
metadata: {name: run, namespace: default}
spec:
  params: [{name: via}]
  resourcetemplates:
  - apiVersion: tekton.dev/v1
    kind: TaskRun
    metadata: {generateName: $(tt.params.via)-}
    spec:
      taskSpec:
        steps: [{name: echo, image: docker.io/library/busybox:1.36, script: 'echo $(tt.params.via)'}]
---
apiVersion: triggers.tekton.dev/v1beta1
kind: EventListener
metadata: {name: probe, namespace: default}
spec:
  serviceAccountName: listener
  triggers:
  - name: cluster-interceptor
    interceptors: [{ref: {name: platform-probe, kind: ClusterInterceptor}}]
    bindings: [{name: via, value: cluster-interceptor}]
    template: {ref: run}
  - name: namespaced-interceptor
    interceptors: [{ref: {name: platform-probe, kind: NamespacedInterceptor}}]
    bindings: [{name: via, value: namespaced-interceptor}]
    template: {ref: run}
  - name: webhook
    interceptors: [{webhook: {url: %[1]q, objectRef: {kind: Service, apiVersion: v1, name: platform-probe}}}]
    bindings: [{name: via, value: webhook}]
    template: {ref: run}
  - name: control
    interceptors: [{ref: {name: cel}, params: [{name: filter, value: "body.go == true"}]}]
    bindings: [{name: via, value: control}]
    template: {ref: run}
`, platform))
	el := tn.WaitEventListener(ctx, t, "default", "probe", "True", eventlistener.ReasonReady)
	body := []byte(`{"go": true}`)
	ev := tn.PostEvent(t, address(t, el), map[string]string{"Content-Type": "application/json"}, body)
	if ev.Code != http.StatusAccepted {
		t.Fatalf("event: HTTP %d %s, want 202", ev.Code, ev.Body)
	}
	created, err := createdByEvent(ctx, t, tn, ev.ID)
	if err != nil {
		t.Fatal(err)
	}
	// The control trigger ran; the three others ran their interceptors
	// at the same time, and their runs, had they been let through, would
	// be there by now too.
	time.Sleep(2 * time.Second)
	runs, err := tn.Tekton.TektonV1().TaskRuns("default").List(ctx, metav1ListByEvent(ev.ID))
	if err != nil {
		t.Fatal(err)
	}
	if len(runs.Items) != 1 || runs.Items[0].GenerateName != "control-" {
		var names []string
		for _, r := range runs.Items {
			names = append(names, r.Name)
		}
		t.Errorf("runs of the event: %v, want only the control trigger's (first seen: %s)", names, created.name)
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the sink reached an address on the platform's host %d times for a tenant's interceptors", n)
	}
}
