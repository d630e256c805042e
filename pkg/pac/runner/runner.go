// Package runner runs Pipelines as Code's own flow on verified events
// (Handle) and reports finished runs to the forge (Report), each time on
// the clients of the Repository's workspace alone.
package runner

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"

	giteasdk "code.gitea.io/sdk/gitea"
	"github.com/kcp-dev/logicalcluster/v3"
	"github.com/openshift-pipelines/pipelines-as-code/pkg/apis/pipelinesascode/v1alpha1"
	"github.com/openshift-pipelines/pipelines-as-code/pkg/events"
	pacclient "github.com/openshift-pipelines/pipelines-as-code/pkg/generated/clientset/versioned"
	"github.com/openshift-pipelines/pipelines-as-code/pkg/kubeinteraction"
	"github.com/openshift-pipelines/pipelines-as-code/pkg/params"
	"github.com/openshift-pipelines/pipelines-as-code/pkg/params/clients"
	"github.com/openshift-pipelines/pipelines-as-code/pkg/params/info"
	"github.com/openshift-pipelines/pipelines-as-code/pkg/params/settings"
	"github.com/openshift-pipelines/pipelines-as-code/pkg/pipelineascode"
	"github.com/openshift-pipelines/pipelines-as-code/pkg/provider/gitea"
	tektonclient "github.com/tektoncd/pipeline/pkg/client/clientset/versioned"
	"go.uber.org/zap"
	"k8s.io/client-go/kubernetes"

	"github.com/pipelines-service/pipelines-service/pkg/pac"
)

// Workspaces gives the clients of one tenant workspace.
type Workspaces interface {
	Kube(cluster logicalcluster.Name) (kubernetes.Interface, error)
	Tekton(cluster logicalcluster.Name) (tektonclient.Interface, error)
	PipelinesAsCode(cluster logicalcluster.Name) (pacclient.Interface, error)
}

// Egress checks the forge URLs a tenant's Repository names, and makes
// the HTTP clients that reach them (the platform's allow-list, the same
// as remote resolution's).
type Egress interface {
	CheckURL(component, raw string) error
	Client(component string, timeout time.Duration) *http.Client
}

// component names this package in egress errors.
const component = "pipelines-as-code"

// Options configure a Runner.
type Options struct {
	Workspaces Workspaces
	Egress     Egress
	// PodLogs reads a step's log of a TaskRun's pod on its workload
	// cluster (failure snippets).
	PodLogs PodLogs
	// ConsoleURL is the front door's base URL: links to runs on the
	// forge point there.
	ConsoleURL string
	// Timeout caps the processing of one event (default 5m).
	Timeout time.Duration
	Log     *zap.SugaredLogger
}

// Runner processes verified events with Pipelines as Code's flow, and
// reports finished runs, each time on the clients of the Repository's
// workspace.
type Runner struct {
	workspaces Workspaces
	egress     Egress
	podLogs    PodLogs
	console    string
	timeout    time.Duration
	log        *zap.SugaredLogger
}

// New returns a Runner.
func New(opts Options) *Runner {
	if opts.Timeout == 0 {
		opts.Timeout = 5 * time.Minute
	}
	return &Runner{workspaces: opts.Workspaces, egress: opts.Egress, podLogs: opts.PodLogs, console: opts.ConsoleURL, timeout: opts.Timeout, log: opts.Log}
}

// Handle runs Pipelines as Code on one verified event. What goes wrong is
// PaC's to report (an event on the Repository, a status on the forge);
// here it is logged.
func (r *Runner) Handle(ctx context.Context, ev pac.Event) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	log := r.log.With("workspace", ev.Claim.Workspace, "repository", ev.Claim.Key, "event", ev.Type, "delivery", ev.Delivery)
	defer func() {
		if p := recover(); p != nil {
			log.Errorw("Pipelines as Code panicked on an event", "panic", p)
		}
	}()
	if err := r.process(ctx, log, ev); err != nil {
		log.Warnw("event not processed", "error", err)
	}
}

