package gateway

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"

	"k8s.io/apiserver/pkg/authentication/user"
)

// Request-header authentication, as kcp is started with it
// (--requestheader-username-headers, -group-headers,
// -extra-headers-prefix): the gateway proves itself with its front-proxy
// client certificate and names the caller in these headers.
const (
	headerUser        = "X-Remote-User"
	headerGroup       = "X-Remote-Group"
	headerExtraPrefix = "X-Remote-Extra-"
)

// newKCPProxy passes requests on to kcp unchanged, under the caller's
// identity. Watches and log-like streams are flushed as they come.
func newKCPProxy(kcp *url.URL, kcpCAs *x509.CertPool, proxyCert tls.Certificate) *httputil.ReverseProxy {
	transport := &http.Transport{
		Proxy:               nil,
		TLSClientConfig:     &tls.Config{RootCAs: kcpCAs, Certificates: []tls.Certificate{proxyCert}, MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: 100,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
	}
	return &httputil.ReverseProxy{
		Transport:     transport,
		FlushInterval: -1,
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(kcp)
			pr.Out.Host = kcp.Host
			u, _ := pr.In.Context().Value(callerKey{}).(user.Info)
			setCaller(pr.Out.Header, u)
			if rest, _ := pr.In.Context().Value(restKey{}).(string); isCoreDiscovery(rest) {
				prepareDiscovery(pr.Out)
			}
		},
		ModifyResponse: func(resp *http.Response) error {
			if fallback, ok := resp.Request.Context().Value(notFoundKey{}).(func(*http.Response) error); ok && resp.StatusCode == http.StatusNotFound {
				return fallback(resp)
			}
			if rest, _ := resp.Request.Context().Value(restKey{}).(string); isCoreDiscovery(rest) {
				return amendDiscovery(resp)
			}
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			writeError(w, statusFor(http.StatusBadGateway, "kcp does not answer: "+err.Error()))
		},
	}
}

type (
	callerKey struct{}
	restKey   struct{}
)

// setCaller replaces every credential and identity header of the client
// with the caller's identity as the gateway established it: a client can
// never name itself to kcp.
func setCaller(h http.Header, u user.Info) {
	h.Del("Authorization")
	for k := range h {
		if strings.HasPrefix(strings.ToLower(k), "x-remote-") {
			h.Del(k)
		}
	}
	if u == nil {
		return
	}
	h.Set(headerUser, u.GetName())
	for _, g := range u.GetGroups() {
		h.Add(headerGroup, g)
	}
	for k, vs := range u.GetExtra() {
		for _, v := range vs {
			h.Add(headerExtraPrefix+url.PathEscape(k), v)
		}
	}
}
