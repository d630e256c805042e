package reconciler

import (
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Timings accumulate how long named operations take (reconciles per
// controller, API requests per server and verb), to show where a
// controller's time goes. Safe for concurrent use; nil ignores everything.
type Timings struct {
	mu    sync.Mutex
	items map[string]*Timing
}

// Timing is the count, total and maximum duration of one operation.
type Timing struct {
	Name    string  `json:"name"`
	Count   int     `json:"count"`
	TotalMS float64 `json:"totalMs"`
	MeanMS  float64 `json:"meanMs"`
	MaxMS   float64 `json:"maxMs"`
}

// NewTimings makes empty Timings.
func NewTimings() *Timings { return &Timings{items: map[string]*Timing{}} }

// Observe adds one duration of name.
func (t *Timings) Observe(name string, d time.Duration) {
	if t == nil {
		return
	}
	ms := float64(d) / float64(time.Millisecond)
	t.mu.Lock()
	defer t.mu.Unlock()
	item, ok := t.items[name]
	if !ok {
		item = &Timing{Name: name}
		t.items[name] = item
	}
	item.Count++
	item.TotalMS += ms
	if ms > item.MaxMS {
		item.MaxMS = ms
	}
}

// Snapshot lists the timings, the largest total first.
func (t *Timings) Snapshot() []Timing {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]Timing, 0, len(t.items))
	for _, item := range t.items {
		c := *item
		c.MeanMS = c.TotalMS / float64(c.Count)
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].TotalMS > out[j].TotalMS })
	return out
}

// WrapTransport times every request but watches as "<server> <verb>
// <resource>[/<subresource>]" (the apiserver's own labels, so that the two
// sides of a request compare), for rest.Config.WrapTransport.
func (t *Timings) WrapTransport(server string) func(http.RoundTripper) http.RoundTripper {
	return func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(req *http.Request) (*http.Response, error) {
			if req.URL.Query().Get("watch") == "true" {
				return rt.RoundTrip(req)
			}
			start := time.Now()
			resp, err := rt.RoundTrip(req)
			name := server + " " + req.Method
			if r := resourceOf(req.URL.Path); r != "" {
				name += " " + r
			}
			t.Observe(name, time.Since(start))
			return resp, err
		})
	}
}

// resourceOf is the resource (and subresource) of an API path, through a
// virtual workspace or a /clusters/<name> prefix or not: "taskruns",
// "taskruns/status", "namespaces"; "" for a path that names none.
func resourceOf(path string) string {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	i := slices.IndexFunc(parts, func(p string) bool { return p == "api" || p == "apis" })
	if i < 0 {
		return ""
	}
	if parts[i] == "api" {
		i += 2 // api/v1
	} else {
		i += 3 // apis/<group>/<version>
	}
	if i > len(parts) {
		return ""
	}
	rest := parts[i:]
	if len(rest) > 2 && rest[0] == "namespaces" {
		rest = rest[2:] // namespaces/<ns>/<resource>/...
	}
	switch len(rest) {
	case 0:
		return ""
	case 1, 2:
		return rest[0]
	}
	return rest[0] + "/" + rest[2]
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }
