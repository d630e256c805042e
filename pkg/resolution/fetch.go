package resolution

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	kauth "github.com/google/go-containerregistry/pkg/authn/kubernetes"
	"github.com/google/go-containerregistry/pkg/name"
	ggcrv1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/kcp-dev/logicalcluster/v3"
	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	resolutioncommon "github.com/tektoncd/pipeline/pkg/resolution/common"
	"github.com/tektoncd/pipeline/pkg/resolution/resolver/bundle"
	httpresolver "github.com/tektoncd/pipeline/pkg/resolution/resolver/http"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// resolveHTTP is upstream's http resolver with the fetch made here:
// upstream's follows redirects anywhere over the default transport and
// reads the body without bound.
func (s *Service) resolveHTTP(ctx context.Context, cluster logicalcluster.Name, namespace string, params v1.Params) (*resolved, error) {
	p, err := httpresolver.PopulateDefaultParams(ctx, params)
	if err != nil {
		return nil, err
	}
	target := p[httpresolver.UrlParam]
	if err := s.opts.Egress.CheckURL("http", target); err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, err
	}
	if secretName := p[httpresolver.HttpBasicAuthSecret]; secretName != "" {
		key := p[httpresolver.HttpBasicAuthSecretKey]
		if key == "" {
			key = "password"
		}
		password, err := s.secretValue(ctx, cluster, namespace, secretName, key)
		if err != nil {
			return nil, err
		}
		req.SetBasicAuth(p[httpresolver.HttpBasicAuthUsername], password)
	}
	resp, err := s.opts.Egress.Client("http", s.opts.MaxFetchTimeout).Do(req)
	if err != nil {
		return nil, fmt.Errorf("http resolver: fetching %s: %w", target, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("http resolver: %s answered %s", target, resp.Status)
	}
	body, err := s.readBounded(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("http resolver: %s: %w", target, err)
	}
	if digest, ok := p["digest"]; ok {
		if err := checkDigest(digest, body); err != nil {
			return nil, fmt.Errorf("http resolver: %s: %w", target, err)
		}
	}
	sum := sha256.Sum256(body)
	return &resolved{data: body, refSource: &v1.RefSource{URI: target, Digest: map[string]string{"sha256": hex.EncodeToString(sum[:])}}}, nil
}

// secretValue reads one key of a secret of the run's namespace.
func (s *Service) secretValue(ctx context.Context, cluster logicalcluster.Name, namespace, secretName, key string) (string, error) {
	kube, err := s.opts.Workspaces.Kube(cluster)
	if err != nil {
		return "", err
	}
	secret, err := lockedKube(kube, namespace).CoreV1().Secrets(namespace).Get(ctx, secretName, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("secret %s in namespace %s: %w", secretName, namespace, err)
	}
	v, ok := secret.Data[key]
	if !ok {
		return "", fmt.Errorf("secret %s in namespace %s has no key %q", secretName, namespace, key)
	}
	return string(v), nil
}

// checkDigest is upstream's digest parameter: sha256:<hex> or
// sha512:<hex> of the content.
func checkDigest(digest string, body []byte) error {
	algo, want, ok := strings.Cut(digest, ":")
	if !ok {
		return fmt.Errorf("invalid digest format: %s", digest)
	}
	var got []byte
	switch algo {
	case "sha256":
		sum := sha256.Sum256(body)
		got = sum[:]
	case "sha512":
		sum := sha512.Sum512(body)
		got = sum[:]
	default:
		return fmt.Errorf("invalid digest algorithm: %s", algo)
	}
	if hex.EncodeToString(got) != strings.ToLower(want) {
		return fmt.Errorf("digest mismatch: want %s, got %s:%s", digest, algo, hex.EncodeToString(got))
	}
	return nil
}

// readBounded reads at most MaxBytes.
func (s *Service) readBounded(r io.Reader) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, s.opts.MaxBytes+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > s.opts.MaxBytes {
		return nil, fmt.Errorf("larger than the platform's limit of %d bytes", s.opts.MaxBytes)
	}
	return data, nil
}

