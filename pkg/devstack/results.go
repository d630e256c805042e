package devstack

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Tekton Results archives every run and its logs: upstream's API server
// (cmd/api, built from third_party/results) on a PostgreSQL 15 of its own
// (Debian's). Neither is reachable by tenants: PostgreSQL listens on
// loopback only; the API server, which has no address setting and listens
// on every interface, authorises no one itself (AUTH_DISABLE) and is
// reached only by the controller's recorder and by the gateway, which
// authenticates tenants and authorises them in their workspace. Tenant
// pods cannot reach the host's addresses (the workload namespaces'
// network policy; the isolation e2e probes these ports too).
const (
	ResultsVersion = "v0.18.0"
	// ResultsPort serves the Results API, gRPC and REST on one port.
	ResultsPort = 8088
	// ResultsMetricsPort is the API server's Prometheus port.
	ResultsMetricsPort = 9091
	// PostgresPort is PostgreSQL's, on 127.0.0.1 (not 5432, so that a
	// PostgreSQL of the machine's own does not collide).
	PostgresPort = 15432

	postgresBin      = "/usr/lib/postgresql/15/bin"
	resultsDatabase  = "tekton_results"
	resultsDBUser    = "results"
	postgresOSUser   = "postgres" // Debian's postgresql-15 creates it
	resultsLogsInDir = "logs"
)

func (c Config) resultsBuild() goBuild {
	return goBuild{
		component: "results", version: ResultsVersion, module: "results",
		typical: 4 * time.Minute,
		packages: []string{
			"github.com/tektoncd/results/cmd/api",
			"github.com/tektoncd/results/cmd/tkn-results",
		},
	}
}

// TknResultsBinary is Tekton Results' CLI, built with its API server.
func (c Config) TknResultsBinary() string { return c.binary(c.resultsBuild(), "tkn-results") }

// ResultsAddr is where the Results API answers on the host.
func (c Config) ResultsAddr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(ResultsPort)) }

func (c Config) postgresDataDir() string { return c.Path("postgres", "data") }

func (c Config) postgresPasswordFile() string { return c.Path("postgres", "password") }

