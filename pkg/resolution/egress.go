package resolution

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Egress is the platform's rule for where resolvers may connect: a
// tenant names the URL, the platform decides whether it may be fetched.
//
// Two checks guard every fetch. Before any I/O the URL's host:port must
// be on Allowed (an exact entry: a name a tenant controls, through a
// wildcard, could point anywhere). Then, when the connection is dialled,
// the address actually connected to must not lie in a denied network
// (loopback, link-local, the node, pod and service networks) unless it is
// itself an allowed IP:port: this catches what a name check cannot, a
// name that resolves, or re-resolves between check and connect, to an
// internal address.
type Egress struct {
	// Allowed are host:port entries, e.g. "10.244.0.1:3000" or
	// "github.com:443".
	Allowed []string
	// Denied are networks never connected to, besides loopback,
	// link-local and unspecified addresses, which are always denied.
	Denied []netip.Prefix
}

// HostNotAllowedError says a tenant asked for a host the platform does
// not allow; runs fail with ReasonHostNotAllowed.
type HostNotAllowedError struct {
	Resolver string
	Host     string
	Allowed  []string
}

func (e *HostNotAllowedError) Error() string {
	allowed := "none"
	if len(e.Allowed) > 0 {
		allowed = strings.Join(e.Allowed, ", ")
	}
	return fmt.Sprintf("%s resolver: host %q is not allowed by the platform (allowed: %s)", e.Resolver, e.Host, allowed)
}

// ReasonHostNotAllowed is the reason of a run whose reference names a
// host outside the platform's allow-list.
const ReasonHostNotAllowed = "ResolutionHostNotAllowed"

// CheckURL says whether raw, an http or https URL, may be fetched.
func (e Egress) CheckURL(resolver, raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%s resolver: invalid URL %q: %w", resolver, raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%s resolver: URL %q: only http and https are served", resolver, raw)
	}
	if u.User != nil {
		return fmt.Errorf("%s resolver: URL %q: credentials in the URL are not accepted, use a secret", resolver, u.Redacted())
	}
	return e.CheckHost(resolver, hostPort(u))
}

// CheckHost says whether host:port may be connected to.
func (e Egress) CheckHost(resolver, hostport string) error {
	if !slices.Contains(e.Allowed, normalise(hostport)) {
		return &HostNotAllowedError{Resolver: resolver, Host: hostport, Allowed: e.Allowed}
	}
	return nil
}

// hostPort is u's host:port, the port made explicit.
func hostPort(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	return net.JoinHostPort(u.Hostname(), port)
}

func normalise(hostport string) string {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return strings.ToLower(hostport)
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if ip, err := netip.ParseAddr(host); err == nil {
		host = ip.Unmap().String()
	}
	return net.JoinHostPort(host, port)
}

// errDeniedAddress is returned by the dialer for a denied address.
var errDeniedAddress = errors.New("address denied by the platform")

// control checks, at connect time, the address a connection goes to.
func (e Egress) control(resolver string) func(network, address string, _ syscall.RawConn) error {
	return func(_, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("%w: %s", errDeniedAddress, address)
		}
		ip := ap.Addr().Unmap()
		if slices.Contains(e.Allowed, netip.AddrPortFrom(ip, ap.Port()).String()) {
			return nil // an IP the platform allows by address, e.g. the forge
		}
		if ip.IsLoopback() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() || ip.IsUnspecified() || ip.IsMulticast() {
			return &HostNotAllowedError{Resolver: resolver, Host: address, Allowed: e.Allowed}
		}
		for _, p := range e.Denied {
			if p.Contains(ip) {
				return &HostNotAllowedError{Resolver: resolver, Host: address, Allowed: e.Allowed}
			}
		}
		return nil
	}
}

// DialContext dials through the connect-time check.
func (e Egress) DialContext(resolver string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{Timeout: 10 * time.Second, Control: e.control(resolver)}
	return d.DialContext
}

// Transport is an HTTP transport for resolver fetches: no proxy from the
// environment, connections checked when dialled.
func (e Egress) Transport(resolver string) *http.Transport {
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           e.DialContext(resolver),
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		MaxIdleConnsPerHost:   2,
		IdleConnTimeout:       30 * time.Second,
	}
}

// Client is an HTTP client over Transport that checks every redirect
// against the allow-list too.
func (e Egress) Client(resolver string, timeout time.Duration) *http.Client {
	return &http.Client{
		Transport: e.Transport(resolver),
		Timeout:   timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 5 {
				return errors.New("stopped after 5 redirects")
			}
			return e.CheckURL(resolver, req.URL.String())
		},
	}
}
