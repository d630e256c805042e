package metrics

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestWritesWaitTheirTurn: no more than n writes reach the server at once,
// reads are never held back, and the waits are recorded.
func TestWritesWaitTheirTurn(t *testing.T) {
	release := make(chan struct{})
	var inFlight, most atomic.Int32
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			return
		}
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		<-release
	}))
	defer server.Close()
	m := New(Options{})
	client := &http.Client{Transport: m.LimitWrites("kcp", 2)(m.WrapTransport("kcp")(http.DefaultTransport))}

	var wg sync.WaitGroup
	for range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := client.Post(server.URL+"/apis/tekton.dev/v1/namespaces/default/taskruns", "application/json", nil)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
		}()
	}
	deadline := time.Now().Add(5 * time.Second)
	for inFlight.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	resp, err := client.Get(server.URL + "/apis/tekton.dev/v1/namespaces/default/taskruns")
	if err != nil {
		t.Fatalf("a read behind blocked writes: %v", err)
	}
	resp.Body.Close()
	time.Sleep(50 * time.Millisecond)
	close(release)
	wg.Wait()

	if got := most.Load(); got != 2 {
		t.Errorf("at most %d writes were in flight, want 2", got)
	}
	families, err := m.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var waits uint64
	for _, f := range families {
		if f.GetName() == "pipelines_service_client_write_wait_seconds" {
			waits = f.GetMetric()[0].GetHistogram().GetSampleCount()
		}
	}
	if waits != 5 {
		t.Errorf("%d write waits recorded, want 5", waits)
	}
	var waited int
	for _, s := range m.trace.since(time.Time{}) {
		if s.Verb == http.MethodPost && s.Wait > 0.04 {
			waited++
		}
	}
	if waited < 3 {
		t.Errorf("%d traced writes show their wait, want the 3 held back", waited)
	}
}
