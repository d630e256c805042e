package controller

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/pprof"
	runtimepprof "runtime/pprof"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/pipelines-service/pipelines-service/pkg/fleet"
	"github.com/pipelines-service/pipelines-service/pkg/metrics"
	"github.com/pipelines-service/pipelines-service/pkg/partition"
)

// debugServer serves /readyz (200 once the informers have synced),
// /metrics (Prometheus: Tekton's run metrics, work queues, reconciles,
// requests per server, admission), Go's profiles under /debug/pprof/, and
// a CPU profile spanning a benchmark (/debug/cpuprofile/start,
// /debug/cpuprofile/stop), and the TaskRuns the
// fleet admitted or keeps waiting (/debug/admission), and the policies and
// cluster limits the fleet acts on (/debug/fleet), on a local address.
type debugServer struct {
	ready atomic.Bool
	// metrics are served at /metrics.
	metrics *metrics.Metrics
	// fleet serves its admission state at /debug/admission, and the
	// policies and limits it acts on at /debug/fleet.
	fleet atomic.Pointer[fleet.Fleet]
	// parts serves this replica's parts at /debug/parts.
	parts atomic.Pointer[partition.Partition]

	mu      sync.Mutex
	profile *bytes.Buffer
}

// startProfile starts a CPU profile that runs until stopProfile (for
// benchmarks: the profile covers exactly the measured run).
func (d *debugServer) startProfile(w http.ResponseWriter, _ *http.Request) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.profile != nil {
		http.Error(w, "a CPU profile is already running", http.StatusConflict)
		return
	}
	buf := &bytes.Buffer{}
	if err := runtimepprof.StartCPUProfile(buf); err != nil {
		http.Error(w, err.Error(), http.StatusConflict)
		return
	}
	d.profile = buf
}

// stopProfile ends the CPU profile and returns it (pprof format).
func (d *debugServer) stopProfile(w http.ResponseWriter, _ *http.Request) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.profile == nil {
		http.Error(w, "no CPU profile is running", http.StatusConflict)
		return
	}
	runtimepprof.StopCPUProfile()
	w.Header().Set("Content-Type", "application/octet-stream")
	_, _ = w.Write(d.profile.Bytes())
	d.profile = nil
}

// serveFleet serves what view reads from the fleet, as JSON.
func (d *debugServer) serveFleet(view func(*fleet.Fleet) any) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		f := d.fleet.Load()
		if f == nil {
			http.Error(w, "the fleet has not started yet", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(view(f))
	}
}

// serve serves on address /readyz and /metrics, and with debug the rest:
// profiles and the fleet's state are for the operator on the host only.
func (d *debugServer) serve(ctx context.Context, log *zap.SugaredLogger, address string, debug bool) error {
	mux := http.NewServeMux()
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !d.ready.Load() {
			http.Error(w, "informers not synced yet", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok"))
	})
	mux.Handle("/metrics", d.metrics.Handler())
	if debug {
		d.debugHandlers(mux)
	}
	listener, err := net.Listen("tcp", address)
	if err != nil {
		return err
	}
	server := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		_ = server.Close()
	}()
	go func() {
		if err := server.Serve(listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Errorw("debug server stopped", "error", err)
		}
	}()
	log.Infow("serving /readyz and /metrics", "address", listener.Addr().String(), "debug", debug)
	return nil
}

// debugHandlers are the operator's: Go's profiles, a CPU profile spanning
// a benchmark, the fleet's admission and view, the trace of the last
// reconciles and their requests.
func (d *debugServer) debugHandlers(mux *http.ServeMux) {
	mux.HandleFunc("/debug/admission", d.serveFleet(func(f *fleet.Fleet) any { return f.Admission().State() }))
	mux.HandleFunc("/debug/fleet", d.serveFleet(func(f *fleet.Fleet) any { return f.View() }))
	mux.Handle("/debug/trace", d.metrics.TraceHandler())
	mux.HandleFunc("/debug/parts", func(w http.ResponseWriter, _ *http.Request) {
		p := d.parts.Load()
		if p == nil {
			http.Error(w, "the parts are not set up yet", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(p.State())
	})
	mux.HandleFunc("/debug/cpuprofile/start", d.startProfile)
	mux.HandleFunc("/debug/cpuprofile/stop", d.stopProfile)
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
}
