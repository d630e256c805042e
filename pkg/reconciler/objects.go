package reconciler

import (
	"encoding/json"
	"errors"
	"fmt"

	kcpcache "github.com/kcp-dev/apimachinery/v2/pkg/cache"
	"github.com/kcp-dev/logicalcluster/v3"
	remoteresource "github.com/tektoncd/pipeline/pkg/remoteresolution/resource"
	"go.uber.org/zap"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// ErrUndecodable marks an object the schema admitted but Tekton's Go types
// cannot read; the reconciler reports it on the object instead of retrying.
var ErrUndecodable = errors.New("does not decode into its Go type")

// Object is a tenant object read for a cluster-aware key.
type Object struct {
	Key             string
	Cluster         logicalcluster.Name
	Namespace, Name string
	Unstructured    *unstructured.Unstructured
	// Log is keyed by the object's workspace, namespace and name (set by
	// Skeleton).
	Log *zap.SugaredLogger
}

// Get reads the object of key from lister and decodes it into into. It
// returns nil when the object is gone, and an error wrapping
// ErrUndecodable (with the object) when into cannot hold it.
func Get(lister kcpcache.GenericClusterLister, key string, into any) (*Object, error) {
	cluster, namespace, name, err := kcpcache.SplitMetaClusterNamespaceKey(key)
	if err != nil {
		return nil, fmt.Errorf("invalid key %q: %w", key, err)
	}
	obj, err := lister.ByCluster(cluster).ByNamespace(namespace).Get(name)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return nil, fmt.Errorf("unexpected object %T for %s", obj, key)
	}
	o := &Object{Key: key, Cluster: cluster, Namespace: namespace, Name: name, Unstructured: u}
	if err := Decode(u, into); err != nil {
		return o, fmt.Errorf("%w: %v", ErrUndecodable, err)
	}
	return o, nil
}

// Decode reads a tenant object into its Go type the way Tekton's admission
// webhook reads it (encoding/json: field names match case-insensitively,
// so "mountpath" is MountPath, as Tekton's own examples rely on). kcp runs
// no Tekton webhook to rewrite such fields.
func Decode(u *unstructured.Unstructured, into any) error {
	data, err := json.Marshal(u.Object)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, into)
}

// Requesters make Tekton's Requester for the runs of one workspace and
// namespace (resolution.Service): remote references are answered there;
// notify is called when a fetch the requester started ends.
type Requesters interface {
	Requester(cluster logicalcluster.Name, namespace, key string, notify func()) remoteresource.Requester
}
