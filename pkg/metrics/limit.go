package metrics

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type waitKey struct{}

// waitOf is how long a request waited for its turn in this process
// (LimitWrites) before it was sent.
func waitOf(ctx context.Context) time.Duration {
	d, _ := ctx.Value(waitKey{}).(time.Duration)
	return d
}

// LimitWrites lets at most n writes (POST, PUT, PATCH, DELETE) to server
// be in flight at once; the others wait their turn here. Wrap it around
// WrapTransport(server), so that a request's recorded time is the
// server's and its wait is recorded apart (the span's wait, and
// pipelines_service_client_write_wait_seconds). n < 1 lets all through.
//
// kcp serves the writes in flight side by side, each slowing every other:
// with dozens in flight a lone Lease renewal took more than the 6 s the
// leader election allows it (README, Benchmarks).
func (m *Metrics) LimitWrites(server string, n int) func(http.RoundTripper) http.RoundTripper {
	return func(rt http.RoundTripper) http.RoundTripper {
		if n < 1 {
			return rt
		}
		slots := make(chan struct{}, n)
		return roundTripFunc(func(req *http.Request) (*http.Response, error) {
			switch req.Method {
			case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
			default:
				return rt.RoundTrip(req)
			}
			start := time.Now()
			select {
			case slots <- struct{}{}:
			case <-req.Context().Done():
				return nil, req.Context().Err()
			}
			defer func() { <-slots }()
			wait := time.Since(start)
			if m != nil {
				m.writeWaits.WithLabelValues(server).Observe(wait.Seconds())
			}
			return rt.RoundTrip(req.WithContext(context.WithValue(req.Context(), waitKey{}, wait)))
		})
	}
}

func newWriteWaits() *prometheus.HistogramVec {
	return prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "pipelines_service_client_write_wait_seconds",
		Help:    "Time a write waited in the controller for one of the server's in-flight slots before it was sent (kcpWritesInFlight).",
		Buckets: latencyBuckets,
	}, []string{"server"})
}
