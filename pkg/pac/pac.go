// Package pac runs Pipelines as Code for every tenant workspace in one
// process: one webhook intake for the whole service (Intake), which checks
// the forge's signature with the Repository's own secret before anything
// else and hands the event to Pipelines as Code's own flow
// (pipelineascode.PacRun: match, resolve .tekton/, fill variables, ACL,
// create PipelineRuns) on clients scoped to the Repository's workspace;
// and the final status of each run back on the forge (pac/runner).
//
// Upstream runs a controller and a watcher per cluster, each reading
// Repositories across all namespaces. Here a Repository is found through
// an Index the controller keeps from its informer on every workspace, a
// URL belongs to one Repository across all workspaces, and each event is
// processed with the clients of one workspace only, so nothing PaC does
// for a tenant can read or write another workspace.
package pac

import "k8s.io/apimachinery/pkg/runtime/schema"

// Repositories is the exported Repository resource.
var Repositories = schema.GroupVersionResource{Group: "pipelinesascode.tekton.dev", Version: "v1alpha1", Resource: "repositories"}

// PathPrefix is the intake's path at the front door: forges post to
// https://<gateway>/pac (one URL for every tenant's repositories).
const PathPrefix = "/pac"

// MaxPayload is the largest event accepted (Gitea's pushes of many
// commits stay far below).
const MaxPayload = 25 << 20

// GitProvider is the only forge served: the stack's and the platform's
// Gitea (PaC's Gitea provider).
const GitProvider = "gitea"
