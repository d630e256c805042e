// Package kcp holds the controller's kcp plumbing: finding the APIExport
// virtual workspace and building cluster-aware clients and informers on it.
package kcp

import (
	"context"
	"fmt"
	"strings"
	"time"

	kcpclientset "github.com/kcp-dev/kcp/sdk/client/clientset/versioned/cluster"
	"github.com/kcp-dev/logicalcluster/v3"
	"go.uber.org/zap"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
)

// VirtualWorkspaceURLs returns the URLs of the APIExport's virtual
// workspace, one per shard, from its APIExportEndpointSlice (kcp creates
// the slice with the export's name). kcp lists a shard only once a
// workspace on it binds the export, so this waits for the first binding.
func VirtualWorkspaceURLs(ctx context.Context, log *zap.SugaredLogger, client kcpclientset.ClusterInterface, provider logicalcluster.Path, export string) ([]string, error) {
	var urls []string
	logged := false
	err := wait.PollUntilContextCancel(ctx, time.Second, true, func(ctx context.Context) (bool, error) {
		slice, err := client.Cluster(provider).ApisV1alpha1().APIExportEndpointSlices().Get(ctx, export, metav1.GetOptions{})
		if err != nil {
			log.Infow("waiting for APIExportEndpointSlice", "workspace", provider.String(), "name", export, "error", err)
			return false, nil
		}
		urls = urls[:0]
		for _, ep := range slice.Status.APIExportEndpoints {
			urls = append(urls, ep.URL)
		}
		if len(urls) == 0 && !logged {
			log.Infow("APIExportEndpointSlice has no endpoint yet: no workspace binds the export", "workspace", provider.String(), "name", export)
			logged = true
		}
		return len(urls) > 0, nil
	})
	if err != nil {
		return nil, fmt.Errorf("virtual workspace of APIExport %s|%s: %w", provider, export, err)
	}
	return urls, nil
}

// ForVirtualWorkspace is cfg pointed at a virtual workspace URL; cluster-
// aware clients add /clusters/<name> themselves.
func ForVirtualWorkspace(cfg *rest.Config, url string) *rest.Config {
	vw := rest.CopyConfig(cfg)
	vw.Host = url
	vw.APIPath = ""
	return vw
}

// ForCluster is cfg (of a virtual workspace or kcp's base URL) scoped to
// one logical cluster, for typed clients that are not cluster-aware.
func ForCluster(cfg *rest.Config, cluster logicalcluster.Name) *rest.Config {
	scoped := rest.CopyConfig(cfg)
	scoped.Host = strings.TrimSuffix(scoped.Host, "/") + cluster.Path().RequestPath()
	return scoped
}
