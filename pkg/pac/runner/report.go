package runner

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/kcp-dev/logicalcluster/v3"
	"github.com/openshift-pipelines/pipelines-as-code/pkg/action"
	"github.com/openshift-pipelines/pipelines-as-code/pkg/apis/pipelinesascode/keys"
	"github.com/openshift-pipelines/pipelines-as-code/pkg/apis/pipelinesascode/v1alpha1"
	"github.com/openshift-pipelines/pipelines-as-code/pkg/events"
	"github.com/openshift-pipelines/pipelines-as-code/pkg/formatting"
	"github.com/openshift-pipelines/pipelines-as-code/pkg/kubeinteraction"
	kstatus "github.com/openshift-pipelines/pipelines-as-code/pkg/kubeinteraction/status"
	"github.com/openshift-pipelines/pipelines-as-code/pkg/params"
	"github.com/openshift-pipelines/pipelines-as-code/pkg/params/info"
	"github.com/openshift-pipelines/pipelines-as-code/pkg/params/settings"
	"github.com/openshift-pipelines/pipelines-as-code/pkg/params/triggertype"
	"github.com/openshift-pipelines/pipelines-as-code/pkg/pipelineascode"
	"github.com/openshift-pipelines/pipelines-as-code/pkg/provider"
	"github.com/openshift-pipelines/pipelines-as-code/pkg/secrets"
	pacsort "github.com/openshift-pipelines/pipelines-as-code/pkg/sort"
	tektonv1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	tektonclient "github.com/tektoncd/pipeline/pkg/client/clientset/versioned"
	"go.uber.org/zap"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"knative.dev/pkg/apis"

	"github.com/pipelines-service/pipelines-service/pkg/pac"
)

// snippetLines is how many log lines of a failed step the forge shows
// (upstream's).
const snippetLines = 3

// NeedsReport tells whether pr is a run PaC started that has ended and
// whose final status is not on the forge yet.
func NeedsReport(pr *tektonv1.PipelineRun) bool {
	if pr.GetAnnotations()[keys.GitProvider] != pac.GitProvider || pr.GetLabels()[keys.Repository] == "" {
		return false
	}
	switch pr.GetLabels()[keys.State] {
	case kubeinteraction.StateCompleted, kubeinteraction.StateFailed:
		return false
	}
	return pr.IsDone()
}

// forgeSession is what reporting a run to the forge needs: PaC's run
// context on the run's workspace, the Repository's forge client and the
// event the run was for.
type forgeSession struct {
	run  *params.Run
	kint *workspaceInteraction
	vcx  *giteaProvider
	ev   *info.Event
	repo *v1alpha1.Repository
	log  *zap.SugaredLogger
}

// session connects to the forge of the Repository pr was created for,
// with the Repository's token.
func (r *Runner) session(ctx context.Context, cluster logicalcluster.Name, pr *tektonv1.PipelineRun) (*forgeSession, error) {
	log := r.log.With("workspace", cluster.String(), "namespace", pr.Namespace, "name", pr.Name)
	run, kint, err := r.pacRun(cluster, log)
	if err != nil {
		return nil, err
	}
	repo, err := run.Clients.PipelineAsCode.PipelinesascodeV1alpha1().Repositories(pr.Namespace).Get(ctx, pr.GetLabels()[keys.Repository], metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("repository of the run: %w", err)
	}
	pacInfo := run.Info.GetPacOpts()
	vcx := r.provider(log, &pacInfo)
	ev := eventOf(pr)
	secret := &pipelineascode.SecretFromRepository{K8int: kint, Config: vcx.GetConfig(), Event: ev, Repo: repo,
		WebhookType: pacInfo.WebhookType, Namespace: repo.Namespace, Logger: log}
	if err := secret.Get(ctx); err != nil {
		return nil, fmt.Errorf("forge credentials of the Repository: %w", err)
	}
	if err := vcx.SetClient(ctx, run, ev, repo, events.NewEventEmitter(run.Clients.Kube, log)); err != nil {
		return nil, fmt.Errorf("forge client: %w", err)
	}
	return &forgeSession{run: run, kint: kint, vcx: vcx, ev: ev, repo: repo, log: log}, nil
}

// setState patches the run's PaC state; see patchState.
func (s *forgeSession) setState(ctx context.Context, pr *tektonv1.PipelineRun, state string) error {
	return patchState(ctx, s.log, s.run.Clients.Tekton, pr, state)
}

// patchState patches a run's PaC state (label and annotation) and, when
// it starts, takes it out of pending, as upstream's watcher does.
func patchState(ctx context.Context, log *zap.SugaredLogger, tekton tektonclient.Interface, pr *tektonv1.PipelineRun, state string) error {
	annotations := map[string]string{keys.State: state}
	patch := map[string]any{"metadata": map[string]any{"labels": map[string]string{keys.State: state}, "annotations": annotations}}
	if state == kubeinteraction.StateStarted {
		annotations[keys.SCMReportingPLRStarted] = "true"
		patch["spec"] = map[string]any{"status": ""}
	}
	_, err := action.PatchPipelineRun(ctx, log, state+" state", tekton, pr, patch)
	return err
}

