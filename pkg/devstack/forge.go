package devstack

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
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

	"github.com/pipelines-service/pipelines-service/pkg/workload"
)

// The stack's git forge: Gitea, built from its Go module
// (third_party/gitea) without its npm frontend (the API, git over HTTP and
// webhooks do not need it), on SQLite. It listens on HostIP, where the
// host and, through one egress rule of the workload namespaces' policy,
// tenant pods reach it; the controller resolves git and http references
// from it.
const (
	GiteaVersion = "v1.26.1"
	// ForgePort is Gitea's HTTP port on HostIP.
	ForgePort = 3000
	// ForgeAdmin is the forge's administrator, made by the stack.
	ForgeAdmin = "pipelines-service"
	// forgeOSUser is who Gitea runs as: it refuses root, and needs no
	// home of its own (see asUserAttrs).
	forgeOSUser = "nobody"
)

func (c Config) giteaBuild() goBuild {
	return goBuild{
		component: "gitea", version: GiteaVersion, module: "gitea",
		typical:  6 * time.Minute,
		packages: []string{"code.gitea.io/gitea"},
		tags:     []string{"sqlite", "sqlite_unlock_notify"},
		cgo:      true, // mattn/go-sqlite3
		ldflags:  []string{"-X", "main.Version=" + strings.TrimPrefix(GiteaVersion, "v")},
	}
}

// ForgeAddr is host:port of the forge, on HostIP.
func (c Config) ForgeAddr() string {
	return net.JoinHostPort(c.HostIP.String(), strconv.Itoa(ForgePort))
}

// ForgeURL is the forge's base URL, the same from the host and from pods.
func (c Config) ForgeURL() string { return "http://" + c.ForgeAddr() }

// ForgeTokenFile holds an API token of ForgeAdmin (mode 0600).
func (c Config) ForgeTokenFile() string { return c.Path("forge", "admin.token") }

// forgeCAFile is the CA Gitea's webhooks trust: the gateway's.
func (c Config) forgeCAFile() string { return c.Path("forge", "gateway-ca.crt") }

// writeForgeCA copies the gateway's CA (made now if it is not yet) for
// Gitea, and says whether it changed (Go reads it once per process).
func (c Config) writeForgeCA() (bool, error) {
	if _, err := c.gatewayCA(); err != nil {
		return false, err
	}
	caFile, _ := (&certAuthority{dir: c.Path("gateway-pki")}).files("ca")
	data, err := os.ReadFile(caFile)
	if err != nil {
		return false, err
	}
	if old, err := os.ReadFile(c.forgeCAFile()); err == nil && bytes.Equal(old, data) {
		return false, nil
	}
	return true, os.WriteFile(c.forgeCAFile(), data, 0o644)
}

func (c Config) forgeConfigFile() string { return c.Path("forge", "app.ini") }

func (c Config) forgePasswordFile() string { return c.Path("forge", "admin.password") }

// TenantEgress is what tenant pods may reach beyond their namespace and
// cluster DNS: the forge.
func (c Config) TenantEgress() []workload.Egress {
	return []workload.Egress{{CIDR: c.HostIP.String() + "/32", Port: ForgePort}}
}