// postgresUser is the user PostgreSQL runs as (it refuses root), mapped
// to root by asUserAttrs.
func postgresUser() (*passwdUser, error) {
	u, err := user.Lookup(postgresOSUser)
	if err != nil {
		return nil, fmt.Errorf("user %s (Debian's postgresql-15 creates it; hack/install-deps.sh): %w", postgresOSUser, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &passwdUser{name: u.Username, uid: uid, gid: gid}, nil
}

func (c Config) postgresProcess() *process {
	p := c.newProcess("postgres", filepath.Join(postgresBin, "postgres"),
		"-D", c.postgresDataDir(),
		"-h", "127.0.0.1", "-p", strconv.Itoa(PostgresPort),
		"-k", c.Path("postgres"), // its Unix socket, not /var/run/postgresql
		"-c", "max_connections=50")
	p.ports = []string{net.JoinHostPort("127.0.0.1", strconv.Itoa(PostgresPort))}
	return p
}

// startPostgres initialises the data directory on first use (a superuser
// named results with a random password, scram authentication), starts
// PostgreSQL and creates the Results database.
func (c Config) startPostgres(ctx context.Context) error {
	u, err := postgresUser()
	if err != nil {
		return componentErr("postgres", "", err)
	}
	password, err := c.postgresPassword()
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(c.postgresDataDir(), "PG_VERSION")); err != nil {
		_ = os.RemoveAll(c.postgresDataDir())
		initdb := exec.CommandContext(ctx, filepath.Join(postgresBin, "initdb"), "-D", c.postgresDataDir(),
			"-U", resultsDBUser, "--pwfile="+c.postgresPasswordFile(), "--auth=scram-sha-256", "-E", "UTF8", "--no-instructions")
		initdb.SysProcAttr = &syscall.SysProcAttr{}
		asUserAttrs(initdb.SysProcAttr, u)
		if err := c.runLogged(initdb, "postgres-initdb"); err != nil {
			return componentErr("postgres", c.LogFile("postgres-initdb"), err)
		}
	}
	p := c.postgresProcess()
	p.asUser = u
	if !p.running() {
		if err := c.clearPostmasterLock(); err != nil {
			return componentErr("postgres", p.logFile, err)
		}
	}
	if err := p.start(); err != nil {
		return err
	}
	return p.waitFor(ctx, 60*time.Second, "accepting connections with the Results database", func(ctx context.Context) error {
		return c.ensureResultsDatabase(ctx, password)
	})
}

// clearPostmasterLock removes the data directory's postmaster.pid when its
// PID is not a running postgres: PostgreSQL refuses to start while that PID
// answers kill(pid, 0), and a postmaster killed with SIGKILL stays a zombie
// (so answering) until PID 1 reaps it, which on this machine took minutes.
// A postmaster that does run but is not the one the PID file names (its PID
// file lost) is ours from an earlier bring-up: it is stopped by PID.
func (c Config) clearPostmasterLock() error {
	lock := filepath.Join(c.postgresDataDir(), "postmaster.pid")
	data, err := os.ReadFile(lock)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	first, _, _ := strings.Cut(string(data), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	binary := filepath.Join(postgresBin, "postgres")
	if err == nil && processRuns(pid, binary) {
		if err := killAndWait(pid, binary, 30*time.Second); err != nil {
			return err
		}
	}
	if err := os.Remove(lock); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// ensureResultsDatabase creates the Results database unless it exists;
// the API server creates its tables (DB_ENABLE_AUTO_MIGRATION).
func (c Config) ensureResultsDatabase(ctx context.Context, password string) error {
	env := append(os.Environ(), "PGPASSWORD="+password, "PGHOST=127.0.0.1", "PGPORT="+strconv.Itoa(PostgresPort), "PGUSER="+resultsDBUser)
	probe := exec.CommandContext(ctx, filepath.Join(postgresBin, "psql"), "-d", "postgres", "-tAc",
		"SELECT 1 FROM pg_database WHERE datname = '"+resultsDatabase+"'")
	probe.Env = env
	out, err := probe.CombinedOutput()
	if err != nil {
		return fmt.Errorf("psql: %v: %s", err, strings.TrimSpace(string(out)))
	}
	if strings.TrimSpace(string(out)) == "1" {
		return nil
	}
	create := exec.CommandContext(ctx, filepath.Join(postgresBin, "createdb"), resultsDatabase)
	create.Env = env
	if out, err := create.CombinedOutput(); err != nil {
		return fmt.Errorf("createdb: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// postgresPassword is the database password, made on first use and kept
// in the state directory (mode 0600).
func (c Config) postgresPassword() (string, error) {
	// hex: no spaces or quotes, as Results puts it in a DSN unquoted.
	return secretFile(c.postgresPasswordFile(), 24, hex.EncodeToString)
}

// resultsConfig is the API server's configuration file. Results reads
// only keys that appear in it (viper), so every key it uses is listed.
func (c Config) resultsConfig(password string) string {
	kv := [][2]string{
		{"DB_USER", resultsDBUser}, {"DB_PASSWORD", password},
		{"DB_HOST", "127.0.0.1"}, {"DB_PORT", strconv.Itoa(PostgresPort)}, {"DB_NAME", resultsDatabase},
		{"DB_SSLMODE", "disable"}, {"DB_SSLROOTCERT", ""}, {"DB_ENABLE_AUTO_MIGRATION", "true"},
		{"DB_MAX_IDLE_CONNECTIONS", "10"}, {"DB_MAX_OPEN_CONNECTIONS", "20"},
		{"SERVER_PORT", strconv.Itoa(ResultsPort)}, {"PROMETHEUS_PORT", strconv.Itoa(ResultsMetricsPort)},
		{"PROFILING", "false"}, {"PROFILING_PORT", "0"},
		// Plain HTTP/2 on the host: only the recorder and the gateway
		// (which serves tenants over TLS) talk to it.
		{"TLS_PATH", c.Path("results", "no-tls")},
		{"TLS_MIN_VERSION", ""}, {"TLS_CIPHER_SUITES", ""}, {"TLS_CURVE_PREFERENCES", ""},
		{"FEATURE_GATES", "PartialResponse=true"},
		{"AUTH_DISABLE", "true"}, {"AUTH_IMPERSONATE", "false"},
		{"LOG_LEVEL", "info"}, {"SQL_LOG_LEVEL", "warn"},
		{"LOGS_API", "true"}, {"LOGS_BUFFER_SIZE", "32768"}, {"LOGS_TIMESTAMPS", "false"},
		{"CONVERTER_ENABLE", "false"}, {"CONVERTER_DB_LIMIT", "50"},
		{"GRPC_WORKER_POOL", "2"}, {"K8S_QPS", "5"}, {"K8S_BURST", "10"},
	}
	kv = append(kv, c.logsConfig()...)
	var b strings.Builder
	for _, e := range kv {
		fmt.Fprintf(&b, "%s=%s\n", e[0], e[1])
	}
	return b.String()
}

func (c Config) resultsAPIProcess() *process {
	p := c.newProcess("results-api", c.binary(c.resultsBuild(), "api"))
	p.dir = c.Path("results") // Results finds ./config there
	if c.ResultsS3 != nil && c.ResultsS3.CABundle != "" {
		p.env = append(p.env, "AWS_CA_BUNDLE="+c.ResultsS3.CABundle)
	}
	p.ports = []string{":" + strconv.Itoa(ResultsPort), ":" + strconv.Itoa(ResultsMetricsPort)}
	return p
}

// startResultsAPI writes the API server's configuration and starts it,
// then waits until it answers a list.
func (c Config) startResultsAPI(ctx context.Context) error {
	password, err := c.postgresPassword()
	if err != nil {
		return err
	}
	for _, dir := range []string{c.Path("results", "no-tls"), c.Path("results", resultsLogsInDir)} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
	}
	// 0600: it holds the database password.
	if err := os.WriteFile(c.Path("results", "config"), []byte(c.resultsConfig(password)), 0o600); err != nil {
		return err
	}
	p := c.resultsAPIProcess()
	if err := p.start(); err != nil {
		return err
	}
	return p.waitFor(ctx, 3*time.Minute, "serving", func(ctx context.Context) error {
		return answersOK(ctx, http.DefaultClient, http.MethodGet, c.ResultsURL()+"/apis/results.tekton.dev/v1alpha2/parents/-/results?page_size=5")
	})
}

// ResultsURL is the Results API's REST base URL on the host.
func (c Config) ResultsURL() string { return "http://" + c.ResultsAddr() }

// StopResultsAPI stops the Results API server by PID (the e2e tests of an
// outage); PostgreSQL keeps running.
func (s *Stack) StopResultsAPI() error { return s.cfg.resultsAPIProcess().stop(10 * time.Second) }

// StartResultsAPI starts the Results API server again and waits until it
// serves.
func (s *Stack) StartResultsAPI(ctx context.Context) error { return s.cfg.startResultsAPI(ctx) }

// StopPostgres stops PostgreSQL by PID (a fast shutdown: SIGTERM waits for
// clients, which the Results API keeps connected).
func (s *Stack) StopPostgres() error {
	p := s.cfg.postgresProcess()
	if pid := p.pid(); pid != 0 {
		_ = syscall.Kill(pid, syscall.SIGINT)
	}
	return p.stop(20 * time.Second)
}

// StartPostgres starts PostgreSQL again and waits until it accepts
// connections.
func (s *Stack) StartPostgres(ctx context.Context) error { return s.cfg.startPostgres(ctx) }
