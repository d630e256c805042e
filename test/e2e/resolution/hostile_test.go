//go:build e2e

package resolution

import (
	"context"
	"os"
	"strings"
	"testing"

	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"

	"github.com/pipelines-service/pipelines-service/pkg/resolution"
)

// TestHostileReferences is a tenant using resolvers against the platform:
// every attempt fails with a clear condition, before any connection to
// what it names, and leaks nothing of the controller's host.
func TestHostileReferences(t *testing.T) {
	ctx := context.Background()
	tn := env.NewTenant(ctx, t, "hostile")
	bystander := env.NewTenant(ctx, t, "bystander")
	cfg := env.Stack.Config()
	host := cfg.HostIP.String()
	user := env.Forge(t).NewUser(t, "e2e-hostile")
	user.Push(t, "tricks", false, map[string]string{
		"greet.yaml":  greetTask("greet"),
		"passwd.yaml": "symlink:/etc/passwd",
		"kcp.yaml":    "symlink:" + cfg.KCPAdminKubeconfig(),
	})
	notAllowed := string(resolution.ReasonHostNotAllowed)
	failed := string(v1.TaskRunReasonFailedResolution)

	for _, tc := range []struct {
		name   string
		ref    v1.ResolverRef
		reason string
		parts  []string
	}{
		{"git clone of kcp", ref("git", "url", "https://"+host+":6443/clusters/root.git", "revision", "main", "pathInRepo", "t.yaml"), notAllowed, []string{host + ":6443"}},
		{"git clone of the controller's debug port", ref("git", "url", "http://127.0.0.1:6061/x.git", "revision", "main", "pathInRepo", "t.yaml"), notAllowed, []string{"127.0.0.1:6061"}},
		{"git clone of a mapped loopback", ref("git", "url", "http://[::ffff:127.0.0.1]:6061/x.git", "revision", "main", "pathInRepo", "t.yaml"), notAllowed, []string{"6061"}},
		{"http of the metadata address", ref("http", "url", "http://169.254.169.254/latest/meta-data/"), notAllowed, []string{"169.254.169.254:80"}},
		{"http of the Results API", ref("http", "url", "http://127.0.0.1:8088/apis/results.tekton.dev/v1alpha2/parents/-/results"), notAllowed, []string{"127.0.0.1:8088"}},
		{"http of a workload apiserver", ref("http", "url", "https://"+host+":7443/api"), notAllowed, []string{host + ":7443"}},
		{"bundle from the internet", ref("bundles", "bundle", "docker.io/library/busybox:latest", "name", "x", "kind", "task"), notAllowed, []string{"index.docker.io:443"}},
		{"git API on kcp", ref("git", "org", "o", "repo", "r", "revision", "main", "pathInRepo", "t.yaml", "scmType", "gitea", "serverURL", "https://"+host+":6443"), notAllowed, []string{host + ":6443"}},
		{"file URL", ref("git", "url", "file:///etc", "revision", "main", "pathInRepo", "passwd"), failed, []string{"invalid git repository url"}},
		{"local path as URL", ref("git", "url", "/var/lib", "revision", "main", "pathInRepo", "x"), failed, []string{"only http and https"}},
		{"path out of the repository", ref("git", "url", user.CloneURL("tricks"), "revision", "main", "pathInRepo", "../../../../etc/passwd"), failed, []string{"not a path inside the repository"}},
		{"option as revision", ref("git", "url", user.CloneURL("tricks"), "revision", "--upload-pack=touch /tmp/e2e-pwned", "pathInRepo", "greet.yaml"), failed, []string{"invalid revision"}},
		{"option as URL", ref("git", "url", "--upload-pack=touch /tmp/e2e-pwned@x", "revision", "main", "pathInRepo", "greet.yaml"), failed, nil},
		{"committed symlink to /etc/passwd", ref("git", "url", user.CloneURL("tricks"), "revision", "main", "pathInRepo", "passwd.yaml"), failed, nil},
		{"committed symlink to kcp's kubeconfig", ref("git", "url", user.CloneURL("tricks"), "revision", "main", "pathInRepo", "kcp.yaml"), failed, nil},
		{"unserved resolver", ref("hub", "name", "git-clone", "kind", "task"), failed, []string{`resolver "hub" is not served`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := runTask(ctx, t, tn, "hostile", tc.ref)
			wantFailed(t, tr, tc.reason, tc.parts...)
			msg := describe(tr)
			for _, leak := range []string{"root:x:0:0", "certificate-authority-data", "client-key-data"} {
				if strings.Contains(msg, leak) {
					t.Errorf("the condition leaks the controller's files (%q): %s", leak, msg)
				}
			}
		})
	}
	if _, err := os.Stat("/tmp/e2e-pwned"); err == nil {
		t.Errorf("/tmp/e2e-pwned exists: an option given as revision or URL ran")
	}

	t.Run("a token secret of another namespace", func(t *testing.T) {
		namespace(ctx, t, tn, "elsewhere")
		secret(ctx, t, tn, "elsewhere", "forge", map[string]string{"token": user.Token})
		// Upstream reads api-token-secret-namespace; the platform reads the
		// run's namespace only.
		resolverConfig(ctx, t, tn, "git-resolver-config", map[string]string{
			"server-url": cfg.ForgeURL(), "scm-type": "gitea", "default-revision": "main",
			"api-token-secret-name": "forge", "api-token-secret-key": "token", "api-token-secret-namespace": "elsewhere",
		})
		tr := runTask(ctx, t, tn, "elsewhere", ref("git", "org", user.Name, "repo", "tricks", "pathInRepo", "greet.yaml"))
		wantFailed(t, tr, failed, "secret forge not found in namespace default")
	})
	t.Run("a tenant's server-url naming the platform", func(t *testing.T) {
		resolverConfig(ctx, t, tn, "git-resolver-config", map[string]string{
			"server-url": "https://" + host + ":6443", "scm-type": "gitea", "default-revision": "main",
		})
		secret(ctx, t, tn, ns, "forge", map[string]string{"token": user.Token})
		tr := runTask(ctx, t, tn, "server-url", ref("git", "org", user.Name, "repo", "tricks", "pathInRepo", "greet.yaml", "token", "forge"))
		wantFailed(t, tr, notAllowed, host+":6443")
	})
	t.Run("a tenant disabling a resolver disables it for itself only", func(t *testing.T) {
		resolverConfig(ctx, t, tn, "resolvers-feature-flags", map[string]string{"enable-git-resolver": "false"})
		clone := ref("git", "url", user.CloneURL("tricks"), "revision", "main", "pathInRepo", "greet.yaml")
		wantFailed(t, runTask(ctx, t, tn, "disabled", clone), failed, "git resolver is disabled")
		wantSucceeded(t, runTask(ctx, t, bystander, "enabled", clone))
	})
}
