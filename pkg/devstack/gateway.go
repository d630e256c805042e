package devstack

import (
	"context"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/kcp-dev/logicalcluster/v3"

	"github.com/pipelines-service/pipelines-service/pkg/provider"
)

// The gateway is the tenants' front door (cmd/gateway): tenant
// kubeconfigs point at it, and it passes requests on to kcp with
// request-header authentication.
const (
	GatewayPort         = 8443
	GatewayDebugAddress = "127.0.0.1:6062"
	// gatewayProxyName is the common name of the gateway's front-proxy
	// client certificate: the one name kcp takes request headers from.
	gatewayProxyName = "pipelines-service-gateway-proxy"
)

// PipelinesAsCodeAddress is where the controller's Pipelines as Code
// intake listens; the gateway passes /pac on to it.
const PipelinesAsCodeAddress = "127.0.0.1:8097"

// PipelinesAsCodeURL is the one webhook URL of every tenant's
// Repositories: the gateway's /pac.
func (c Config) PipelinesAsCodeURL() string { return c.GatewayURL() + "/pac" }

// GatewayURL is the gateway's base URL.
func (c Config) GatewayURL() string {
	return "https://" + net.JoinHostPort(c.HostIP.String(), strconv.Itoa(GatewayPort))
}

// frontProxyCA signs the certificates kcp trusts to name a caller in
// request headers (--requestheader-client-ca-file).
func (c Config) frontProxyCA() (*certAuthority, error) {
	return loadOrCreateCA(c.Path("front-proxy-pki"), "pipelines-service-front-proxy-ca")
}

// gatewayCA signs the gateway's serving certificate; tenant kubeconfigs
// trust it.
func (c Config) gatewayCA() (*certAuthority, error) {
	return loadOrCreateCA(c.Path("gateway-pki"), "pipelines-service-gateway-ca")
}

// requestHeaderArgs are kcp's flags for request-header authentication.
func (c Config) requestHeaderArgs() []string {
	caFile, _ := (&certAuthority{dir: c.Path("front-proxy-pki")}).files("ca")
	return []string{
		"--requestheader-client-ca-file=" + caFile,
		"--requestheader-allowed-names=" + gatewayProxyName + "," + frontProxyName,
		"--requestheader-username-headers=X-Remote-User",
		"--requestheader-group-headers=X-Remote-Group",
		"--requestheader-extra-headers-prefix=X-Remote-Extra-",
	}
}

func (c Config) gatewayBinary() string { return c.Path("bin", "gateway") }

func (c Config) gatewayProcess(buildID string) *process {
	dir := c.Path("gateway")
	servingCert, servingKey := (&certAuthority{dir: c.Path("gateway-pki")}).files("serving")
	proxyCert, proxyKey := (&certAuthority{dir: c.Path("front-proxy-pki")}).files("gateway-proxy")
	clientCA, _ := (&certAuthority{dir: c.Path("kcp-pki")}).files("ca")
	p := c.newProcess("gateway", c.gatewayBinary(),
		"--listen="+net.JoinHostPort(c.HostIP.String(), strconv.Itoa(GatewayPort)),
		"--debug-listen="+GatewayDebugAddress,
		"--tls-cert-file="+servingCert, "--tls-private-key-file="+servingKey,
		"--client-ca-file="+clientCA,
		"--kcp-url="+c.FrontProxyURL(),
		"--kcp-ca-file="+dir+"/kcp-ca.crt",
		"--proxy-client-cert-file="+proxyCert, "--proxy-client-key-file="+proxyKey,
		"--kubeconfig="+dir+"/kcp.kubeconfig",
		"--provider-workspace="+providerPath().String(),
		"--results-url="+c.ResultsURL(),
		"--triggers-sink-url="+c.TriggersSinkURL(),
		"--pipelines-as-code-url=http://"+PipelinesAsCodeAddress)
	p.env = []string{"PIPELINES_SERVICE_BUILD=" + buildID}
	p.ports = []string{net.JoinHostPort(c.HostIP.String(), strconv.Itoa(GatewayPort)), GatewayDebugAddress}
	return p
}

// startGateway issues the gateway's certificates and identity, builds it
// from the checkout and (re)starts it when the binary changed, then waits
// until it serves.
func (s *Stack) startGateway(ctx context.Context) error {
	c := s.cfg
	if err := c.gatewayCredentials(); err != nil {
		return componentErr("gateway", c.LogFile("gateway"), err)
	}
	if err := s.writeKCPUserKubeconfig(c.Path("gateway", "kcp.kubeconfig"), provider.GatewayUser, logicalcluster.Path{}); err != nil {
		return err
	}
	buildID, err := c.checkoutBuildID(ctx, c.gatewayBinary())
	if err != nil {
		return err
	}
	p := c.gatewayProcess(buildID)
	if err := p.start(); err != nil {
		return err
	}
	return p.waitFor(ctx, 60*time.Second, "serving", func(ctx context.Context) error {
		return answersOK(ctx, http.DefaultClient, http.MethodGet, "http://"+GatewayDebugAddress+"/readyz")
	})
}

// gatewayCredentials writes the gateway's serving certificate, its
// front-proxy client certificate and kcp's serving CA.
func (c Config) gatewayCredentials() error {
	ca, err := c.gatewayCA()
	if err != nil {
		return err
	}
	if _, _, err := ca.ensure(certSpec{name: "serving", commonName: "pipelines-service-gateway", server: true,
		dnsNames: []string{"localhost"}, ips: []net.IP{c.HostIP, net.ParseIP("127.0.0.1")}}); err != nil {
		return err
	}
	fp, err := c.frontProxyCA()
	if err != nil {
		return err
	}
	if _, _, err := fp.ensure(certSpec{name: "gateway-proxy", commonName: gatewayProxyName, client: true}); err != nil {
		return err
	}
	// The gateway forwards tenants to kcp's front-proxy, whose certificate
	// the shards' serving CA signs.
	kcpCA, err := os.ReadFile(c.KCPServingCAFile())
	if err != nil {
		return err
	}
	return writeFile(c.Path("gateway", "kcp-ca.crt"), string(kcpCA))
}

// writeTenantKubeconfig writes a kubeconfig for a tenant user (a client
// certificate of kcp's client CA) pointing at the gateway, in workspace.
func (s *Stack) writeTenantKubeconfig(path, user string, workspace logicalcluster.Path) error {
	gatewayCA, _ := (&certAuthority{dir: s.cfg.Path("gateway-pki")}).files("ca")
	return s.cfg.writeUserKubeconfig(path, user, s.cfg.GatewayURL()+workspace.RequestPath(), gatewayCA)
}

// UserKubeconfig writes (and returns the path of) a kubeconfig for any
// kcp user, by client certificate, pointing at the gateway in workspace:
// the e2e tests' other tenants and users without roles.
func (s *Stack) UserKubeconfig(user string, workspace logicalcluster.Path) (string, error) {
	path := s.cfg.Path("users", user+"@"+strings.ReplaceAll(workspace.String(), ":", "_")+".kubeconfig")
	return path, s.writeTenantKubeconfig(path, user, workspace)
}

// StopGateway stops the gateway by PID (until StartGateway or Up).
func (s *Stack) StopGateway() error { return s.cfg.gatewayProcess("").stop(20 * time.Second) }

// StartGateway starts the gateway again and waits until it serves.
func (s *Stack) StartGateway(ctx context.Context) error { return s.startGateway(ctx) }