func forgeUser() (*passwdUser, error) {
	u, err := user.Lookup(forgeOSUser)
	if err != nil {
		return nil, fmt.Errorf("user %s: %w", forgeOSUser, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &passwdUser{name: u.Username, uid: uid, gid: gid}, nil
}

func (c Config) forgeProcess() *process {
	p := c.newProcess("forge", c.binary(c.giteaBuild(), "gitea"), "web", "--config", c.forgeConfigFile())
	p.ports = []string{c.ForgeAddr()}
	p.env = c.forgeEnv()
	return p
}

// forgeEnv keeps Gitea (and the git it runs) away from the host's
// configuration: HOME is its own directory. Its webhooks trust the CA of
// the gateway's certificate (SSL_CERT_FILE, read by Go's TLS).
func (c Config) forgeEnv() []string {
	return []string{"HOME=" + c.Path("forge", "home"), "GITEA_WORK_DIR=" + c.Path("forge"), "USER=" + forgeOSUser,
		"SSL_CERT_FILE=" + c.forgeCAFile()}
}

// startForge writes Gitea's configuration on first use, migrates its
// database, makes the administrator, starts it and makes an API token.
func (c Config) startForge(ctx context.Context) error {
	u, err := forgeUser()
	if err != nil {
		return componentErr("forge", "", err)
	}
	for _, dir := range []string{c.Path("forge", "home"), c.Path("forge", "data"), c.Path("forge", "repos")} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
	}
	static, err := c.giteaModuleDir(ctx)
	if err != nil {
		return componentErr("forge", "", err)
	}
	changed, err := c.writeForgeConfig(static)
	if err != nil {
		return err
	}
	caChanged, err := c.writeForgeCA()
	if err != nil {
		return err
	}
	changed = changed || caChanged
	password, err := secretFile(c.forgePasswordFile(), 24, hex.EncodeToString)
	if err != nil {
		return err
	}
	p := c.forgeProcess()
	if changed {
		// Gitea reads app.ini when it starts.
		if err := p.stop(10 * time.Second); err != nil {
			return err
		}
	}
	if !p.running() {
		if _, err := c.forgeCLI(ctx, u, "migrate"); err != nil {
			return err
		}
		_, err := c.forgeCLI(ctx, u, "admin", "user", "create", "--admin", "--username", ForgeAdmin,
			"--password", password, "--email", ForgeAdmin+"@forge.invalid", "--must-change-password=false")
		if err != nil && !strings.Contains(err.Error(), "already exists") {
			return err
		}
	}
	p.asUser = u
	if err := p.start(); err != nil {
		return err
	}
	if err := p.waitFor(ctx, 2*time.Minute, "serving its API", func(ctx context.Context) error {
		return answersOK(ctx, http.DefaultClient, http.MethodGet, c.ForgeURL()+"/api/healthz")
	}); err != nil {
		return err
	}
	return c.ensureForgeToken(ctx, u)
}

// giteaModuleDir is Gitea's module source: without the bindata tag Gitea
// reads its templates and options (licences, .gitignore templates) from
// there, read-only.
func (c Config) giteaModuleDir(ctx context.Context) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}", "code.gitea.io/gitea")
	cmd.Dir = filepath.Join(c.RepoRoot, "third_party", "gitea")
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=readonly", "GONOSUMDB="+noSumDB)
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go list -m code.gitea.io/gitea: %w", err)
	}
	dir := strings.TrimSpace(string(out))
	if _, err := os.Stat(filepath.Join(dir, "templates")); err != nil {
		return "", fmt.Errorf("gitea's templates: %w", err)
	}
	return dir, nil
}

// writeForgeConfig writes app.ini (mode 0600: it holds Gitea's secrets)
// and says whether it changed; its secrets are made once.
func (c Config) writeForgeConfig(static string) (bool, error) {
	path := c.forgeConfigFile()
	secrets := map[string]string{}
	for _, name := range []string{"secret-key", "internal-token", "jwt-secret"} {
		// Gitea reads JWT secrets as 32 bytes in unpadded base64url.
		s, err := secretFile(c.Path("forge", name), 32, base64.RawURLEncoding.EncodeToString)
		if err != nil {
			return false, err
		}
		secrets[name] = s
	}
	data := fmt.Sprintf(`APP_NAME = pipelines-service forge
RUN_MODE = prod
RUN_USER = %[1]s
WORK_PATH = %[2]s

[database]
DB_TYPE = sqlite3
PATH = %[2]s/data/gitea.db
SQLITE_JOURNAL_MODE = WAL

[server]
PROTOCOL = http
HTTP_ADDR = %[3]s
HTTP_PORT = %[4]d
DOMAIN = %[3]s
ROOT_URL = %[5]s/
STATIC_ROOT_PATH = %[6]s
APP_DATA_PATH = %[2]s/data
DISABLE_SSH = true
START_SSH_SERVER = false
OFFLINE_MODE = true
LFS_START_SERVER = false

[security]
INSTALL_LOCK = true
SECRET_KEY = %[7]s
INTERNAL_TOKEN = %[8]s

[oauth2]
JWT_SECRET = %[9]s

[service]
DISABLE_REGISTRATION = true
REQUIRE_SIGNIN_VIEW = false
; API tokens only: a username and password in basic auth sign in no one
; (a token as the password still works, as git pushes use it).
ENABLE_BASIC_AUTHENTICATION = false

[repository]
ROOT = %[2]s/repos
DEFAULT_BRANCH = main
ENABLE_PUSH_CREATE_USER = true
ENABLE_PUSH_CREATE_ORG = true
DEFAULT_PUSH_CREATE_PRIVATE = false

[webhook]
; No webhook reaches a private address but HOST_IP, where the gateway
; serves Pipelines as Code's intake (https://HOST_IP:%[10]d/pac). What else
; listens there authenticates its clients (kcp, the workload apiservers),
; or is the registry every tenant pulls from anyway; the Results API, which
; authorises no one itself, answers on loopback only (hostfirewall.go).
ALLOWED_HOST_LIST = external,%[3]s/32

[migrations]
ALLOW_LOCALNETWORKS = false

[actions]
ENABLED = false

[mailer]
ENABLED = false

[indexer]
REPO_INDEXER_ENABLED = false

[log]
MODE = console
LEVEL = Info
`, forgeOSUser, c.Path("forge"), c.HostIP.String(), ForgePort, c.ForgeURL(), static,
		secrets["secret-key"], secrets["internal-token"], secrets["jwt-secret"], GatewayPort)
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, []byte(data)) {
		return false, nil
	}
	return true, os.WriteFile(path, []byte(data), 0o600)
}

