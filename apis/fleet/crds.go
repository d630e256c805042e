// Package fleet holds the CustomResourceDefinitions of the fleet API,
// installed in the provider workspace (they are not exported to tenants).
package fleet

import (
	"embed"
	"fmt"
	"io/fs"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

//go:embed *.crd.yaml
var crdFiles embed.FS

// CRDs returns the fleet API's CustomResourceDefinitions.
func CRDs() ([]*unstructured.Unstructured, error) {
	names, err := fs.Glob(crdFiles, "*.crd.yaml")
	if err != nil {
		return nil, err
	}
	var out []*unstructured.Unstructured
	for _, name := range names {
		data, err := crdFiles.ReadFile(name)
		if err != nil {
			return nil, err
		}
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(data, &u.Object); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		out = append(out, u)
	}
	return out, nil
}
