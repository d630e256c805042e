package metrics

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestRequestsAreTracedUnderTheirReconcile: a request made with a
// reconcile's context is traced under that reconcile's key, one made
// without under none, and the handler serves them oldest first from ?since.
func TestRequestsAreTracedUnderTheirReconcile(t *testing.T) {
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusCreated) }))
	defer server.Close()
	m := New(Options{})
	client := &http.Client{Transport: m.WrapTransport("kcp")(http.DefaultTransport)}
	begin := time.Now()

	ctx := WithReconcile(context.Background(), "TaskRun", "ws1|default/run-a")
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, server.URL+"/clusters/ws1/apis/tekton.dev/v1/namespaces/default/taskruns", nil)
	if _, err := client.Do(req); err != nil {
		t.Fatal(err)
	}
	m.TraceReconcile("TaskRun", "ws1|default/run-a", begin, time.Since(begin))
	req, _ = http.NewRequest(http.MethodPost, server.URL+"/api/v1/namespaces/default/events", nil)
	if _, err := client.Do(req); err != nil {
		t.Fatal(err)
	}

	rec := httptest.NewRecorder()
	m.TraceHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/debug/trace?since="+begin.Format(time.RFC3339Nano), nil))
	var spans []Span
	if err := json.Unmarshal(rec.Body.Bytes(), &spans); err != nil {
		t.Fatal(err)
	}
	if len(spans) != 3 {
		t.Fatalf("got %d spans, want 3: %+v", len(spans), spans)
	}
	if s := spans[0]; s.Key != "ws1|default/run-a" || s.Controller != "TaskRun" || s.Verb != "POST" || s.Resource != "taskruns" || s.Code != "201" || s.Server != "kcp" {
		t.Errorf("request span = %+v", s)
	}
	if s := spans[1]; s.Key != "ws1|default/run-a" || s.Verb != "" {
		t.Errorf("reconcile span = %+v", s)
	}
	if s := spans[2]; s.Key != "" || s.Resource != "events" {
		t.Errorf("request outside a reconcile = %+v", s)
	}

	rec = httptest.NewRecorder()
	m.TraceHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/debug/trace?since="+time.Now().Add(time.Hour).Format(time.RFC3339Nano), nil))
	if got := rec.Body.String(); got != "[]\n" {
		t.Errorf("spans from the future = %q, want []", got)
	}
	rec = httptest.NewRecorder()
	m.TraceHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/debug/trace?since=yesterday", nil))
	if rec.Code != http.StatusBadRequest {
		t.Errorf("a bad since got %d, want 400", rec.Code)
	}
}

// TestTraceKeepsTheLatest: past its size, the trace drops the oldest spans
// and still serves the rest in order.
func TestTraceKeepsTheLatest(t *testing.T) {
	var tr trace
	base := time.Now()
	for i := range traceSpans + 10 {
		tr.add(Span{Start: base.Add(time.Duration(i) * time.Millisecond)})
	}
	spans := tr.since(time.Time{})
	if len(spans) != traceSpans {
		t.Fatalf("kept %d spans, want %d", len(spans), traceSpans)
	}
	if !spans[0].Start.Equal(base.Add(10 * time.Millisecond)) {
		t.Errorf("oldest kept starts at +%s, want +10ms", spans[0].Start.Sub(base))
	}
	for i := 1; i < len(spans); i++ {
		if spans[i].Start.Before(spans[i-1].Start) {
			t.Fatalf("span %d is older than span %d", i, i-1)
		}
	}
}
