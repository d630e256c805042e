package gateway

import (
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"

	"github.com/pipelines-service/pipelines-service/pkg/triggers"
)

// newHooksProxy passes events for EventListeners on to the triggers sink.
// Forges post without credentials, so this path is served before
// authentication; the sink verifies each payload's signature with the
// listener's own secret.
func newHooksProxy(sink *url.URL) http.Handler {
	return newWebhookProxy(sink, triggers.MaxPayload, "the triggers sink")
}

// newWebhookProxy passes unauthenticated webhook deliveries on to target
// (the triggers sink, the Pipelines as Code intake), without the client's
// credentials or identity headers, the body capped at maxPayload.
func newWebhookProxy(target *url.URL, maxPayload int64, name string) http.Handler {
	proxy := &httputil.ReverseProxy{
		Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 100, IdleConnTimeout: 90 * time.Second},
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.SetXForwarded()
			pr.Out.Header.Del("Authorization")
			for k := range pr.Out.Header {
				if strings.HasPrefix(strings.ToLower(k), "x-remote-") {
					pr.Out.Header.Del(k)
				}
			}
		},
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			writeError(w, statusFor(http.StatusBadGateway, name+" does not answer: "+err.Error()))
		},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxPayload)
		proxy.ServeHTTP(w, r)
	})
}
