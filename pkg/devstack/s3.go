package devstack

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"
)

// S3Logs points Tekton Results' log storage at an S3-compatible service
// instead of files in the state directory (LOGS_TYPE=S3). DefaultConfig
// reads it from PIPELINES_SERVICE_RESULTS_S3_ENDPOINT, _BUCKET, _REGION,
// _ACCESS_KEY_ID and _SECRET_ACCESS_KEY.
type S3Logs struct {
	Endpoint, Bucket, Region     string
	AccessKeyID, SecretAccessKey string
	// PathStyle addresses the bucket in the path, not the host name
	// (S3_HOSTNAME_IMMUTABLE), as most S3-compatible services need.
	PathStyle bool
	// CABundle, if set, is a PEM file of the CAs the service's
	// certificate is checked against (AWS_CA_BUNDLE of the API server).
	CABundle string
}

// s3LogsFromEnv is the S3 log storage the environment names, or nil
// (also _PATH_STYLE=false and _CA_BUNDLE, a PEM file).
func s3LogsFromEnv(getenv func(string) string) *S3Logs {
	endpoint := getenv("PIPELINES_SERVICE_RESULTS_S3_ENDPOINT")
	if endpoint == "" {
		return nil
	}
	return &S3Logs{
		Endpoint: endpoint, Bucket: getenv("PIPELINES_SERVICE_RESULTS_S3_BUCKET"), Region: getenv("PIPELINES_SERVICE_RESULTS_S3_REGION"),
		AccessKeyID: getenv("PIPELINES_SERVICE_RESULTS_S3_ACCESS_KEY_ID"), SecretAccessKey: getenv("PIPELINES_SERVICE_RESULTS_S3_SECRET_ACCESS_KEY"),
		PathStyle: getenv("PIPELINES_SERVICE_RESULTS_S3_PATH_STYLE") != "false",
		CABundle:  getenv("PIPELINES_SERVICE_RESULTS_S3_CA_BUNDLE"),
	}
}

// logsConfig is the Results API's log storage keys: files in the state
// directory, or S3.
func (c Config) logsConfig() [][2]string {
	if c.ResultsS3 == nil {
		return [][2]string{{"LOGS_TYPE", "File"}, {"LOGS_PATH", c.Path("results", resultsLogsInDir)},
			{"S3_BUCKET_NAME", ""}, {"S3_ENDPOINT", ""}, {"S3_HOSTNAME_IMMUTABLE", "false"}, {"S3_REGION", ""},
			{"S3_ACCESS_KEY_ID", ""}, {"S3_SECRET_ACCESS_KEY", ""}, {"S3_MULTI_PART_SIZE", "5242880"}}
	}
	s := c.ResultsS3
	return [][2]string{{"LOGS_TYPE", "S3"}, {"LOGS_PATH", "/logs"},
		{"S3_BUCKET_NAME", s.Bucket}, {"S3_ENDPOINT", s.Endpoint}, {"S3_HOSTNAME_IMMUTABLE", strconv.FormatBool(s.PathStyle)},
		{"S3_REGION", s.Region}, {"S3_ACCESS_KEY_ID", s.AccessKeyID}, {"S3_SECRET_ACCESS_KEY", s.SecretAccessKey},
		{"S3_MULTI_PART_SIZE", "5242880"}}
}

// SetResultsLogs restarts the Results API with its logs in s3 (nil: files
// in the state directory). Logs stored before stay where they were.
func (s *Stack) SetResultsLogs(ctx context.Context, s3 *S3Logs) error {
	s.cfg.ResultsS3 = s3
	if err := s.StopResultsAPI(); err != nil {
		return err
	}
	return s.cfg.startResultsAPI(ctx)
}

// The stack's own S3-compatible service, for the e2e test of S3 log
// storage: gofakes3 (third_party/s3, our TLS main around it), built on
// first use, on loopback, its buckets as files in the state directory.
const (
	S3Version = "v1.2.0"
	S3Port    = 19000
	S3Bucket  = "results-logs"
)

func (c Config) s3Build() goBuild {
	return goBuild{component: "s3", version: S3Version + "+" + c.ownSourceDigest("s3"), module: "s3", typical: 30 * time.Second,
		packages: []string{"github.com/pipelines-service/pipelines-service/third_party/s3/cmd/s3server"}}
}

// S3Dir is where the stack's S3 service keeps its buckets.
func (c Config) S3Dir() string { return c.Path("s3") }

// s3CA signs the S3 service's serving certificate; the Results API trusts
// it (AWS_CA_BUNDLE).
func (c Config) s3CA() (*certAuthority, error) {
	return loadOrCreateCA(c.Path("s3-pki"), "pipelines-service-s3-ca")
}

func (c Config) s3Process(cert, key string) *process {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(S3Port))
	p := c.newProcess("s3", c.binary(c.s3Build(), "s3server"), "-addr", addr, "-dir", c.S3Dir(),
		"-bucket", S3Bucket, "-tls-cert", cert, "-tls-key", key)
	p.ports = []string{addr}
	return p
}

// StartS3 builds the stack's S3 service on first use, starts it with the
// bucket S3Bucket and returns how Results reaches it. It accepts any
// credentials: it is the storage end of the test, not its security.
func (s *Stack) StartS3(ctx context.Context) (*S3Logs, error) {
	c := s.cfg
	if err := s.build(ctx, c.s3Build()); err != nil {
		return nil, err
	}
	ca, err := c.s3CA()
	if err != nil {
		return nil, err
	}
	cert, key, err := ca.ensure(certSpec{name: "serving", commonName: "pipelines-service-s3", server: true,
		dnsNames: []string{"localhost"}, ips: []net.IP{net.ParseIP("127.0.0.1")}})
	if err != nil {
		return nil, err
	}
	caFile, _ := ca.files("ca")
	pool := x509.NewCertPool()
	if pem, err := os.ReadFile(caFile); err != nil || !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("S3 CA %s: %v", caFile, err)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	p := c.s3Process(cert, key)
	if err := p.start(); err != nil {
		return nil, err
	}
	endpoint := "https://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(S3Port))
	err = p.waitFor(ctx, 30*time.Second, "serving its bucket", func(ctx context.Context) error {
		return answersOK(ctx, client, http.MethodHead, endpoint+"/"+S3Bucket)
	})
	return &S3Logs{Endpoint: endpoint, Bucket: S3Bucket, Region: "us-east-1", AccessKeyID: "e2e", SecretAccessKey: "e2e",
		PathStyle: true, CABundle: caFile}, err
}

// StopS3 stops the stack's S3 service by PID.
func (s *Stack) StopS3() error { return s.cfg.s3Process("", "").stop(10 * time.Second) }

// answersOK sends one request and says whether it was answered 200.
func answersOK(ctx context.Context, client *http.Client, method, url string) error {
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %s", method, url, resp.Status)
	}
	return nil
}