// Start starts a run PaC queued (its Repository's concurrency_limit),
// once the admission lets it: out of pending, state started, and an in
// progress status on the forge.
func (r *Runner) Start(ctx context.Context, cluster logicalcluster.Name, pr *tektonv1.PipelineRun) error {
	s, err := r.session(ctx, cluster, pr)
	if err != nil {
		return err
	}
	if err := s.setState(ctx, pr, kubeinteraction.StateStarted); err != nil {
		return err
	}
	ui := s.run.Clients.ConsoleUI()
	mt := formatting.MessageTemplate{PipelineRunName: pr.Name, Namespace: pr.Namespace, ConsoleName: ui.GetName(), ConsoleURL: ui.DetailURL(pr),
		TknBinary: settings.TknBinaryName, TknBinaryURL: settings.TknBinaryURL}
	text, err := mt.MakeTemplate(s.vcx.GetTemplate(provider.StartingPipelineType))
	if err != nil {
		return fmt.Errorf("status message: %w", err)
	}
	status := provider.StatusOpts{Status: "in_progress", Conclusion: "pending", Text: text, DetailsURL: ui.DetailURL(pr),
		PipelineRunName: pr.Name, PipelineRun: pr, OriginalPipelineRunName: pr.GetAnnotations()[keys.OriginalPRName]}
	if err := s.vcx.CreateStatus(ctx, s.ev, status); err != nil {
		// The run is started; its final status is posted when it ends.
		s.log.Warnw("in progress status not posted to the forge", "error", err)
	}
	s.log.Infow("queued run started")
	return nil
}

// Queued tells whether pr is a run PaC created pending, under its
// Repository's concurrency_limit, and nothing has started yet.
func Queued(pr *tektonv1.PipelineRun) bool {
	return pr.GetAnnotations()[keys.GitProvider] == pac.GitProvider && pr.GetLabels()[keys.State] == kubeinteraction.StateQueued &&
		pr.Spec.Status == tektonv1.PipelineRunSpecStatusPending
}

// Report puts the final status of pr, a finished run PaC created in
// workspace cluster, on the forge (success, failure with the failed step's
// last lines, secrets masked, or cancelled), then marks the run's state
// as upstream's watcher does: completed, or failed when the forge could
// not be told.
func (r *Runner) Report(ctx context.Context, cluster logicalcluster.Name, pr *tektonv1.PipelineRun) error {
	s, err := r.session(ctx, cluster, pr)
	if apierrors.IsNotFound(err) {
		// The Repository or its token is gone: there is no one to tell,
		// now or later. The run is marked failed (not reported) instead of
		// being retried for ever.
		return r.giveUp(ctx, cluster, pr, err)
	}
	if err != nil {
		return err
	}
	state := kubeinteraction.StateCompleted
	status, err := r.finalStatus(ctx, s.run, s.kint, s.vcx, pr)
	if err == nil {
		err = s.vcx.CreateStatus(ctx, s.ev, status)
	}
	if err != nil {
		s.log.Warnw("final status not posted to the forge", "error", err)
		state = kubeinteraction.StateFailed
	} else {
		s.log.Infow("final status posted to the forge", "conclusion", status.Conclusion, "sha", s.ev.SHA)
	}
	if err := s.recordRun(ctx, pr); err != nil {
		return err
	}
	return s.setState(ctx, pr, state)
}

// giveUp marks pr's state failed: its final status cannot be posted.
func (r *Runner) giveUp(ctx context.Context, cluster logicalcluster.Name, pr *tektonv1.PipelineRun, why error) error {
	log := r.log.With("workspace", cluster.String(), "namespace", pr.Namespace, "name", pr.Name)
	log.Warnw("final status cannot be posted to the forge", "error", why)
	tekton, err := r.workspaces.Tekton(cluster)
	if err != nil {
		return err
	}
	return patchState(ctx, log, tekton, pr, kubeinteraction.StateFailed)
}

// maxRunStatuses is how many runs a Repository's pipelinerun_status keeps
// (upstream's).
const maxRunStatuses = 5

