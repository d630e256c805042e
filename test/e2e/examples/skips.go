//go:build e2e

package examples

// skipped are the examples not run, each with its reason:
//   - "network": the example fetches from the internet (no network here);
//   - "image": it needs an image not built here;
//   - "not served yet": a feature of the service still to build (see the
//     README); these turn into runs as the features land.
var skipped = map[string]string{
	"taskruns/authenticating-git-commands.yaml":                 "network: clones from github.com",
	"taskruns/beta/authenticating-git-commands.yaml":            "network: clones from github.com",
	"taskruns/creds-init-only-mounts-provided-credentials.yaml": "network: git credentials for github.com",
	"taskruns/beta/hub-resolver.yaml":                           "network: hub resolver fetches from artifacthub.io (not served: no hub on the stack)",
	"taskruns/alpha/step-stream-results.yaml":                   "network: crane digest queries mirror.gcr.io",
	"taskruns/alpha/step-stream-volumes.yaml":                   "network: crane digest queries mirror.gcr.io",
	"taskruns/alpha/step-stream-workspace.yaml":                 "network: crane digest queries mirror.gcr.io",
	"pipelineruns/pipelinerun.yaml":                             "network: clones github.com/GoogleContainerTools/skaffold, pushes with kaniko",
	"taskruns/dind-sidecar.yaml":                                "image: docker-in-docker (a privileged docker daemon) is not built here",

	"pipelineruns/pipelinerun-with-final-tasks.yaml": "image: ghcr.io/tektoncd-catalog/git-clone (its /ko-app/git-init) is not built here; clones github.com/tektoncd/community",
}
