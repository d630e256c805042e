package resolution

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"os"
	"strconv"
	"time"

	"go.uber.org/zap"
)

// gitProxy is the only way out for the git processes upstream's clone
// mode runs: git is told to use it as its HTTP proxy, and it forwards a
// request or a CONNECT only to an allowed host, dialled through the
// connect-time check. So git, which the controller cannot hand a dialer,
// is held to the same rules as every other fetch. It listens on loopback
// and asks for a secret, so that nothing else uses it.
type gitProxy struct {
	egress Egress
	secret string
	addr   string
	log    *zap.SugaredLogger
}

const gitProxyUser = "resolver"

// startGitProxy listens on a random loopback port until ctx ends.
func startGitProxy(ctx context.Context, log *zap.SugaredLogger, egress Egress) (*gitProxy, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &gitProxy{egress: egress, secret: hex.EncodeToString(b), addr: ln.Addr().String(), log: log}
	srv := &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	return p, nil
}

// URL is the proxy's URL with its credentials, for git's http.proxy.
func (p *gitProxy) URL() string {
	return "http://" + gitProxyUser + ":" + p.secret + "@" + p.addr
}

func (p *gitProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte(gitProxyUser+":"+p.secret))
	if subtle.ConstantTimeCompare([]byte(r.Header.Get("Proxy-Authorization")), []byte(want)) != 1 {
		w.Header().Set("Proxy-Authenticate", `Basic realm="resolver"`)
		http.Error(w, "proxy authentication required", http.StatusProxyAuthRequired)
		return
	}
	r.Header.Del("Proxy-Authorization")
	if r.Method == http.MethodConnect {
		p.connect(w, r)
		return
	}
	if r.URL.Scheme != "http" || r.URL.Host == "" {
		http.Error(w, "only absolute http URLs are proxied", http.StatusBadRequest)
		return
	}
	if err := p.egress.CheckURL("git", r.URL.String()); err != nil {
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	}
	rp := &httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.Out.URL = pr.In.URL; pr.Out.Host = pr.In.Host },
		Transport: p.egress.Transport("git"),
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			http.Error(w, err.Error(), http.StatusBadGateway)
		},
	}
	rp.ServeHTTP(w, r)
}

// connect tunnels to an allowed host (git over https).
func (p *gitProxy) connect(w http.ResponseWriter, r *http.Request) {
	host, port, err := net.SplitHostPort(r.Host)
	if err != nil {
		http.Error(w, "CONNECT needs host:port", http.StatusBadRequest)
		return
	}
	if _, err := strconv.Atoi(port); err != nil {
		http.Error(w, "bad port", http.StatusBadRequest)
		return
	}
	if err := p.egress.CheckHost("git", net.JoinHostPort(host, port)); err != nil {
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	}
	upstream, err := p.egress.DialContext("git")(r.Context(), "tcp", r.Host)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		_ = upstream.Close()
		http.Error(w, "cannot tunnel", http.StatusInternalServerError)
		return
	}
	client, buf, err := hj.Hijack()
	if err != nil {
		_ = upstream.Close()
		return
	}
	_, _ = fmt.Fprint(client, "HTTP/1.1 200 Connection established\r\n\r\n")
	go func() {
		defer upstream.Close()
		defer client.Close()
		go func() { _, _ = io.Copy(upstream, buf) }()
		_, _ = io.Copy(client, upstream)
	}()
}

// gitEnvironment is the environment every git process of the controller
// inherits (upstream's clone mode runs git with the process's
// environment): no system or user configuration, no prompts or
// credential helpers, only http and https, no redirects, symlinks checked
// out as plain files (a committed symlink must not make the controller
// read its own files), and every connection through the proxy.
func gitEnvironment(proxyURL string) map[string]string {
	config := [][2]string{
		{"protocol.allow", "never"},
		{"protocol.http.allow", "always"},
		{"protocol.https.allow", "always"},
		{"http.followRedirects", "false"},
		{"credential.helper", ""},
		{"core.symlinks", "false"},
		{"core.hooksPath", os.DevNull},
		{"http.proxy", proxyURL},
	}
	env := map[string]string{
		"GIT_CONFIG_NOSYSTEM": "1",
		"GIT_CONFIG_GLOBAL":   os.DevNull,
		"GIT_TERMINAL_PROMPT": "0",
		"GIT_ASKPASS":         "/bin/false",
		"GIT_ALLOW_PROTOCOL":  "http:https",
		"GIT_CONFIG_COUNT":    strconv.Itoa(len(config)),
	}
	for i, kv := range config {
		env["GIT_CONFIG_KEY_"+strconv.Itoa(i)] = kv[0]
		env["GIT_CONFIG_VALUE_"+strconv.Itoa(i)] = kv[1]
	}
	return env
}
