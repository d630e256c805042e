// Package tenantconfig gives every tenant workspace its own Tekton
// configuration. A tenant sets Tekton's feature flags and defaults as on
// any Tekton cluster, with the ConfigMaps feature-flags and config-defaults
// in the namespace tekton-pipelines of its workspace; the platform's
// configuration fills in what the tenant does not set and pins what the
// service decides (see lock).
package tenantconfig

import (
	"context"
	"fmt"

	kcpcache "github.com/kcp-dev/apimachinery/v2/pkg/cache"
	kcpdynamic "github.com/kcp-dev/client-go/dynamic"
	kcpdynamicinformer "github.com/kcp-dev/client-go/dynamic/dynamicinformer"
	kcpinformers "github.com/kcp-dev/client-go/informers"
	"github.com/kcp-dev/logicalcluster/v3"
	"github.com/tektoncd/pipeline/pkg/apis/config"
	resolverconfig "github.com/tektoncd/pipeline/pkg/apis/config/resolver"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/cache"

	"github.com/pipelines-service/pipelines-service/pkg/resolution"
)

// Namespace is where a tenant keeps its Tekton configuration, as on an
// upstream Tekton installation.
const Namespace = "tekton-pipelines"

// ConfigMapsResource is the claimed resource the configuration is read from.
var ConfigMapsResource = corev1.SchemeGroupVersion.WithResource("configmaps")

// Store reads tenants' configuration from their workspaces.
type Store struct {
	managedBy string
	// resolverDefaults are the platform's resolver ConfigMaps' data, by
	// name: what a workspace without its own gets.
	resolverDefaults map[string]map[string]string
	// informers watch the configuration ConfigMaps by name in every tenant
	// workspace (kcp's virtual workspace ignores namespace field selectors
	// on wildcard lists; the namespace is checked on read).
	informers map[string]kcpinformers.GenericClusterInformer
}

// New makes a Store reading through the virtual workspace client tenants;
// managedBy is the app.kubernetes.io/managed-by value of the pods the
// service makes; resolverDefaults are the platform's resolver ConfigMaps'
// data by name. Start it before use.
func New(tenants kcpdynamic.ClusterInterface, managedBy string, resolverDefaults map[string]map[string]string) *Store {
	s := &Store{managedBy: managedBy, resolverDefaults: resolverDefaults, informers: map[string]kcpinformers.GenericClusterInformer{}}
	indexers := cache.Indexers{
		kcpcache.ClusterIndexName:             kcpcache.ClusterIndexFunc,
		kcpcache.ClusterAndNamespaceIndexName: kcpcache.ClusterAndNamespaceIndexFunc,
	}
	names := []string{config.GetFeatureFlagsConfigName(), config.GetDefaultsConfigName(), RetentionConfigName, resolverconfig.GetFeatureFlagsConfigName()}
	for _, name := range resolution.ConfigMapOf {
		names = append(names, name)
	}
	for _, name := range names {
		byName := fields.OneTermEqualSelector("metadata.name", name).String()
		s.informers[name] = kcpdynamicinformer.NewFilteredDynamicInformer(tenants, ConfigMapsResource, 0, indexers,
			func(o *metav1.ListOptions) { o.FieldSelector = byName })
	}
	return s
}

// Start runs the informers until ctx ends and waits for their caches.
func (s *Store) Start(ctx context.Context) error {
	var synced []cache.InformerSynced
	for _, inf := range s.informers {
		go inf.Informer().Run(ctx.Done())
		synced = append(synced, inf.Informer().HasSynced)
	}
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		return fmt.Errorf("tenant configuration informers did not sync")
	}
	return nil
}

// Config returns the Tekton configuration of one workspace. A ConfigMap the
// tenant wrote that Tekton cannot parse is an error naming it.
func (s *Store) Config(cluster logicalcluster.Name) (*config.Config, error) {
	flags, err := s.read(cluster, config.GetFeatureFlagsConfigName())
	if err != nil {
		return nil, err
	}
	defaults, err := s.read(cluster, config.GetDefaultsConfigName())
	if err != nil {
		return nil, err
	}
	return FromConfigMaps(flags, defaults, s.managedBy)
}

// FromConfigMaps is the configuration of a workspace with the given
// feature-flags and config-defaults ConfigMaps (nil: not set).
func FromConfigMaps(flags, defaults *corev1.ConfigMap, managedBy string) (*config.Config, error) {
	cfg := Platform(managedBy)
	if flags != nil {
		ff, err := config.NewFeatureFlagsFromConfigMap(flags)
		if err != nil {
			return nil, fmt.Errorf("ConfigMap %s/%s: %w", Namespace, flags.Name, err)
		}
		cfg.FeatureFlags = ff
	}
	if defaults != nil {
		d, err := config.NewDefaultsFromConfigMap(defaults)
		if err != nil {
			return nil, fmt.Errorf("ConfigMap %s/%s: %w", Namespace, defaults.Name, err)
		}
		d.DefaultManagedByLabelValue = managedBy
		cfg.Defaults = d
	}
	lock(cfg.FeatureFlags)
	return cfg, nil
}

