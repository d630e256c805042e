package devstack

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestCheckoutBuilt(t *testing.T) {
	repo, state := t.TempDir(), t.TempDir()
	c := Config{RepoRoot: repo, StateDir: state}
	write := func(path string, at time.Time) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, at, at); err != nil {
			t.Fatal(err)
		}
	}
	then := time.Now().Add(-time.Hour)
	write(filepath.Join(repo, "go.mod"), then)
	write(filepath.Join(repo, "pkg", "a", "a.go"), then)
	if c.checkoutBuilt() {
		t.Fatal("built with no binaries")
	}
	for _, pkg := range checkoutPrograms {
		write(c.Path("bin", filepath.Base(pkg)), then.Add(time.Minute))
	}
	if !c.checkoutBuilt() {
		t.Fatal("binaries newer than every source: not built")
	}
	// What is not the product's source changes nothing.
	write(filepath.Join(repo, "third_party", "kcp", "main.go"), then.Add(time.Hour))
	write(filepath.Join(repo, "README.md"), then.Add(time.Hour))
	write(filepath.Join(repo, "bin", "controller"), then.Add(time.Hour))
	if !c.checkoutBuilt() {
		t.Error("third_party, README or bin/ made the programs stale")
	}
	// A source, go.sum or an embedded schema newer than a binary does.
	for _, src := range []string{filepath.Join("pkg", "a", "a.go"), "go.sum", filepath.Join("apis", "tekton", "schema.yaml")} {
		write(filepath.Join(repo, src), then.Add(2*time.Minute))
		if c.checkoutBuilt() {
			t.Errorf("%s newer than the binaries: built", src)
		}
		write(filepath.Join(repo, src), then)
	}
}
