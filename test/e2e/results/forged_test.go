//go:build e2e

package results

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	v1 "github.com/tektoncd/pipeline/pkg/apis/pipeline/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pipelines-service/pipelines-service/pkg/reconciler/recorder"
	"github.com/pipelines-service/pipelines-service/pkg/tenantconfig"
	"github.com/pipelines-service/pipelines-service/test/e2e/framework"
)

// TestForgedArchiveMarkIsChecked: a hostile tenant marks its run stored
// from the start, naming another tenant's records, and writes summary
// annotations that are not JSON. Pruning does not take the mark's word: it
// finds no such archive of this run, takes the mark off (Warning Event
// NotArchived), the recorder archives the run for real (without the bad
// summary annotations, Warning Event InvalidRecordSummaryAnnotations), and
// only then is the run pruned, its log in the tenant's own archive.
func TestForgedArchiveMarkIsChecked(t *testing.T) {
	t.Parallel() // after the tests that restart Results, beside each other
	ctx := context.Background()
	tn := env.NewTenant(ctx, t, "e2e-results-forged")
	tn.SetConfigMap(ctx, t, tenantconfig.RetentionConfigName, map[string]string{"runAt": "* * * * *", "defaultRetention": "0"})
	other := "2a6e17ra9cz086jr_default/results/5f0e3c52-0000-4000-8000-000000000000"
	tr := &v1.TaskRun{
		ObjectMeta: metav1.ObjectMeta{Name: "forged", Annotations: map[string]string{
			recorder.AnnotationStored:                   "true",
			recorder.AnnotationRecord:                   other + "/records/5f0e3c52-0000-4000-8000-000000000001",
			recorder.AnnotationLog:                      other + "/logs/5f0e3c52-0000-4000-8000-000000000002",
			recorder.AnnotationRecordSummaryAnnotations: "not json",
		}},
		Spec: v1.TaskRunSpec{TaskSpec: &v1.TaskSpec{Steps: []v1.Step{{
			Name: "hello", Image: "docker.io/library/busybox:1.36", Script: "#!/bin/sh\necho forged says hello\n",
		}}}},
	}
	created, err := tn.Tekton.TektonV1().TaskRuns(ns).Create(ctx, tr, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	framework.Eventually(t, 5*time.Minute, "the forged run pruned", func() (bool, string, error) {
		got, err := tn.Tekton.TektonV1().TaskRuns(ns).Get(ctx, tr.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, "", nil
		}
		if err != nil {
			return false, "", err
		}
		return false, fmt.Sprintf("stored=%q record=%q", got.Annotations[recorder.AnnotationStored], got.Annotations[recorder.AnnotationRecord]), nil
	})

	names, records := listRecords(ctx, t, tn.Rest, `data_type == "tekton.dev/v1.TaskRun"`)
	if len(names) != 1 || names[0] != tr.Name {
		t.Fatalf("the tenant's archive after pruning: %v, want [%s]", names, tr.Name)
	}
	code, body := resultsGET(ctx, t, tn.Rest, strings.Replace(records[0].Name, "/records/", "/logs/", 1), nil)
	if code != http.StatusOK || strings.TrimRight(string(body), "\n") != "[hello] forged says hello" {
		t.Errorf("log of the pruned run: %d %q", code, body)
	}
	events, err := tn.Kube.CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{recorder.ReasonNotArchived: false, recorder.ReasonInvalidSummaryAnnotations: false}
	for _, e := range events.Items {
		if _, ok := want[e.Reason]; ok && e.InvolvedObject.UID == created.UID && e.Type == corev1.EventTypeWarning {
			want[e.Reason] = true
		}
	}
	for reason, seen := range want {
		if !seen {
			t.Errorf("no Warning Event %s on the forged run", reason)
		}
	}
}
