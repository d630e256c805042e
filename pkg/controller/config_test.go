package controller

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Tekton's images must be pinned by digest: a tag would be pulled again
// for every TaskRun's pod (its default pull policy), so LoadConfig
// refuses it and names the field.
func TestLoadConfigWantsTektonImagesByDigest(t *testing.T) {
	const digest = "@sha256:5a2ea1d7f79277c99cc7e0c41bdc0176af2e3431ba810e535ea9278897383444"
	images := func(shell string) string {
		return `kcpKubeconfig: /kcp.kubeconfig
providerWorkspace: root:pipelines-service
tektonImages:
  EntrypointImage: registry:5001/entrypoint` + digest + `
  NopImage: registry:5001/nop` + digest + `
  SidecarLogResultsImage: registry:5001/sidecarlogresults` + digest + `
  WorkingDirInitImage: registry:5001/workingdirinit` + digest + `
  ShellImage: ` + shell + `
  ShellImageWin: mcr.microsoft.com/powershell:nanoserver
`
	}
	for _, tc := range []struct {
		name, shell, wantErr string
	}{
		{"pinned", "registry:5001/pipelines-service/shell" + digest, ""},
		{"a tag", "registry:5001/pipelines-service/shell:latest", `ShellImage "registry:5001/pipelines-service/shell:latest" is not pinned by digest`},
		{"no tag", "busybox", `ShellImage "busybox" is not pinned by digest`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config.yaml")
			if err := os.WriteFile(path, []byte(images(tc.shell)), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := LoadConfig(path)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("a pinned configuration is refused: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}
