package images

import (
	"context"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// pushImage pushes an image with entrypoint/cmd to the test registry.
func pushImage(t *testing.T, reg, repoTag string, entrypoint, cmd []string) {
	t.Helper()
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	img, err = mutate.Config(img, v1.Config{Entrypoint: entrypoint, Cmd: cmd})
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(reg+"/"+repoTag, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
}

func TestCommandFollowsTektonsEntrypointRuleThroughTheMirror(t *testing.T) {
	srv := httptest.NewServer(registry.New())
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	reg := u.Host
	pushImage(t, reg, "library/python:3.12", nil, []string{"python3"})
	pushImage(t, reg, "tools/app:1", []string{"/app"}, []string{"--serve"})
	pushImage(t, reg, "library/debian:bookworm", []string{"/bin/bash", "-c"}, []string{"echo hi"})

	r := NewResolver(Config{
		Mirror:             reg,
		MirroredRegistries: []string{"docker.io", "quay.io"},
		Rewrites:           map[string]string{"docker.io/library/ubuntu@sha256:" + strings.Repeat("a", 64): "docker.io/library/debian:bookworm"},
	})
	cases := []struct {
		name    string
		image   string
		hasArgs bool
		want    []string
		wantErr string
	}{
		{name: "short docker hub name, cmd only", image: "python:3.12", want: []string{"python3"}},
		{name: "cmd only, with args: cmd still runs", image: "docker.io/library/python:3.12", hasArgs: true, want: []string{"python3"}},
		{name: "entrypoint and cmd without args", image: "quay.io/tools/app:1", want: []string{"/app", "--serve"}},
		{name: "entrypoint only when args are given", image: "quay.io/tools/app:1", hasArgs: true, want: []string{"/app"}},
		{name: "digest pin rewritten by the image map", image: "docker.io/library/ubuntu@sha256:" + strings.Repeat("a", 64), want: []string{"/bin/bash", "-c", "echo hi"}},
		{name: "missing image names the image", image: "docker.io/library/nope:1", wantErr: "docker.io/library/nope:1"},
		{name: "invalid reference", image: "UPPER/Case::", wantErr: "invalid image reference"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := r.Command(context.Background(), tc.image, tc.hasArgs)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Command() error = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Command() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestRewriteOnlyTouchesMappedReferences(t *testing.T) {
	pinned := "gcr.io/x/y@sha256:" + strings.Repeat("b", 64)
	r := NewResolver(Config{Rewrites: map[string]string{pinned: "docker.io/library/busybox:1.36"}})
	if got := r.Rewrite(pinned); got != "docker.io/library/busybox:1.36" {
		t.Errorf("Rewrite(pinned) = %q", got)
	}
	if got := r.Rewrite("alpine:3"); got != "alpine:3" {
		t.Errorf("Rewrite(unmapped) = %q", got)
	}
}
