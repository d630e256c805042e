// Package kcp holds the controller's kcp plumbing: finding the APIExport
// virtual workspace and building cluster-aware clients and informers on it.
package kcp

import (
	"context"
	"fmt"
	"strings"
	"time"

	apisv1alpha1 "github.com/kcp-dev/kcp/sdk/apis/apis/v1alpha1"
	kcpclientset "github.com/kcp-dev/kcp/sdk/client/clientset/versioned/cluster"
	"github.com/kcp-dev/logicalcluster/v3"
	"go.uber.org/zap"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
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

// TenantShards are the export's virtual workspaces as one client
// (Shards): it waits for the first endpoint (VirtualWorkspaceURLs), then
// follows the endpoint slice until ctx ends, so that shards the export
// comes to be served on, or stops being served on, are watched or
// dropped while the controller runs.
func TenantShards(ctx context.Context, log *zap.SugaredLogger, base *rest.Config, provider logicalcluster.Path, export string) (*Shards, error) {
	client, err := kcpclientset.NewForConfig(base)
	if err != nil {
		return nil, err
	}
	urls, err := VirtualWorkspaceURLs(ctx, log, client, provider, export)
	if err != nil {
		return nil, err
	}
	shards, err := NewShards(base, urls, log)
	if err != nil {
		return nil, err
	}
	slices := client.Cluster(provider).ApisV1alpha1().APIExportEndpointSlices()
	byName := fields.OneTermEqualSelector("metadata.name", export).String()
	informer := cache.NewSharedIndexInformer(&cache.ListWatch{
		ListFunc: func(opts metav1.ListOptions) (runtime.Object, error) {
			opts.FieldSelector = byName
			return slices.List(ctx, opts)
		},
		WatchFunc: func(opts metav1.ListOptions) (watch.Interface, error) {
			opts.FieldSelector = byName
			return slices.Watch(ctx, opts)
		},
	}, &apisv1alpha1.APIExportEndpointSlice{}, 0, cache.Indexers{})
	follow := func(obj any) {
		slice, ok := obj.(*apisv1alpha1.APIExportEndpointSlice)
		if !ok {
			return
		}
		var urls []string
		for _, ep := range slice.Status.APIExportEndpoints {
			urls = append(urls, ep.URL)
		}
		if _, err := shards.SetURLs(urls); err != nil {
			log.Warnw("keeping the virtual workspaces watched", "urls", shards.URLs(), "error", err)
		}
	}
	if _, err := informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    follow,
		UpdateFunc: func(_, obj any) { follow(obj) },
	}); err != nil {
		return nil, err
	}
	go informer.Run(ctx.Done())
	return shards, nil
}
