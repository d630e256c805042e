package kcp

import (
	"fmt"
	"net/http"

	"github.com/kcp-dev/logicalcluster/v3"
	pacclient "github.com/openshift-pipelines/pipelines-as-code/pkg/generated/clientset/versioned"
	tektonclient "github.com/tektoncd/pipeline/pkg/client/clientset/versioned"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// WorkspaceClients make typed clients scoped to one tenant workspace
// through the APIExport virtual workspace of the shard that holds it, for
// Tekton library code that takes a clientset (StepAction resolution, PVCs
// from volumeClaimTemplates). They share one HTTP client: every shard's
// virtual workspace is reached with the same identity and CA.
type WorkspaceClients struct {
	shards *Shards
	http   *http.Client
}

// NewWorkspaceClients makes WorkspaceClients on the shards' virtual
// workspaces; nil shards give clients that fail with a clear error.
func NewWorkspaceClients(shards *Shards) (*WorkspaceClients, error) {
	if shards == nil {
		return nil, nil
	}
	httpClient, err := rest.HTTPClientFor(shards.base)
	if err != nil {
		return nil, err
	}
	return &WorkspaceClients{shards: shards, http: httpClient}, nil
}

// config is the controller's identity scoped to cluster at its shard.
func (w *WorkspaceClients) config(cluster logicalcluster.Name) *rest.Config {
	return ForCluster(w.shards.RestConfig(cluster), cluster)
}

// Tekton is a Tekton clientset of one workspace.
func (w *WorkspaceClients) Tekton(cluster logicalcluster.Name) (tektonclient.Interface, error) {
	if w == nil {
		return nil, errNoVirtualWorkspace
	}
	return tektonclient.NewForConfigAndClient(w.config(cluster), w.http)
}

// PipelinesAsCode is a Pipelines as Code clientset of one workspace
// (Repositories).
func (w *WorkspaceClients) PipelinesAsCode(cluster logicalcluster.Name) (pacclient.Interface, error) {
	if w == nil {
		return nil, errNoVirtualWorkspace
	}
	// PaC's generated clientset predates NewForConfigAndClient; client-go
	// caches the transport of an identical TLS configuration.
	return pacclient.NewForConfig(w.config(cluster))
}

// Kube is a Kubernetes clientset of one workspace (the exported and
// claimed core resources).
func (w *WorkspaceClients) Kube(cluster logicalcluster.Name) (kubernetes.Interface, error) {
	if w == nil {
		return nil, errNoVirtualWorkspace
	}
	return kubernetes.NewForConfigAndClient(w.config(cluster), w.http)
}

var errNoVirtualWorkspace = fmt.Errorf("the controller has no virtual workspace client")