// forgeCLI runs a gitea subcommand as the forge's user, on its
// configuration, and returns its output.
func (c Config) forgeCLI(ctx context.Context, u *passwdUser, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, c.binary(c.giteaBuild(), "gitea"), append(args, "--config", c.forgeConfigFile())...)
	cmd.Env = append(os.Environ(), c.forgeEnv()...)
	cmd.SysProcAttr = &syscall.SysProcAttr{}
	asUserAttrs(cmd.SysProcAttr, u)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("gitea %s: %w: %s", strings.Join(args[:min(len(args), 3)], " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// ensureForgeToken keeps the administrator's API token if it still
// works, or makes a new one.
func (c Config) ensureForgeToken(ctx context.Context, u *passwdUser) error {
	if data, err := os.ReadFile(c.ForgeTokenFile()); err == nil {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.ForgeURL()+"/api/v1/user", nil)
		req.Header.Set("Authorization", "token "+strings.TrimSpace(string(data)))
		if resp, err := http.DefaultClient.Do(req); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
	}
	token, err := c.forgeToken(ctx, u, ForgeAdmin)
	if err != nil {
		return err
	}
	return os.WriteFile(c.ForgeTokenFile(), []byte(token+"\n"), 0o600)
}

// forgeToken makes an API token (all scopes) of a forge user with Gitea's
// CLI: the forge takes no passwords over HTTP.
func (c Config) forgeToken(ctx context.Context, u *passwdUser, user string) (string, error) {
	out, err := c.forgeCLI(ctx, u, "admin", "user", "generate-access-token", "--username", user,
		"--token-name", "stack-"+strconv.FormatInt(time.Now().UnixNano(), 36), "--scopes", "all", "--raw")
	if err != nil {
		return "", err
	}
	// --raw prints the token alone, but Gitea may log on the same output.
	for _, f := range strings.Fields(out) {
		if len(f) == 40 && strings.Trim(f, "0123456789abcdef") == "" {
			return f, nil
		}
	}
	return "", fmt.Errorf("gitea generate-access-token for %s printed no token: %s", user, out)
}

// ForgeToken makes an API token of a forge user (the e2e tests' users).
func (s *Stack) ForgeToken(ctx context.Context, user string) (string, error) {
	u, err := forgeUser()
	if err != nil {
		return "", err
	}
	return s.cfg.forgeToken(ctx, u, user)
}

// secretFile returns the random secret kept in path (mode 0600), made on
// first use of size random bytes, encoded.
func secretFile(path string, size int, encode func([]byte) string) (string, error) {
	if data, err := os.ReadFile(path); err == nil {
		return strings.TrimSpace(string(data)), nil
	}
	b := make([]byte, size)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	s := encode(b)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", err
	}
	return s, os.WriteFile(path, []byte(s+"\n"), 0o600)
}

// StopForge stops Gitea by PID.
func (s *Stack) StopForge() error { return s.cfg.forgeProcess().stop(10 * time.Second) }
