package gateway

import (
	"context"
	"crypto/sha256"
	"fmt"
	"sort"
	"sync"
	"time"

	"go.uber.org/zap"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corev1listers "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"

	fleetv1alpha1 "github.com/pipelines-service/pipelines-service/apis/fleet/v1alpha1"
	"github.com/pipelines-service/pipelines-service/pkg/fleet"
)

// workloadCluster is a registered workload cluster the gateway reads pods
// and logs from.
type workloadCluster struct {
	name   string
	client kubernetes.Interface
}

// workloadClusters are the fleet's registered clusters, read from the
// provider workspace (WorkloadCluster objects and their kubeconfig
// Secrets), with a client each. Unlike the controller's fleet it keeps no
// informers on the clusters: the gateway is stateless, each request asks
// the clusters it needs.
type workloadClusters struct {
	log      *zap.SugaredLogger
	clusters cache.SharedIndexInformer
	secrets  corev1listers.SecretLister
	start    []interface{ Start(<-chan struct{}) }
	synced   []cache.InformerSynced

	mu      sync.Mutex
	clients map[string]cachedClient // by cluster name
}

type cachedClient struct {
	digest string
	client kubernetes.Interface
}

func newWorkloadClusters(provider *rest.Config, log *zap.SugaredLogger) (*workloadClusters, error) {
	dyn, err := dynamic.NewForConfig(provider)
	if err != nil {
		return nil, err
	}
	kube, err := kubernetes.NewForConfig(provider)
	if err != nil {
		return nil, err
	}
	dynFactory := dynamicinformer.NewDynamicSharedInformerFactory(dyn, 0)
	kubeFactory := informers.NewSharedInformerFactory(kube, 0)
	clusters := dynFactory.ForResource(fleetv1alpha1.WorkloadClustersResource).Informer()
	secrets := kubeFactory.Core().V1().Secrets()
	return &workloadClusters{
		log:      log,
		clusters: clusters,
		secrets:  secrets.Lister(),
		start:    []interface{ Start(<-chan struct{}) }{dynFactory, kubeFactory},
		synced:   []cache.InformerSynced{clusters.HasSynced, secrets.Informer().HasSynced},
		clients:  map[string]cachedClient{},
	}, nil
}

func (w *workloadClusters) run(ctx context.Context) error {
	for _, f := range w.start {
		f.Start(ctx.Done())
	}
	if !cache.WaitForCacheSync(ctx.Done(), w.synced...) {
		return fmt.Errorf("informers on the provider workspace did not sync")
	}
	return nil
}

// all returns a client per registered cluster, sorted by name. A cluster
// whose kubeconfig cannot be read is left out (and logged).
func (w *workloadClusters) all() []workloadCluster {
	var out []workloadCluster
	for _, obj := range w.clusters.GetStore().List() {
		wc, err := fleet.DecodeCluster(obj)
		if err != nil {
			w.log.Errorw("WorkloadCluster does not decode", "error", err)
			continue
		}
		client, err := w.client(wc)
		if err != nil {
			w.log.Errorw("no client for workload cluster", "cluster", wc.Name, "error", err)
			continue
		}
		out = append(out, workloadCluster{name: wc.Name, client: client})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

func (w *workloadClusters) client(wc *fleetv1alpha1.WorkloadCluster) (kubernetes.Interface, error) {
	kubeconfig, err := fleet.Kubeconfig(wc, w.secrets)
	if err != nil {
		return nil, err
	}
	digest := fmt.Sprintf("%x", sha256.Sum256(kubeconfig))
	w.mu.Lock()
	defer w.mu.Unlock()
	if c, ok := w.clients[wc.Name]; ok && c.digest == digest {
		return c.client, nil
	}
	rc, err := clientcmd.RESTConfigFromKubeConfig(kubeconfig)
	if err != nil {
		return nil, err
	}
	// Log follows and watches last as long as their clients want; a
	// request timeout would cut them.
	rc.Timeout = 0
	rc.QPS, rc.Burst = 100, 200
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, err
	}
	w.clients[wc.Name] = cachedClient{digest: digest, client: client}
	return client, nil
}

// requestTimeout bounds a single get or list on a workload cluster.
const requestTimeout = 20 * time.Second
