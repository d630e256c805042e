package metrics

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"time"
)

// Span is one reconcile, or one API request and the reconcile that made it:
// a step on an object's way from creation to its pod. Requests made outside
// a reconcile (events, leases, informers' lists) have no key.
type Span struct {
	Start   time.Time `json:"start"`
	Seconds float64   `json:"seconds"`
	// Wait is how long a request waited in the controller for its turn
	// (LimitWrites) before Start.
	Wait float64 `json:"waitSeconds,omitempty"`
	// Controller and Key name the reconcile (the key is cluster-aware:
	// workspace|namespace/name).
	Controller string `json:"controller,omitempty"`
	Key        string `json:"key,omitempty"`
	// Server, Verb, Resource and Code describe a request; all empty for
	// the reconcile's own span.
	Server   string `json:"server,omitempty"`
	Verb     string `json:"verb,omitempty"`
	Resource string `json:"resource,omitempty"`
	Code     string `json:"code,omitempty"`
}

// traceSpans is how many spans the trace keeps: a minute or two of a
// benchmark's busiest load (about 60 spans a second).
const traceSpans = 8192

// trace keeps the last traceSpans spans, oldest overwritten first.
type trace struct {
	mu    sync.Mutex
	spans []Span
	next  int
	full  bool
}

func (t *trace) add(s Span) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.spans == nil {
		t.spans = make([]Span, traceSpans)
	}
	t.spans[t.next] = s
	t.next = (t.next + 1) % len(t.spans)
	t.full = t.full || t.next == 0
}

// since returns the spans that started at or after from, oldest first.
func (t *trace) since(from time.Time) []Span {
	t.mu.Lock()
	defer t.mu.Unlock()
	ordered := t.spans[:t.next]
	if t.full {
		ordered = append(append([]Span(nil), t.spans[t.next:]...), t.spans[:t.next]...)
	}
	out := []Span{}
	for _, s := range ordered {
		if !s.Start.Before(from) {
			out = append(out, s)
		}
	}
	return out
}

type reconcileKey struct{}

type reconcileOf struct{ controller, key string }

// WithReconcile marks ctx as that of controller's reconcile of key: the
// requests made with it are traced under that key.
func WithReconcile(ctx context.Context, controller, key string) context.Context {
	return context.WithValue(ctx, reconcileKey{}, reconcileOf{controller, key})
}

func reconcileFrom(ctx context.Context) reconcileOf {
	r, _ := ctx.Value(reconcileKey{}).(reconcileOf)
	return r
}

// TraceHandler serves the spans that started at or after ?since (RFC 3339,
// default: all kept) as JSON, oldest first.
func (m *Metrics) TraceHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var from time.Time
		if s := r.URL.Query().Get("since"); s != "" {
			var err error
			if from, err = time.Parse(time.RFC3339Nano, s); err != nil {
				http.Error(w, "since: "+err.Error(), http.StatusBadRequest)
				return
			}
		}
		var spans []Span
		if m != nil {
			spans = m.trace.since(from)
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(spans)
	})
}