// resolveBundle is upstream's bundles resolver with the fetch made here:
// credentials only from the run's namespace (its service account's image
// pull secrets and the secret parameter; upstream adds the controller's
// own keychains), the registry on the allow-list, connections through
// the egress check, and layers read within bounds (upstream allocates
// what a tar header claims).
func (s *Service) resolveBundle(ctx context.Context, cluster logicalcluster.Name, namespace string, params v1.Params) (*resolved, error) {
	opts, err := bundle.OptionsFromParams(ctx, params)
	if err != nil {
		return nil, err
	}
	ref, err := name.ParseReference(opts.Bundle)
	if err != nil {
		return nil, fmt.Errorf("bundles resolver: invalid bundle %q: %w", opts.Bundle, err)
	}
	registry := ref.Context().RegistryStr()
	if err := s.opts.Egress.CheckHost("bundles", registryHostPort(registry)); err != nil {
		return nil, err
	}
	kube, err := s.opts.Workspaces.Kube(cluster)
	if err != nil {
		return nil, err
	}
	var pullSecrets []string
	if opts.ImagePullSecret != "" {
		pullSecrets = []string{opts.ImagePullSecret}
	}
	keychain, err := kauth.New(ctx, lockedKube(kube, namespace), kauth.Options{
		Namespace: resolutioncommon.RequestNamespace(ctx), ServiceAccountName: opts.ServiceAccount, ImagePullSecrets: pullSecrets,
	})
	if err != nil {
		return nil, fmt.Errorf("bundles resolver: credentials: %w", err)
	}
	return s.bundleEntry(ctx, keychain, ref, opts)
}

// registryHostPort is a registry's host:port as the allow-list names it.
func registryHostPort(registry string) string {
	if registry == name.DefaultRegistry {
		return "index.docker.io:443"
	}
	if !strings.Contains(registry, ":") {
		return registry + ":443"
	}
	return registry
}

func (s *Service) bundleEntry(ctx context.Context, keychain authn.Keychain, ref name.Reference, opts bundle.RequestOptions) (*resolved, error) {
	img, err := remote.Image(ref, remote.WithAuthFromKeychain(keychain), remote.WithContext(ctx), remote.WithTransport(s.opts.Egress.Transport("bundles")))
	if err != nil {
		return nil, fmt.Errorf("bundles resolver: cannot retrieve the oci image %s: %w", opts.Bundle, err)
	}
	digest, err := img.Digest()
	if err != nil {
		return nil, err
	}
	manifest, err := img.Manifest()
	if err != nil {
		return nil, fmt.Errorf("bundles resolver: could not parse image manifest: %w", err)
	}
	if len(manifest.Layers) > bundle.MaximumBundleObjects {
		return nil, fmt.Errorf("invalid tekton bundle %s: contains more than the maximum %d allow objects", opts.Bundle, bundle.MaximumBundleObjects)
	}
	for _, l := range manifest.Layers {
		kind, entry := l.Annotations[bundle.BundleAnnotationKind], l.Annotations[bundle.BundleAnnotationName]
		if !strings.EqualFold(kind, opts.Kind) || entry != opts.EntryName {
			continue
		}
		layer, err := img.LayerByDigest(l.Digest)
		if err != nil {
			return nil, err
		}
		data, err := s.readLayer(layer)
		if err != nil {
			return nil, fmt.Errorf("bundles resolver: %s %s in %s: %w", kind, entry, opts.Bundle, err)
		}
		return &resolved{
			data: data,
			annotations: map[string]string{
				bundle.ResolverAnnotationKind: kind, bundle.ResolverAnnotationName: entry,
				bundle.ResolverAnnotationAPIVersion: l.Annotations[bundle.BundleAnnotationAPIVersion],
			},
			refSource: &v1.RefSource{URI: ref.Context().String(), Digest: map[string]string{digest.Algorithm: digest.Hex}, EntryPoint: opts.EntryName},
		}, nil
	}
	return nil, fmt.Errorf("bundles resolver: could not find object in image with kind: %s and name: %s", opts.Kind, opts.EntryName)
}

// readLayer reads a bundle layer's one object: a tarball's first file
// (as tkn bundle push writes) or, failing that, the raw layer, never
// more than MaxBytes.
func (s *Service) readLayer(layer ggcrv1.Layer) ([]byte, error) {
	rc, err := layer.Uncompressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	if header, err := tr.Next(); err == nil {
		if header.Size > s.opts.MaxBytes {
			return nil, fmt.Errorf("larger than the platform's limit of %d bytes", s.opts.MaxBytes)
		}
		return s.readBounded(tr)
	}
	raw, err := layer.Uncompressed()
	if err != nil {
		return nil, err
	}
	defer raw.Close()
	data, err := s.readBounded(raw)
	if err != nil {
		return nil, err
	}
	if len(data) == 0 {
		return nil, errors.New("empty layer")
	}
	return data, nil
}
