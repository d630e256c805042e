package gateway

import (
	"strings"

	"github.com/pipelines-service/pipelines-service/pkg/workload"
)

// Fields of a workload pod a tenant does not see: what leads to the
// workload cluster (its namespace name, the node's addresses) or is the
// service's own bookkeeping. The node's name stays: `kubectl get pods -o
// wide` shows it, as it shows the pod's IP.
var (
	hiddenLabels      = []string{workload.LabelClusterName, workload.LabelNamespace, workload.LabelTaskRunUID}
	hiddenAnnotations = []string{workload.AnnotationClusterNS, workload.AnnotationTaskRun}
	hiddenStatus      = []string{"hostIP", "hostIPs"}
)

// tenantView turns a workload pod (a Pod, or the PartialObjectMetadata of
// a Table row) into what the workspace's tenant sees, in place. It reports
// false for an object that is not the workspace's: the caller drops it.
// The tenant namespace comes from the pod's own annotation, which the
// controller writes, so that all-namespace lists translate too.
func tenantView(obj map[string]any, workspace string, resourceVersion string) bool {
	meta, _ := obj["metadata"].(map[string]any)
	if meta == nil {
		return false
	}
	annotations, _ := meta["annotations"].(map[string]any)
	owner, _ := annotations[workload.AnnotationClusterNS].(string)
	cluster, namespace, ok := strings.Cut(owner, "/")
	if !ok || cluster != workspace || namespace == "" {
		return false
	}
	meta["namespace"] = namespace
	delete(meta, "managedFields")
	delete(meta, "selfLink")
	if resourceVersion != "" {
		meta["resourceVersion"] = resourceVersion
	}
	if labels, _ := meta["labels"].(map[string]any); labels != nil {
		for _, k := range hiddenLabels {
			delete(labels, k)
		}
		// Tekton's pod builder labels its pods as managed by Tekton; the
		// controller relabels them for the workload cluster.
		if labels[workload.LabelManagedBy] == workload.ManagedByValue {
			labels[workload.LabelManagedBy] = "tekton-pipelines"
		}
	}
	for _, k := range hiddenAnnotations {
		delete(annotations, k)
	}
	if len(annotations) == 0 {
		delete(meta, "annotations")
	}
	if status, _ := obj["status"].(map[string]any); status != nil {
		for _, k := range hiddenStatus {
			delete(status, k)
		}
	}
	return true
}

// tableView translates the rows of a Table of workload pods, dropping
// rows that are not the workspace's (or carry no object to tell).
// withObjects false removes the row objects the client did not ask for.
func tableView(table map[string]any, workspace, resourceVersion string, withObjects bool) {
	rows, _ := table["rows"].([]any)
	kept := make([]any, 0, len(rows))
	for _, r := range rows {
		row, _ := r.(map[string]any)
		obj, _ := row["object"].(map[string]any)
		if row == nil || obj == nil || !tenantView(obj, workspace, resourceVersion) {
			continue
		}
		if !withObjects {
			delete(row, "object")
		}
		kept = append(kept, row)
	}
	table["rows"] = kept
}

// isTable says whether a decoded response is a meta.k8s.io Table.
func isTable(obj map[string]any) bool {
	kind, _ := obj["kind"].(string)
	apiVersion, _ := obj["apiVersion"].(string)
	return kind == "Table" && strings.HasPrefix(apiVersion, "meta.k8s.io/")
}
