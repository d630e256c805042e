// Package images resolves the images steps name the way the workload
// nodes do: public registries are mirrored by a local registry, and images
// pinned by digest are rewritten through an explicit image map. The
// controller uses it to read image configs (Tekton's entrypoint lookup for
// steps without a command) without reaching the internet.
package images

import (
	"context"
	"fmt"
	"os"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"sigs.k8s.io/yaml"
)

// Config is the image mapping shared by the nodes' containerd and the
// controller (the dev stack writes it; production sets it to its mirror).
type Config struct {
	// Mirror is the registry (host:port) serving every registry in
	// MirroredRegistries, path for path.
	Mirror string `json:"mirror,omitempty"`
	// MirroredRegistries are registry hosts answered by Mirror.
	MirroredRegistries []string `json:"mirroredRegistries,omitempty"`
	// Rewrites replace image references exactly as written in a run (e.g.
	// pinned by digest) with an image that exists here. The pod is created
	// with the rewritten reference.
	Rewrites map[string]string `json:"rewrites,omitempty"`
}

// LoadConfig reads a Config from a YAML file.
func LoadConfig(path string) (Config, error) {
	var cfg Config
	data, err := os.ReadFile(path)
	if err != nil {
		return cfg, err
	}
	if err := yaml.UnmarshalStrict(data, &cfg); err != nil {
		return cfg, fmt.Errorf("image config %s: %w", path, err)
	}
	return cfg, nil
}

// Resolver rewrites images and looks up their default commands.
type Resolver struct {
	cfg     Config
	mirrors map[string]bool

	mu       sync.Mutex
	commands map[string]imageCommand // by resolved reference
}

type imageCommand struct{ entrypoint, cmd []string }

// NewResolver returns a Resolver for cfg.
func NewResolver(cfg Config) *Resolver {
	r := &Resolver{cfg: cfg, mirrors: map[string]bool{}, commands: map[string]imageCommand{}}
	for _, host := range cfg.MirroredRegistries {
		r.mirrors[host] = true
		if host == "docker.io" {
			r.mirrors[name.DefaultRegistry] = true // index.docker.io
		}
	}
	return r
}

// Rewrite returns the reference a pod should use for image.
func (r *Resolver) Rewrite(image string) string {
	if to, ok := r.cfg.Rewrites[image]; ok {
		return to
	}
	return image
}

// pullReference is where image is pulled from, as the node's containerd
// does it: a mirrored registry is answered by the mirror.
func (r *Resolver) pullReference(image string) (name.Reference, error) {
	ref, err := name.ParseReference(r.Rewrite(image))
	if err != nil {
		return nil, fmt.Errorf("invalid image reference %q: %w", image, err)
	}
	if r.cfg.Mirror == "" || !r.mirrors[ref.Context().RegistryStr()] {
		return ref, nil
	}
	mirrored := r.cfg.Mirror + "/" + ref.Context().RepositoryStr()
	switch ref := ref.(type) {
	case name.Digest:
		return name.NewDigest(mirrored+"@"+ref.DigestStr(), name.Insecure)
	default:
		return name.NewTag(mirrored+":"+ref.Identifier(), name.Insecure)
	}
}

// Command is the command a container of image runs when it sets none,
// following Tekton's rule: the image's entrypoint, followed by its cmd
// when the step has no args; the cmd alone when there is no entrypoint.
func (r *Resolver) Command(ctx context.Context, image string, hasArgs bool) ([]string, error) {
	ic, err := r.imageCommand(ctx, image)
	if err != nil {
		return nil, err
	}
	command := append([]string(nil), ic.entrypoint...)
	if !hasArgs || len(command) == 0 {
		command = append(command, ic.cmd...)
	}
	if len(command) == 0 {
		return nil, fmt.Errorf("image %s has neither entrypoint nor cmd: the step must set command", image)
	}
	return command, nil
}

func (r *Resolver) imageCommand(ctx context.Context, image string) (imageCommand, error) {
	ref, err := r.pullReference(image)
	if err != nil {
		return imageCommand{}, err
	}
	r.mu.Lock()
	ic, ok := r.commands[ref.String()]
	r.mu.Unlock()
	if ok {
		return ic, nil
	}
	img, err := remote.Image(ref, remote.WithContext(ctx))
	if err != nil {
		return imageCommand{}, fmt.Errorf("read config of image %s (from %s): %w", image, ref, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return imageCommand{}, fmt.Errorf("read config of image %s: %w", image, err)
	}
	ic = imageCommand{entrypoint: cf.Config.Entrypoint, cmd: cf.Config.Cmd}
	r.mu.Lock()
	r.commands[ref.String()] = ic
	r.mu.Unlock()
	return ic, nil
}
