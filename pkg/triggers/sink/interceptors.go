package sink

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"
	"time"

	"github.com/tektoncd/triggers/pkg/interceptors"
	"github.com/tektoncd/triggers/pkg/interceptors/server"
	"go.uber.org/zap"

	"github.com/pipelines-service/pipelines-service/pkg/triggers"
)

// workspaceInterceptors are the interceptors of one workspace: the core
// ones, in process, reading only that workspace's secrets, and an HTTP
// client that reaches them, and beyond them only the addresses the
// platform allows (tenant Interceptors, webhook interceptors).
type workspaceInterceptors struct {
	core   *server.Server
	client *http.Client
}

// newWorkspaceInterceptors binds the core interceptors to the secrets of
// one workspace. Upstream's sink passes them context.Background(), so the
// workspace cannot travel in a context: it is in the getter itself.
func newWorkspaceInterceptors(secrets interceptors.SecretGetter, egress http.RoundTripper, log *zap.SugaredLogger) (*workspaceInterceptors, error) {
	core, err := server.NewWithCoreInterceptors(secrets, log)
	if err != nil {
		return nil, err
	}
	return &workspaceInterceptors{
		core:   core,
		client: &http.Client{Transport: inProcess{core: core, egress: egress}, Timeout: 10 * time.Second},
	}, nil
}

// inProcess answers requests for the core interceptors' reserved host with
// the core interceptors themselves, and sends every other request through
// egress.
type inProcess struct {
	core   *server.Server
	egress http.RoundTripper
}

func (t inProcess) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Host != triggers.CoreInterceptorHost {
		return t.egress.RoundTrip(req)
	}
	status, body := http.StatusOK, []byte(nil)
	out, err := t.core.ExecuteInterceptor(req)
	var herr server.Error
	switch {
	case errors.As(err, &herr):
		status, body = herr.Status(), []byte(herr.Error())
	case err != nil:
		status, body = http.StatusInternalServerError, []byte(err.Error())
	default:
		body = out
	}
	return &http.Response{
		StatusCode: status, Status: http.StatusText(status), Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{"Content-Type": []string{"application/json"}}, Body: io.NopCloser(bytes.NewReader(body)),
		ContentLength: int64(len(body)), Request: req,
	}, nil
}

// errEgressDenied is a connection the platform does not allow.
var errEgressDenied = errors.New("address not allowed for interceptors by the platform")

// newEgress is the transport for interceptors the tenant names by URL
// (Interceptor, ClusterInterceptor, webhook interceptors): it connects only
// to addresses in allowed. The check is at connect time, on the address
// actually dialled, so a name that resolves elsewhere later (DNS
// rebinding) gains nothing; no proxy is used.
func newEgress(allowed []*net.IPNet) http.RoundTripper {
	dialer := &net.Dialer{Timeout: 10 * time.Second, Control: func(_, address string, _ syscall.RawConn) error {
		host, _, err := net.SplitHostPort(address)
		if err != nil {
			return err
		}
		ip := net.ParseIP(host)
		for _, n := range allowed {
			if ip != nil && n.Contains(ip) {
				return nil
			}
		}
		return fmt.Errorf("%s: %w", address, errEgressDenied)
	}}
	return &http.Transport{
		Proxy:               nil,
		DialContext:         dialer.DialContext,
		TLSHandshakeTimeout: 10 * time.Second,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     90 * time.Second,
	}
}