// recordRun appends pr to its Repository's pipelinerun_status, the last
// runs that `kubectl get repository` and `tkn pac` show, as upstream's
// watcher does (a plain update: the field is not in the status
// subresource, which the service's conditions keep apart).
func (s *forgeSession) recordRun(ctx context.Context, pr *tektonv1.PipelineRun) error {
	branch := formatting.SanitizeBranch(s.ev.BaseBranch)
	logURL := s.run.Clients.ConsoleUI().DetailURL(pr)
	entry := v1alpha1.RepositoryRunStatus{
		Status: pr.Status.Status, PipelineRunName: pr.Name, StartTime: pr.Status.StartTime, CompletionTime: pr.Status.CompletionTime,
		SHA: &s.ev.SHA, SHAURL: &s.ev.SHAURL, Title: &s.ev.SHATitle, LogURL: &logURL, EventType: &s.ev.EventType, TargetBranch: &branch,
	}
	repos := s.run.Clients.PipelineAsCode.PipelinesascodeV1alpha1().Repositories(s.repo.Namespace)
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		repo, err := repos.Get(ctx, s.repo.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		runs := append(repo.Status, entry)
		repo.Status = runs[max(0, len(runs)-maxRunStatuses):]
		_, err = repos.Update(ctx, repo, metav1.UpdateOptions{})
		return err
	})
}

// finalStatus is upstream's final status of pr: its task list, the link to
// the run and, for a failure, the failed step's last lines with the values
// of the secrets the run uses masked.
func (r *Runner) finalStatus(ctx context.Context, run *params.Run, kint *workspaceInteraction, vcx *giteaProvider, pr *tektonv1.PipelineRun) (provider.StatusOpts, error) {
	taskRuns := kstatus.GetStatusFromTaskStatusOrFromAsking(ctx, pr, run)
	taskStatus := ""
	if c := pr.Status.GetCondition(apis.ConditionSucceeded); c != nil {
		taskStatus = c.Message
	}
	if len(taskRuns) > 0 {
		var err error
		if taskStatus, err = pacsort.TaskStatusTmpl(pr, taskRuns, run, vcx.GetConfig()); err != nil {
			return provider.StatusOpts{}, err
		}
	}
	ui := run.Clients.ConsoleUI()
	mt := formatting.MessageTemplate{
		PipelineRunName: pr.Name, Namespace: pr.Namespace, NamespaceURL: ui.NamespaceURL(pr),
		ConsoleName: ui.GetName(), ConsoleURL: ui.DetailURL(pr),
		TknBinary: settings.TknBinaryName, TknBinaryURL: settings.TknBinaryURL, TaskStatus: taskStatus,
	}
	if snippet := failureSnippet(ctx, run, kint, pr); snippet != "" {
		mt.FailureSnippet = secrets.ReplaceSecretsInText(snippet, secrets.GetSecretsAttachedToPipelineRun(ctx, kint, pr))
	}
	text, err := mt.MakeTemplate(vcx.GetTemplate(provider.PipelineRunStatusType))
	if err != nil {
		return provider.StatusOpts{}, fmt.Errorf("status message: %w", err)
	}
	return provider.StatusOpts{
		Status:                  pipelineascode.CompletedStatus,
		PipelineRun:             pr,
		Conclusion:              formatting.PipelineRunStatus(pr),
		Text:                    text,
		PipelineRunName:         pr.Name,
		DetailsURL:              ui.DetailURL(pr),
		OriginalPipelineRunName: pr.GetAnnotations()[keys.OriginalPRName],
	}, nil
}

// failureSnippet is upstream's: the first failed task's last log lines
// (or its message), "" when nothing failed.
func failureSnippet(ctx context.Context, run *params.Run, kint *workspaceInteraction, pr *tektonv1.PipelineRun) string {
	infos := kstatus.CollectFailedTasksLogSnippet(ctx, run, kint, pr, snippetLines)
	if len(infos) == 0 {
		return ""
	}
	first := pacsort.TaskInfos(infos)[0]
	text := strings.TrimSpace(first.LogSnippet)
	if text == "" {
		text = first.Message
	}
	name := first.Name
	if first.DisplayName != "" {
		name = strings.ToLower(first.DisplayName)
	}
	return fmt.Sprintf("task <b>%s</b> has the status <b>\"%s\"</b>:\n<pre>%s</pre>", name, first.Reason, text)
}

// eventOf is the event a run PaC created was for, from its annotations
// (upstream's watcher rebuilds it the same way).
func eventOf(pr *tektonv1.PipelineRun) *info.Event {
	a := pr.GetAnnotations()
	ev := info.NewEvent()
	ev.URL = a[keys.RepoURL]
	ev.Organization = a[keys.URLOrg]
	ev.Repository = a[keys.URLRepository]
	ev.EventType = a[keys.EventType]
	ev.TriggerTarget = triggertype.StringToType(a[keys.EventType])
	ev.BaseBranch = a[keys.Branch]
	ev.SHA = a[keys.SHA]
	ev.SHATitle = a[keys.ShaTitle]
	ev.SHAURL = a[keys.ShaURL]
	if n := a[keys.PullRequest]; n != "" {
		ev.PullRequestNumber, _ = strconv.Atoi(n)
		ev.TriggerTarget = triggertype.PullRequest
	}
	return ev
}
