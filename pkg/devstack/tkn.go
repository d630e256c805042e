package devstack

import (
	"context"
	"os"
	"time"
)

// TknVersion is the Tekton CLI the stack installs as bin/tkn
// (third_party/tkn). v0.43.0 is the first release the module proxy serves
// that builds against this Tekton line.
const TknVersion = "v0.43.0"

func (c Config) tknBuild() goBuild {
	return goBuild{
		component: "tkn", version: TknVersion, module: "tkn",
		typical:  5 * time.Minute,
		packages: []string{"github.com/tektoncd/cli/cmd/tkn"},
		ldflags:  []string{"-X", "github.com/tektoncd/cli/pkg/cmd/version.clientVersion=" + TknVersion},
	}
}

// TknBinary is the built tkn.
func (c Config) TknBinary() string { return c.binary(c.tknBuild(), "tkn") }

// installTkn builds tkn (cached) and links it as bin/tkn of the checkout.
func (s *Stack) installTkn(ctx context.Context) error {
	c := s.cfg
	if err := s.build(ctx, c.tknBuild()); err != nil {
		return err
	}
	link := c.RepoRoot + "/bin/tkn"
	if target, err := os.Readlink(link); err == nil && target == c.TknBinary() {
		return nil
	}
	_ = os.Remove(link)
	if err := os.MkdirAll(c.RepoRoot+"/bin", 0o755); err != nil {
		return err
	}
	return os.Symlink(c.TknBinary(), link)
}
