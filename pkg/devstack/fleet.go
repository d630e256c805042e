package devstack

import (
	"context"
	"fmt"
	"os"

	fleetv1alpha1 "github.com/pipelines-service/pipelines-service/apis/fleet/v1alpha1"
	"github.com/pipelines-service/pipelines-service/pkg/provider"
)

// registerWorkloadClusters registers every workload cluster of the stack
// in the provider workspace (a WorkloadCluster with its labels and a
// Secret with its admin kubeconfig), as a platform operator would.
func (s *Stack) registerWorkloadClusters(ctx context.Context) error {
	clients, err := s.providerClients()
	if err != nil {
		return err
	}
	for _, wc := range s.cfg.WorkloadClusters() {
		if err := s.registerWorkloadCluster(ctx, clients, wc, fleetv1alpha1.ClusterLimits{}); err != nil {
			return componentErr("kcp provider", s.cfg.LogFile("kcp"), err)
		}
	}
	return nil
}

func (s *Stack) registerWorkloadCluster(ctx context.Context, clients provider.Clients, wc WorkloadCluster, limits fleetv1alpha1.ClusterLimits) error {
	kubeconfig, err := os.ReadFile(s.cfg.WorkloadClusterKubeconfig(wc.Name))
	if err != nil {
		return fmt.Errorf("workload cluster %s: %w", wc.Name, err)
	}
	return provider.RegisterWorkloadCluster(ctx, clients, providerPath(), wc.Name, wc.Labels, kubeconfig, limits)
}

// SetWorkloadClusterLimits registers one of the stack's workload clusters
// again with other limits (Up registers them without limits).
func (s *Stack) SetWorkloadClusterLimits(ctx context.Context, name string, limits fleetv1alpha1.ClusterLimits) error {
	wc, err := s.cfg.workloadCluster(name)
	if err != nil {
		return err
	}
	clients, err := s.providerClients()
	if err != nil {
		return err
	}
	return s.registerWorkloadCluster(ctx, clients, wc, limits)
}

// SetTenantPolicy sets the platform's policy of a tenant workspace (its
// logical cluster name, or "default").
func (s *Stack) SetTenantPolicy(ctx context.Context, workspace string, spec fleetv1alpha1.TenantPolicySpec) error {
	clients, err := s.providerClients()
	if err != nil {
		return err
	}
	return provider.SetTenantPolicy(ctx, clients, providerPath(), workspace, spec)
}

// DeleteTenantPolicy deletes the platform's policy of a tenant workspace.
func (s *Stack) DeleteTenantPolicy(ctx context.Context, workspace string) error {
	clients, err := s.providerClients()
	if err != nil {
		return err
	}
	return provider.DeleteTenantPolicy(ctx, clients, providerPath(), workspace)
}
