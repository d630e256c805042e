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
// listener's own secret. Client credentials and identity headers never
// reach the sink, and the body is capped.
func newHooksProxy(sink *url.URL) http.Handler {
	proxy := &httputil.ReverseProxy{
		Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 100, IdleConnTimeout: 90 * time.Second},
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(sink)
			pr.SetXForwarded()
			pr.Out.Header.Del("Authorization")
			for k := range pr.Out.Header {
				if strings.HasPrefix(strings.ToLower(k), "x-remote-") {
					pr.Out.Header.Del(k)
				}
			}
		},
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			writeError(w, statusFor(http.StatusBadGateway, "the triggers sink does not answer: "+err.Error()))
		},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, triggers.MaxPayload)
		proxy.ServeHTTP(w, r)
	})
}
