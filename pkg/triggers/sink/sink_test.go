package sink

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tektoncd/triggers/pkg/apis/triggers/v1beta1"
	"go.uber.org/zap"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"

	"github.com/pipelines-service/pipelines-service/pkg/triggers"
)

// secrets is a workspace's secrets for the core interceptors.
type secrets map[string]string

func (s secrets) Get(_ context.Context, ns string, ref *v1beta1.SecretRef) ([]byte, error) {
	v, ok := s[ns+"/"+ref.SecretName+"/"+ref.SecretKey]
	if !ok {
		return nil, fmt.Errorf("secret %s/%s not found", ns, ref.SecretName)
	}
	return []byte(v), nil
}

func param(name string, value any) v1beta1.InterceptorParams {
	raw, _ := json.Marshal(value)
	return v1beta1.InterceptorParams{Name: name, Value: apiextensionsv1.JSON{Raw: raw}}
}

func listener(interceptors ...*v1beta1.TriggerInterceptor) *v1beta1.EventListener {
	return &v1beta1.EventListener{
		ObjectMeta: metav1.ObjectMeta{Name: "l", Namespace: "default"},
		Spec:       v1beta1.EventListenerSpec{Triggers: []v1beta1.EventListenerTrigger{{Name: "t", Interceptors: interceptors, Template: &v1beta1.EventListenerTemplate{Ref: ptr.To("tt")}}}},
	}
}

func sign(secret, body string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(body))
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

func TestVerify(t *testing.T) {
	wi, err := newWorkspaceInterceptors(secrets{"default/webhook/token": "s3cret"}, newEgress(nil), zap.NewNop().Sugar())
	if err != nil {
		t.Fatal(err)
	}
	ws := triggers.ClusterListers{}.Workspace("ws", true)
	github := &v1beta1.TriggerInterceptor{Ref: v1beta1.InterceptorRef{Name: "github"}, Params: []v1beta1.InterceptorParams{
		param("secretRef", map[string]string{"secretName": "webhook", "secretKey": "token"}), param("eventTypes", []string{"pull_request"})}}
	foreign := &v1beta1.TriggerInterceptor{Ref: v1beta1.InterceptorRef{Name: "github"}, Params: []v1beta1.InterceptorParams{
		param("secretRef", map[string]string{"secretName": "someone-elses", "secretKey": "token"})}}
	cel := &v1beta1.TriggerInterceptor{Ref: v1beta1.InterceptorRef{Name: "cel"}, Params: []v1beta1.InterceptorParams{param("filter", "true")}}
	body := `{"action":"opened"}`
	for _, tc := range []struct {
		name   string
		el     *v1beta1.EventListener
		header map[string]string
		want   bool
	}{
		{"signed", listener(github), map[string]string{"X-Hub-Signature-256": sign("s3cret", body), "X-GitHub-Event": "push"}, true},
		{"wrong secret", listener(github), map[string]string{"X-Hub-Signature-256": sign("guess", body)}, false},
		{"no signature", listener(github), nil, false},
		{"a secret the workspace does not have", listener(foreign), map[string]string{"X-Hub-Signature-256": sign("s3cret", body)}, false},
		{"cel only: verifies nothing, as upstream", listener(cel), nil, true},
		{"no trigger", &v1beta1.EventListener{ObjectMeta: metav1.ObjectMeta{Namespace: "default"}}, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/hooks/ws/default/l", strings.NewReader(body))
			for k, v := range tc.header {
				r.Header.Set(k, v)
			}
			ok, why := verify(context.Background(), wi, ws, tc.el, r, []byte(body))
			if ok != tc.want {
				t.Errorf("verify: %v (%v), want %v", ok, why, tc.want)
			}
			if !ok && len(why) == 0 {
				t.Error("a refusal gives no reason")
			}
		})
	}
}

func TestEgressAllowList(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("{}")) }))
	defer srv.Close()
	denied := &http.Client{Transport: newEgress(nil)}
	if _, err := denied.Get(srv.URL); !errors.Is(err, errEgressDenied) {
		t.Errorf("no allowed networks: %v, want %v", err, errEgressDenied)
	}
	_, loopback, _ := net.ParseCIDR("127.0.0.0/8")
	allowed := &http.Client{Transport: newEgress([]*net.IPNet{loopback})}
	resp, err := allowed.Get(srv.URL)
	if err != nil {
		t.Fatalf("allowed network: %v", err)
	}
	resp.Body.Close()
}

func TestParseRoute(t *testing.T) {
	for path, ok := range map[string]bool{
		"/hooks/2x9l8ywfkqk3v6oh/default/github": true,
		"/hooks/2x9l8ywfkqk3v6oh/default":        false,
		"/hooks/root:org/default/github":         false, // a workspace path, not a logical cluster
		"/hooks/2x9l8ywfkqk3v6oh/Default/github": false,
		"/hooks/2x9l8ywfkqk3v6oh/default/a/b":    false,
		"/clusters/x/default/github":             false,
	} {
		if _, got := parseRoute(path); got != ok {
			t.Errorf("parseRoute(%s): %v, want %v", path, got, ok)
		}
	}
}

func TestV1beta1RunsCreatedAsV1(t *testing.T) {
	in := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "tekton.dev/v1beta1", "kind": "TaskRun",
		"metadata": map[string]any{"generateName": "run-"},
		"spec": map[string]any{
			"serviceAccountName": "sa",
			"taskSpec":           map[string]any{"steps": []any{map[string]any{"image": "busybox", "script": "echo hi"}}},
		},
	}}
	out, err := toV1(context.Background(), "taskruns", in)
	if err != nil {
		t.Fatal(err)
	}
	if out.GetAPIVersion() != "tekton.dev/v1" || out.GetGenerateName() != "run-" {
		t.Errorf("converted %s %s, want tekton.dev/v1 run-", out.GetAPIVersion(), out.GetGenerateName())
	}
	if sa, _, _ := unstructured.NestedString(out.Object, "spec", "serviceAccountName"); sa != "sa" {
		t.Errorf("serviceAccountName %q lost in conversion", sa)
	}
	if _, found, _ := unstructured.NestedFieldNoCopy(out.Object, "status"); found {
		t.Error("converted run carries a status")
	}
}
