package resolution

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestCheckURL(t *testing.T) {
	e := Egress{Allowed: []string{"10.244.0.1:3000", "github.com:443"}}
	for _, tc := range []struct {
		url  string
		want string // "" allowed, else a part of the error
	}{
		{url: "http://10.244.0.1:3000/o/r.git"},
		{url: "https://github.com/tektoncd/catalog.git"},
		{url: "https://GitHub.com./tektoncd/catalog.git"},
		{url: "https://github.com:443/x"},
		{url: "http://github.com/x", want: `"github.com:80" is not allowed`},
		{url: "http://10.244.0.1:6443/x", want: "not allowed"},
		{url: "http://[::ffff:10.244.0.1]:3000/x"},
		{url: "http://127.0.0.1:6061/debug", want: "not allowed"},
		{url: "http://2130706433:6061/", want: "not allowed"},
		{url: "file:///etc/passwd", want: "only http and https"},
		{url: "/var/lib/x", want: "only http and https"},
		{url: "--upload-pack=touch /tmp/x@y", want: "only http and https"},
		{url: "ext::sh -c id", want: "only http and https"},
		{url: "http://user:secret@10.244.0.1:3000/x", want: "credentials in the URL"},
	} {
		t.Run(tc.url, func(t *testing.T) {
			err := e.CheckURL("git", tc.url)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("got %v, want an error with %q", err, tc.want)
			}
		})
	}
}

func TestDialDeniesInternalAddresses(t *testing.T) {
	e := Egress{Allowed: []string{"10.244.0.1:3000"}, Denied: []netip.Prefix{netip.MustParsePrefix("10.244.0.0/16")}}
	control := e.control("http")
	for _, tc := range []struct {
		addr  string
		allow bool
	}{
		{"10.244.0.1:3000", true},   // allowed by address
		{"10.244.0.1:6443", false},  // same host, another port
		{"10.244.3.2:10250", false}, // a kubelet
		{"127.0.0.1:8088", false},
		{"[::1]:443", false},
		{"[::ffff:127.0.0.1]:80", false},
		{"169.254.169.254:80", false},
		{"0.0.0.0:80", false},
		{"140.82.112.3:443", true}, // a public address a name resolved to
	} {
		err := control("tcp", tc.addr, nil)
		if (err == nil) != tc.allow {
			t.Errorf("%s: error %v, want allowed=%v", tc.addr, err, tc.allow)
		}
	}
}

// TestRedirectsAreChecked: an allowed server that redirects to an
// internal one is not followed there, and nothing connects to it.
func TestRedirectsAreChecked(t *testing.T) {
	hit := false
	internal := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hit = true }))
	defer internal.Close()
	allowed := httptest.NewServer(http.RedirectHandler(internal.URL+"/secret", http.StatusFound))
	defer allowed.Close()
	host := strings.TrimPrefix(allowed.URL, "http://")
	e := Egress{Allowed: []string{host}}
	resp, err := e.Client("http", 5*time.Second).Get(allowed.URL)
	if err == nil {
		resp.Body.Close()
		t.Fatal("the redirect to an unlisted host was followed")
	}
	if !IsHostNotAllowed(err) || hit {
		t.Fatalf("error %v (hit %v), want a refusal before any connection", err, hit)
	}
}

// TestRebindingIsCaughtAtDial: a listed name that resolves to loopback
// is refused when dialled.
func TestRebindingIsCaughtAtDial(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	e := Egress{Allowed: []string{"localhost:" + port}}
	if err := e.CheckURL("http", "http://localhost:"+port+"/"); err != nil {
		t.Fatalf("the name is listed: %v", err)
	}
	_, err = e.DialContext("http")(context.Background(), "tcp", "localhost:"+port)
	var refused *HostNotAllowedError
	if !errors.As(err, &refused) {
		t.Fatalf("dial of a listed name resolving to loopback: %v, want a refusal", err)
	}
}
