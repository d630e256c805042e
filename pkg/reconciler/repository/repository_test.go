package repository

import (
	"strings"
	"testing"

	"github.com/kcp-dev/logicalcluster/v3"
	"github.com/openshift-pipelines/pipelines-as-code/pkg/apis/pipelinesascode/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pipelines-service/pipelines-service/pkg/pac"
	"github.com/pipelines-service/pipelines-service/pkg/resolution"
)

func TestJudge(t *testing.T) {
	egress := resolution.Egress{Allowed: []string{"forge.example:443"}}
	provider := func(mod func(*v1alpha1.GitProvider)) *v1alpha1.GitProvider {
		gp := &v1alpha1.GitProvider{URL: "https://forge.example", Secret: &v1alpha1.Secret{Name: "forge"}, WebhookSecret: &v1alpha1.Secret{Name: "forge"}}
		if mod != nil {
			mod(gp)
		}
		return gp
	}
	const me = "ws|ns/app"
	mine := pac.Claim{Key: me, Workspace: "ws"}
	for _, tc := range []struct {
		name   string
		url    string
		gp     *v1alpha1.GitProvider
		holder pac.Claim
		reason string
		msg    string
	}{
		{name: "accepted", gp: provider(nil), holder: mine, reason: ReasonAccepted},
		{name: "not a URL", url: "forge.example/org/app", gp: provider(nil), holder: mine, reason: ReasonInvalidURL},
		{name: "a clone URL", url: "https://forge.example/org/app.git", gp: provider(nil), holder: mine, reason: ReasonInvalidURL, msg: "https://forge.example/org/app"},
		{name: "a trailing slash is fine", url: "https://forge.example/org/app/", gp: provider(nil), holder: mine, reason: ReasonAccepted},
		{name: "held in another workspace", gp: provider(nil), holder: pac.Claim{Key: "other|ns/app", Workspace: "other"}, reason: ReasonURLClaimed, msg: "another workspace"},
		{name: "held in this workspace", gp: provider(nil), holder: pac.Claim{Key: "ws|team/app", Workspace: "ws"}, reason: ReasonURLClaimed, msg: "team/app"},
		{name: "no git_provider", holder: mine, reason: ReasonGitProviderIncomplete, msg: "git_provider"},
		{name: "no webhook secret", gp: provider(func(gp *v1alpha1.GitProvider) { gp.WebhookSecret = nil }), holder: mine, reason: ReasonGitProviderIncomplete, msg: "webhook_secret"},
		{name: "github", gp: provider(func(gp *v1alpha1.GitProvider) { gp.Type = "github" }), holder: mine, reason: ReasonGitProviderNotServed},
		{name: "a forge the platform does not allow", gp: provider(func(gp *v1alpha1.GitProvider) { gp.URL = "https://10.0.0.1:6443" }), holder: mine, reason: ReasonForgeNotAllowed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := tc.url
			if url == "" {
				url = "https://forge.example/org/app"
			}
			repo := &v1alpha1.Repository{Spec: v1alpha1.RepositorySpec{URL: url, GitProvider: tc.gp}}
			repo.Annotations = map[string]string{logicalcluster.AnnotationKey: "ws"}
			got := judge(repo, me, tc.holder, egress)
			wantStatus := metav1.ConditionFalse
			if tc.reason == ReasonAccepted {
				wantStatus = metav1.ConditionTrue
			}
			if got.Status != wantStatus || got.Reason != tc.reason || !strings.Contains(got.Message, tc.msg) {
				t.Errorf("%s %s %q, want %s %s mentioning %q", got.Status, got.Reason, got.Message, wantStatus, tc.reason, tc.msg)
			}
		})
	}
}