// Platform is the configuration of a workspace that sets nothing:
// Tekton's defaults with the service's locked flags.
func Platform(managedBy string) *config.Config {
	cfg := config.FromContextOrDefaults(context.Background())
	cfg.Defaults.DefaultManagedByLabelValue = managedBy
	lock(cfg.FeatureFlags)
	return cfg
}

// lock pins the flags the service decides for every tenant:
//   - no credential init: tenants' service-account secrets are not carried;
//   - no affinity assistant (coschedule): co-location comes from node-local
//     volumes on the workload cluster instead of StatefulSets;
//   - no native sidecars: Tekton reads that flag from a context without the
//     tenant's configuration in places, so it cannot differ per tenant;
//   - pods are deleted on cancel and timeout (keep-pod-on-cancel off);
//   - no SPIRE and no trusted-resources verification: neither is served;
//   - no injected sidecars: the flag describes the cluster pods run on,
//     and the workload clusters are the platform's, with nothing that
//     injects containers into pods. So a step starts as soon as its pod
//     runs, instead of waiting for the tekton.dev/ready annotation to
//     reach it through the downward API (which the kubelet may deliver
//     only at its next periodic sync, a minute later). A Task with
//     sidecars still waits for them.
func lock(ff *config.FeatureFlags) {
	ff.RunningInEnvWithInjectedSidecars = false
	ff.DisableCredsInit = true
	ff.Coschedule = config.CoscheduleDisabled
	ff.EnableKubernetesSidecar = false
	ff.EnableKeepPodOnCancel = false
	ff.EnforceNonfalsifiability = config.EnforceNonfalsifiabilityNone
	ff.VerificationNoMatchPolicy = config.IgnoreNoMatchPolicy
}

// WithConfig returns ctx carrying the workspace's configuration. When the
// tenant's configuration is invalid, ctx carries the platform's and the
// error says what is wrong, for the run to report.
func (s *Store) WithConfig(ctx context.Context, cluster logicalcluster.Name) (context.Context, error) {
	cfg, err := s.Config(cluster)
	if err != nil {
		return config.ToContext(ctx, Platform(s.managedBy)), err
	}
	return config.ToContext(ctx, cfg), nil
}

// RetentionConfigName is the ConfigMap upstream's Results retention agent
// reads (runAt, defaultRetention, policies); a tenant sets its own in the
// same namespace as Tekton's configuration.
const RetentionConfigName = "tekton-results-config-results-retention-policy"

// Retention is the tenant's retention ConfigMap, nil when it has none.
func (s *Store) Retention(cluster logicalcluster.Name) (*corev1.ConfigMap, error) {
	return s.read(cluster, RetentionConfigName)
}

// ReasonInvalidConfiguration is the reason a run fails with when its
// workspace's Tekton configuration cannot be read.
const ReasonInvalidConfiguration = "InvalidTektonConfiguration"

func (s *Store) read(cluster logicalcluster.Name, name string) (*corev1.ConfigMap, error) {
	return s.readIn(cluster, Namespace, name)
}

func (s *Store) readIn(cluster logicalcluster.Name, namespace, name string) (*corev1.ConfigMap, error) {
	obj, err := s.informers[name].Lister().ByCluster(cluster).ByNamespace(namespace).Get(name)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	cm := &corev1.ConfigMap{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.(*unstructured.Unstructured).Object, cm); err != nil {
		return nil, fmt.Errorf("ConfigMap %s/%s: %w", namespace, name, err)
	}
	return cm, nil
}

// Resolvers is a workspace's resolver configuration: upstream's
// ConfigMaps in tekton-pipelines-resolvers. As upstream, a tenant's
// ConfigMap replaces the platform's of the same name; the hub resolver
// is never enabled (it is not served).
func (s *Store) Resolvers(cluster logicalcluster.Name) (resolution.Config, error) {
	cfg := resolution.Config{Data: map[string]map[string]string{}}
	flags, err := s.readIn(cluster, resolution.ResolversNamespace, resolverconfig.GetFeatureFlagsConfigName())
	if err != nil {
		return cfg, err
	}
	data := s.resolverDefaults[resolverconfig.GetFeatureFlagsConfigName()]
	if flags != nil {
		data = flags.Data
	}
	if cfg.Flags, err = resolverconfig.NewFeatureFlagsFromMap(data); err != nil {
		return cfg, fmt.Errorf("ConfigMap %s/%s: %w", resolution.ResolversNamespace, resolverconfig.GetFeatureFlagsConfigName(), err)
	}
	cfg.Flags.EnableHubResolver = false
	for _, name := range resolution.ConfigMapOf {
		cm, err := s.readIn(cluster, resolution.ResolversNamespace, name)
		if err != nil {
			return cfg, err
		}
		cfg.Data[name] = s.resolverDefaults[name]
		if cm != nil {
			cfg.Data[name] = cm.Data
		}
	}
	return cfg, nil
}