func (r *Runner) process(ctx context.Context, log *zap.SugaredLogger, ev pac.Event) error {
	cluster := logicalcluster.Name(ev.Claim.Workspace)
	run, kint, err := r.pacRun(cluster, log)
	if err != nil {
		return err
	}
	pacInfo := run.Info.GetPacOpts()
	vcx := r.provider(log, &pacInfo)
	req := &http.Request{Method: http.MethodPost, Header: ev.Header, URL: &url.URL{Path: pac.PathPrefix}}
	isGitea, process, _, reason, err := vcx.Detect(req, string(ev.Payload), log)
	if err != nil {
		return fmt.Errorf("detect: %w", err)
	}
	if !isGitea || !process {
		log.Infow("event skipped", "reason", reason)
		return nil
	}
	event, err := vcx.ParsePayload(ctx, run, req, string(ev.Payload))
	if err != nil {
		return fmt.Errorf("parse payload: %w", err)
	}
	event.Request = &info.Request{Header: ev.Header, Payload: bytes.TrimSpace(ev.Payload)}
	log.Infow("running Pipelines as Code", "trigger", event.EventType, "sha", event.SHA, "sender", event.Sender)
	// The global Repository is empty: a tenant's Repository is the whole
	// configuration (no namespace of the platform's is ever read).
	p := pipelineascode.NewPacs(event, vcx, run, &pacInfo, kint, log, &v1alpha1.Repository{})
	return p.Run(ctx)
}

// pacRun is PaC's run context on the clients of one workspace: its
// Kubernetes (secrets, events), Tekton and Repository clients, the
// platform's egress client for remote tasks, and the service's settings.
func (r *Runner) pacRun(cluster logicalcluster.Name, log *zap.SugaredLogger) (*params.Run, *workspaceInteraction, error) {
	kube, err := r.workspaces.Kube(cluster)
	if err != nil {
		return nil, nil, err
	}
	tekton, err := r.workspaces.Tekton(cluster)
	if err != nil {
		return nil, nil, err
	}
	repos, err := r.workspaces.PipelinesAsCode(cluster)
	if err != nil {
		return nil, nil, err
	}
	run := params.New()
	run.Clients = clients.Clients{Kube: kube, Tekton: tekton, PipelineAsCode: repos, HTTP: *r.egress.Client(component, time.Minute), Log: log}
	run.Clients.SetConsoleUI(&console{base: r.console, workspace: cluster})
	run.Info.Pac = &info.PacOpts{Settings: Settings()}
	kint, err := kubeinteraction.NewKubernetesInteraction(run)
	if err != nil {
		return nil, nil, err
	}
	return run, &workspaceInteraction{Interaction: kint, cluster: cluster, logs: r.podLogs}, nil
}

// Settings are PaC's settings for every tenant: upstream's defaults, with
// hub catalogs off (nothing here reaches a hub) and /ok-to-test valid for
// the commented SHA only (upstream's safe default, stated).
func Settings() settings.Settings {
	s := settings.DefaultSettings()
	s.HubCatalogs.Range(func(k, _ any) bool { s.HubCatalogs.Delete(k); return true })
	s.RememberOKToTest = false
	s.ApplicationName = "Pipelines as Code CI"
	return s
}

// provider is PaC's Gitea provider on the platform's egress.
func (r *Runner) provider(log *zap.SugaredLogger, pacInfo *info.PacOpts) *giteaProvider {
	g := &giteaProvider{Provider: &gitea.Provider{}, egress: r.egress}
	g.SetLogger(log)
	g.SetPacInfo(pacInfo)
	return g
}

// giteaProvider is PaC's Gitea provider whose API client goes through the
// platform's egress: the Repository's git_provider.url is the tenant's to
// write, so it must be an allowed host, and every request (redirects
// included) is checked when dialled.
type giteaProvider struct {
	*gitea.Provider
	egress Egress
}

// SetClient checks the forge URL, lets PaC keep what it needs of the
// Repository and the event, then replaces PaC's API client (on Go's
// default transport) with one on the egress client.
func (g *giteaProvider) SetClient(ctx context.Context, run *params.Run, ev *info.Event, repo *v1alpha1.Repository, emitter *events.EventEmitter) error {
	if err := g.egress.CheckURL(component, ev.Provider.URL); err != nil {
		return err
	}
	if err := g.Provider.SetClient(ctx, run, ev, repo, emitter); err != nil {
		return err
	}
	client, err := giteasdk.NewClient(ev.Provider.URL, giteasdk.SetToken(ev.Provider.Token),
		giteasdk.SetHTTPClient(g.egress.Client(component, time.Minute)))
	if err != nil {
		return fmt.Errorf("gitea client for %s: %w", ev.Provider.URL, err)
	}
	g.SetGiteaClient(client)
	return nil
}
