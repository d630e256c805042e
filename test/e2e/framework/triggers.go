package framework

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tektoncd/triggers/pkg/apis/triggers/v1beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"knative.dev/pkg/apis"

	"github.com/pipelines-service/pipelines-service/pkg/triggers"
)

// Apply applies YAML in the tenant's workspace with kubectl.
func (tn *Tenant) Apply(ctx context.Context, t testing.TB, yaml string) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "apply.yaml")
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, errOut, err := Kubectl(ctx, t, tn.Kubeconfig, "apply", "-f", file); err != nil {
		t.Fatalf("kubectl apply in %s: %v\n%s%s", tn.Name, err, out, errOut)
	}
}

// EventListener reads a listener of the tenant's workspace.
func (tn *Tenant) EventListener(ctx context.Context, t testing.TB, namespace, name string) (*v1beta1.EventListener, error) {
	t.Helper()
	client, err := dynamic.NewForConfig(tn.Rest)
	if err != nil {
		t.Fatal(err)
	}
	u, err := client.Resource(triggers.EventListeners).Namespace(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	el := &v1beta1.EventListener{}
	return el, runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, el)
}

// WaitEventListener waits until the listener's Ready condition is as
// wanted ("True", "False") with reason (any if empty), and returns it.
func (tn *Tenant) WaitEventListener(ctx context.Context, t testing.TB, namespace, name, status, reason string) *v1beta1.EventListener {
	t.Helper()
	var el *v1beta1.EventListener
	Eventually(t, time.Minute, "EventListener "+namespace+"/"+name+" Ready="+status+" "+reason, func() (bool, string, error) {
		var err error
		if el, err = tn.EventListener(ctx, t, namespace, name); err != nil {
			return false, err.Error(), nil
		}
		c := el.Status.GetCondition(apis.ConditionReady)
		if c == nil {
			return false, "no Ready condition", nil
		}
		return string(c.Status) == status && (reason == "" || c.Reason == reason), c.Reason + ": " + c.Message, nil
	})
	return el
}

// Event is the answer to an event POSTed to a listener.
type Event struct {
	Code int
	Body string
	// ID is the event's ID the sink assigned (202 only): the
	// triggers.tekton.dev/triggers-eventid label of what it created.
	ID string
}

// PostEvent POSTs body with headers to a listener's URL through the
// gateway, trusting the gateway's CA as the tenant's kubeconfig does, with
// no credentials (as a forge posts).
func (tn *Tenant) PostEvent(t testing.TB, url string, headers map[string]string, body []byte) Event {
	t.Helper()
	ev := send(t, tn.Rest, http.MethodPost, url, headers, body)
	var accepted struct {
		EventID string `json:"eventID"`
	}
	if json.Unmarshal([]byte(ev.Body), &accepted) == nil {
		ev.ID = accepted.EventID
	}
	return ev
}

// Request sends a request to the tenant's workspace (path below it) with
// only a bearer token as credentials.
func (tn *Tenant) Request(t testing.TB, method, path, token string, body []byte) Event {
	t.Helper()
	return RequestTo(t, tn.Rest, method, path, token, body)
}

// RequestTo sends a request to cfg's server (path below its host) with
// only a bearer token as credentials, trusting cfg's CA.
func RequestTo(t testing.TB, cfg *rest.Config, method, path, token string, body []byte) Event {
	t.Helper()
	return send(t, cfg, method, strings.TrimSuffix(cfg.Host, "/")+path,
		map[string]string{"Authorization": "Bearer " + token, "Content-Type": "application/json"}, body)
}

// send sends a request trusting cfg's CA, with headers as the only
// credentials.
func send(t testing.TB, cfg *rest.Config, method, url string, headers map[string]string, body []byte) Event {
	t.Helper()
	tlsConfig, err := rest.TLSConfigFor(&rest.Config{TLSClientConfig: rest.TLSClientConfig{CAData: cfg.CAData, CAFile: cfg.CAFile}})
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConfig}, Timeout: 30 * time.Second}
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return Event{Code: resp.StatusCode, Body: string(out)}
}

// GitHubSignature is the X-Hub-Signature-256 GitHub sends for body.
func GitHubSignature(secret string, body []byte) string {
	return "sha256=" + GiteaSignature(secret, body)
}

// GiteaSignature is the X-Gitea-Signature Gitea sends for body: the hex
// HMAC-SHA256 with the webhook's secret.
func GiteaSignature(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}
