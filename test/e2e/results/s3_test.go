//go:build e2e

package results

import (
	"bytes"
	"context"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLogsInS3: with the Results API's log storage on an S3-compatible
// service (LOGS_TYPE=S3, path-style addressing), a run's log is written
// there, not to the state directory's files, and tenants read it through
// the gateway as before.
func TestLogsInS3(t *testing.T) {
	ctx := context.Background()
	s3, err := env.Stack.StartS3(ctx)
	if err != nil {
		t.Fatalf("start the S3 service: %v", err)
	}
	t.Cleanup(func() {
		if err := env.Stack.SetResultsLogs(context.Background(), nil); err != nil {
			t.Errorf("Results back on file logs: %v", err)
		}
		if err := env.Stack.StopS3(); err != nil {
			t.Errorf("stop the S3 service: %v", err)
		}
	})
	if err := env.Stack.SetResultsLogs(ctx, s3); err != nil {
		t.Fatalf("Results on S3 logs: %v", err)
	}

	tn := env.NewTenant(ctx, t, "e2e-results-s3")
	runAndWaitStored(ctx, t, tn, pipelineRun("in-s3", 0))
	_, records := listRecords(ctx, t, tn.Rest, `data_type == "tekton.dev/v1.TaskRun"`)
	if len(records) != 1 {
		t.Fatalf("TaskRun records: %d, want 1", len(records))
	}
	code, body := resultsGET(ctx, t, tn.Rest, strings.Replace(records[0].Name, "/records/", "/logs/", 1), nil)
	want := "[hello] in-s3 says hello\n[hello] second line"
	if code != http.StatusOK || strings.TrimRight(string(body), "\n") != want {
		t.Errorf("log through the gateway: %d %q, want %q", code, body, want)
	}
	said := []byte("in-s3 says hello")
	if !holds(t, env.Stack.Config().S3Dir(), said) {
		t.Errorf("no object in the S3 service (%s) holds the run's log", env.Stack.Config().S3Dir())
	}
	if holds(t, env.Stack.Config().Path("results", "logs"), said) {
		t.Errorf("the run's log was written to the file log storage too")
	}
	t.Logf("log stored in S3 bucket %s at %s", s3.Bucket, s3.Endpoint)
}

// holds says a file under dir contains data.
func holds(t *testing.T, dir string, data []byte) bool {
	t.Helper()
	found := false
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || found {
			return err
		}
		content, err := os.ReadFile(path)
		if err == nil && bytes.Contains(content, data) {
			found = true
		}
		return err
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return found
}
