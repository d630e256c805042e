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
	"taskruns/beta/git-resolver.yaml":                           "network: git resolver fetches from github.com",
	"taskruns/beta/hub-resolver.yaml":                           "network: hub resolver fetches from artifacthub.io",
	"taskruns/beta/bundles-resolver.yaml":                       "network: bundles resolver pulls from gcr.io",
	"taskruns/beta/stepaction-git-resolver.yaml":                "network: git resolver fetches a StepAction from github.com",
	"pipelineruns/beta/git-resolver.yaml":                       "network: git resolver fetches from github.com",
	"pipelineruns/beta/http-resolver.yaml":                      "network: http resolver fetches from raw.githubusercontent.com",
	"pipelineruns/beta/http-resolver-credentials.yaml":          "network: http resolver fetches from raw.githubusercontent.com",
	"taskruns/alpha/step-stream-results.yaml":                   "network: crane digest queries mirror.gcr.io",
	"taskruns/alpha/step-stream-volumes.yaml":                   "network: crane digest queries mirror.gcr.io",
	"taskruns/alpha/step-stream-workspace.yaml":                 "network: crane digest queries mirror.gcr.io",
	"pipelineruns/pipelinerun.yaml":                             "network: clones github.com/GoogleContainerTools/skaffold, pushes with kaniko",
	"taskruns/dind-sidecar.yaml":                                "image: docker-in-docker (a privileged docker daemon) is not built here",

	"pipelineruns/pipelinerun-with-final-tasks.yaml": "network: clones from github.com",
}
