// Package v1alpha1 is the fleet API of the provider workspace: the
// workload clusters runs are placed on, and the platform's policy per
// tenant workspace.
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Group is the API group of the fleet API.
const Group = "fleet.pipelines-service.dev"

// SchemeGroupVersion is the group version of this package.
var SchemeGroupVersion = schema.GroupVersion{Group: Group, Version: "v1alpha1"}

// Resources of the fleet API.
var (
	WorkloadClustersResource = SchemeGroupVersion.WithResource("workloadclusters")
	TenantPoliciesResource   = SchemeGroupVersion.WithResource("tenantpolicies")
)

// WorkloadCluster registers a Kubernetes cluster runs can be placed on.
// Its labels (e.g. region) are what placement selectors match.
type WorkloadCluster struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   WorkloadClusterSpec   `json:"spec"`
	Status WorkloadClusterStatus `json:"status,omitempty"`
}

// WorkloadClusterSpec says how to reach a workload cluster and how much
// it takes.
type WorkloadClusterSpec struct {
	// KubeconfigSecretRef is a Secret in the provider workspace holding
	// the kubeconfig the controller uses on the cluster.
	KubeconfigSecretRef SecretKeyRef `json:"kubeconfigSecretRef"`
	// Limits bound what the controller runs on the cluster.
	Limits ClusterLimits `json:"limits,omitempty"`
	// Unschedulable stops new placements; what runs there goes on.
	Unschedulable bool `json:"unschedulable,omitempty"`
}

// SecretKeyRef is a key of a Secret.
type SecretKeyRef struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Key defaults to "kubeconfig".
	Key string `json:"key,omitempty"`
}

// ClusterLimits bound a workload cluster's share of the work.
type ClusterLimits struct {
	// MaxRunningTaskRuns is the number of TaskRuns with a pod on the
	// cluster at once; 0 means no limit.
	MaxRunningTaskRuns int `json:"maxRunningTaskRuns,omitempty"`
}

// Condition types of a WorkloadCluster.
const (
	// ConditionReachable: the cluster's apiserver answered the last
	// heartbeat.
	ConditionReachable = "Reachable"
	// ConditionReady: reachable with at least one Ready node, so runs can
	// be placed there.
	ConditionReady = "Ready"
)

// WorkloadClusterStatus is kept current by the controller's heartbeat.
type WorkloadClusterStatus struct {
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// ReadyNodes is the number of Ready nodes.
	ReadyNodes int `json:"readyNodes"`
	// RunningPods is the number of the service's pods not yet finished.
	RunningPods int `json:"runningPods"`
	// UserNamespaces says every Ready node runs pods in user namespaces:
	// tenants' pods there run with hostUsers: false, so that root in a step
	// is an unprivileged user on the node.
	UserNamespaces bool `json:"userNamespaces,omitempty"`
	// LastHeartbeatTime is when the cluster last answered.
	LastHeartbeatTime *metav1.Time `json:"lastHeartbeatTime,omitempty"`
}

// DefaultTenantPolicy is the name of the policy of workspaces that have
// none of their own.
const DefaultTenantPolicy = "default"

// TenantPolicy is the platform's policy for one tenant workspace: its
// name is the workspace's logical cluster name, or "default".
type TenantPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec TenantPolicySpec `json:"spec"`
}

// TenantPolicySpec bounds a tenant workspace's share of the fleet.
type TenantPolicySpec struct {
	// MaxRunningTaskRuns is the number of the workspace's TaskRuns that
	// may run at once; more wait in a fair queue. 0 means no limit.
	MaxRunningTaskRuns int `json:"maxRunningTaskRuns,omitempty"`
	// ClusterSelector restricts the workload clusters the workspace's
	// runs are placed on.
	ClusterSelector *metav1.LabelSelector `json:"clusterSelector,omitempty"`
	// PodSecurity is the Kubernetes Pod Security level the workspace's
	// pods run at: "restricted", "baseline" (the default when empty) or
	// "privileged". The controller refuses a TaskRun whose pod breaks it
	// (reason PodSecurityViolation) and the workload namespaces enforce
	// it. Only the platform writes TenantPolicies: a tenant cannot raise
	// its own level.
	PodSecurity string `json:"podSecurity,omitempty"`
}
