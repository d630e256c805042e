// Command gateway is the tenants' front door: kubectl and tkn point at it
// as at kcp. It authenticates clients as kcp does, passes their requests
// on to kcp under their own identity, and serves the pods and logs of
// their runs from the workload clusters. Replicas share nothing.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/kcp-dev/logicalcluster/v3"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/pipelines-service/pipelines-service/pkg/command"
	"github.com/pipelines-service/pipelines-service/pkg/gateway"
)

type flags struct {
	listen, debugListen           string
	servingCert, servingKey       string
	clientCA                      string
	kcpURL, kcpCA                 string
	proxyCert, proxyKey           string
	kubeconfig, providerWorkspace string
	resultsURL, triggersSinkURL   string
	pacURL                        string
}

func main() {
	var f flags
	flag.StringVar(&f.listen, "listen", ":8443", "address to serve tenants on (TLS)")
	flag.StringVar(&f.debugListen, "debug-listen", "127.0.0.1:6062", "address of /readyz and /healthz (plain HTTP)")
	flag.StringVar(&f.servingCert, "tls-cert-file", "", "serving certificate")
	flag.StringVar(&f.servingKey, "tls-private-key-file", "", "serving key")
	flag.StringVar(&f.clientCA, "client-ca-file", "", "kcp's client CA: client certificates it signed authenticate their holders")
	flag.StringVar(&f.kcpURL, "kcp-url", "", "kcp's URL (without /clusters)")
	flag.StringVar(&f.kcpCA, "kcp-ca-file", "", "CA of kcp's serving certificate")
	flag.StringVar(&f.proxyCert, "proxy-client-cert-file", "", "front-proxy client certificate kcp trusts for request headers")
	flag.StringVar(&f.proxyKey, "proxy-client-key-file", "", "front-proxy client key")
	flag.StringVar(&f.kubeconfig, "kubeconfig", "", "the gateway's own identity in kcp (base URL)")
	flag.StringVar(&f.providerWorkspace, "provider-workspace", "root:pipelines-service", "workspace holding the WorkloadClusters")
	flag.StringVar(&f.resultsURL, "results-url", "", "Tekton Results API's REST base URL, e.g. http://127.0.0.1:8088 (empty: Results not served)")
	flag.StringVar(&f.triggersSinkURL, "triggers-sink-url", "", "the triggers sink's URL, e.g. http://127.0.0.1:6071: EventListeners' paths (/hooks/…) go there (empty: not served)")
	flag.StringVar(&f.pacURL, "pipelines-as-code-url", "", "the Pipelines as Code intake's URL, e.g. http://127.0.0.1:8097: forges' events posted to /pac go there (empty: not served)")
	flag.Parse()

	command.Run("gateway", func(ctx context.Context, log *zap.SugaredLogger) error { return run(ctx, log, f) })
}

func run(ctx context.Context, log *zap.SugaredLogger, f flags) error {
	opts, err := options(f, log)
	if err != nil {
		return err
	}
	srv, err := gateway.New(opts)
	if err != nil {
		return err
	}
	if err := srv.Start(ctx); err != nil {
		return err
	}
	clientCAs := opts.ClientCAs
	tenants := &http.Server{
		Addr:              f.listen,
		Handler:           srv,
		ReadHeaderTimeout: 30 * time.Second,
		// A client certificate is asked for, and verified by the
		// authenticator; a client may present a token instead.
		TLSConfig: &tls.Config{ClientAuth: tls.RequestClientCert, ClientCAs: clientCAs, MinVersion: tls.VersionTLS12},
	}
	debug := &http.Server{Addr: f.debugListen, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok"))
	}), ReadHeaderTimeout: 10 * time.Second}

	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return ignoreClosed(tenants.ListenAndServeTLS(f.servingCert, f.servingKey)) })
	g.Go(func() error { return ignoreClosed(debug.ListenAndServe()) })
	g.Go(func() error {
		<-ctx.Done()
		// Requests finish for a few seconds; follows and watches last
		// longer and are cut then: their clients see the stream end with
		// an error, and come back to another replica.
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = debug.Shutdown(shutdown)
		if err := tenants.Shutdown(shutdown); err != nil {
			log.Infow("cutting the streams still open", "reason", err)
			return tenants.Close()
		}
		return nil
	})
	log.Infow("gateway serving", "listen", f.listen, "kcp", f.kcpURL)
	return g.Wait()
}

func ignoreClosed(err error) error {
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

func options(f flags, log *zap.SugaredLogger) (gateway.Options, error) {
	kcp, err := url.Parse(f.kcpURL)
	if err != nil || kcp.Host == "" {
		return gateway.Options{}, fmt.Errorf("--kcp-url %q: a URL such as https://kcp:6443", f.kcpURL)
	}
	kcpCAs, err := certPool(f.kcpCA)
	if err != nil {
		return gateway.Options{}, err
	}
	clientCAs, err := certPool(f.clientCA)
	if err != nil {
		return gateway.Options{}, err
	}
	proxyCert, err := tls.LoadX509KeyPair(f.proxyCert, f.proxyKey)
	if err != nil {
		return gateway.Options{}, fmt.Errorf("front-proxy client certificate: %w", err)
	}
	identity, err := clientcmd.BuildConfigFromFlags("", f.kubeconfig)
	if err != nil {
		return gateway.Options{}, fmt.Errorf("--kubeconfig: %w", err)
	}
	identity.QPS, identity.Burst = 50, 100
	provider := rest.CopyConfig(identity)
	provider.Host = identity.Host + logicalcluster.NewPath(f.providerWorkspace).RequestPath()
	opts := gateway.Options{KCP: kcp, KCPCAs: kcpCAs, ProxyCert: proxyCert, ClientCAs: clientCAs,
		Identity: identity, Provider: provider, Log: log}
	if f.resultsURL != "" {
		if opts.Results, err = url.Parse(f.resultsURL); err != nil || opts.Results.Host == "" {
			return opts, fmt.Errorf("--results-url %q: a URL such as http://127.0.0.1:8088", f.resultsURL)
		}
	}
	if f.triggersSinkURL != "" {
		if opts.TriggersSink, err = url.Parse(f.triggersSinkURL); err != nil || opts.TriggersSink.Host == "" {
			return opts, fmt.Errorf("--triggers-sink-url %q: a URL such as http://127.0.0.1:6071", f.triggersSinkURL)
		}
	}
	if f.pacURL != "" {
		if opts.PipelinesAsCode, err = url.Parse(f.pacURL); err != nil || opts.PipelinesAsCode.Host == "" {
			return opts, fmt.Errorf("--pipelines-as-code-url %q: a URL such as http://127.0.0.1:8097", f.pacURL)
		}
	}
	return opts, nil
}

func certPool(file string) (*x509.CertPool, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("%s holds no PEM certificate", file)
	}
	return pool, nil
}
