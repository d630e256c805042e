package devstack

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"time"
)

const registryBinary = "/usr/bin/docker-registry" // Debian package docker-registry

// registryProcess is the local OCI registry (Debian's docker-registry, the
// CNCF distribution registry). Its storage lives in the state directory.
func (c Config) registryProcess() *process {
	p := c.newProcess("registry", registryBinary, "serve", c.Path("registry", "config.yml"))
	p.ports = []string{c.RegistryAddr}
	return p
}

func (c Config) startRegistry(ctx context.Context) error {
	p := c.registryProcess()
	if _, err := os.Stat(registryBinary); err != nil {
		return componentErr("registry", "", fmt.Errorf("%s missing: install the Debian package docker-registry (hack/install-deps.sh)", registryBinary))
	}
	config := fmt.Sprintf(`version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
`, c.Path("registry", "data"), c.RegistryAddr)
	if err := writeFile(c.Path("registry", "config.yml"), config); err != nil {
		return err
	}
	if err := p.start(); err != nil {
		return err
	}
	return p.waitFor(ctx, 30*time.Second, "serving /v2/", func(ctx context.Context) error {
		return httpOK(ctx, "http://"+c.RegistryAddr+"/v2/")
	})
}

func httpOK(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}
