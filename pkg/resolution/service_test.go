package resolution

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kcp-dev/logicalcluster/v3"
	resolutioncommon "github.com/tektoncd/pipeline/pkg/resolution/common"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func newTestService() *Service {
	return New(Options{Log: zap.NewNop().Sugar(), Concurrency: 2})
}

// TestSubmitFetchesOnceAndNotifiesEachWaiter: concurrent submits of one
// request share one fetch; every waiter is told once when it ends.
func TestSubmitFetchesOnceAndNotifiesEachWaiter(t *testing.T) {
	s := newTestService()
	release := make(chan struct{})
	var fetches atomic.Int32
	fetch := func(context.Context) (*resolved, error) {
		fetches.Add(1)
		<-release
		return &resolved{data: []byte("task")}, nil
	}
	var notified sync.WaitGroup
	notified.Add(2)
	var counts [2]atomic.Int32
	for i := range 2 {
		for range 3 { // a run re-submitting before the end is told once
			_, err := s.submit(context.Background(), "ws/ns/req", string(rune('a'+i)), func() {
				if counts[i].Add(1) == 1 {
					notified.Done()
				}
			}, fetch, "ws")
			if !errors.Is(err, resolutioncommon.ErrRequestInProgress) {
				t.Fatalf("submit while fetching: %v, want in progress", err)
			}
		}
	}
	close(release)
	notified.Wait()
	got, err := s.submit(context.Background(), "ws/ns/req", "a", nil, fetch, "ws")
	if err != nil {
		t.Fatal(err)
	}
	if data, _ := got.Data(); string(data) != "task" {
		t.Errorf("data %q", data)
	}
	if n := fetches.Load(); n != 1 {
		t.Errorf("%d fetches, want 1", n)
	}
	time.Sleep(10 * time.Millisecond)
	if counts[0].Load() != 1 || counts[1].Load() != 1 {
		t.Errorf("notifications %d and %d, want one each", counts[0].Load(), counts[1].Load())
	}
}

// TestFailuresAreRetriedAfterAWhile: a failure answers its run; a run
// asking again later fetches again.
func TestFailuresAreRetriedAfterAWhile(t *testing.T) {
	s := newTestService()
	var fetches atomic.Int32
	fetch := func(context.Context) (*resolved, error) {
		fetches.Add(1)
		return nil, errors.New("forge down")
	}
	if _, err := s.submit(context.Background(), "k", "w", nil, fetch, "ws"); err == nil || err.Error() != "forge down" {
		t.Fatalf("got %v, want the failure within the inline wait", err)
	}
	s.mu.Lock()
	s.requests["k"].finished = time.Now().Add(-2 * keepFailure)
	s.mu.Unlock()
	_, _ = s.submit(context.Background(), "k", "w", nil, fetch, "ws")
	if n := fetches.Load(); n != 2 {
		t.Errorf("%d fetches, want a second one after keepFailure", n)
	}
}

// TestPanicFailsTheRequestOnly: a resolver that panics (upstream code,
// or a client call outside what namespaceKube serves) fails its request.
func TestPanicFailsTheRequestOnly(t *testing.T) {
	s := newTestService()
	_, err := s.submit(context.Background(), "k", "w", nil, func(context.Context) (*resolved, error) {
		var kube namespaceKube
		_, _ = kube.AppsV1().Deployments("x").List(context.Background(), metav1.ListOptions{})
		return nil, nil
	}, logicalcluster.Name("ws"))
	if err == nil {
		t.Fatal("a panicking fetch succeeded")
	}
}

func TestLockedKubeReadsTheRunsNamespaceOnly(t *testing.T) {
	client := fake.NewClientset(
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "token", Namespace: "team"}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "token", Namespace: "other"}},
	)
	kube := lockedKube(client, "team")
	ctx := context.Background()
	if _, err := kube.CoreV1().Secrets("team").Get(ctx, "token", metav1.GetOptions{}); err != nil {
		t.Errorf("own namespace: %v", err)
	}
	if _, err := kube.CoreV1().Secrets("other").Get(ctx, "token", metav1.GetOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("other namespace: %v, want Forbidden", err)
	}
	if _, err := kube.CoreV1().ServiceAccounts("other").Get(ctx, "default", metav1.GetOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("other namespace's service account: %v, want Forbidden", err)
	}
}

func TestLockConfigReadsTokensFromTheRunsNamespace(t *testing.T) {
	got := lockConfig(map[string]string{
		"api-token-secret-namespace":        "platform",
		"github.api-token-secret-namespace": "kube-system",
		"server-url":                        "http://forge",
	}, "team")
	for _, k := range []string{"api-token-secret-namespace", "github.api-token-secret-namespace"} {
		if got[k] != "team" {
			t.Errorf("%s = %q, want the run's namespace", k, got[k])
		}
	}
	if got["server-url"] != "http://forge" {
		t.Errorf("server-url changed: %q", got["server-url"])
	}
}

func TestCheckRepoPath(t *testing.T) {
	for _, tc := range []struct {
		revision, path string
		ok             bool
	}{
		{"main", "task.yaml", true},
		{"v1.2.3", "tasks/build/task.yaml", true},
		{"0123456789abcdef0123456789abcdef01234567", "t.yaml", true},
		{"refs/heads/main", "t.yaml", true},
		{"--upload-pack=touch /tmp/x", "t.yaml", false},
		{"-b", "t.yaml", false},
		{"main..other", "t.yaml", false},
		{"main", "../../etc/passwd", false},
		{"main", "/task/t.yaml", true},
		{"main", "/../etc/passwd", false},
		{"main", "", false},
	} {
		if err := checkRepoPath(tc.revision, tc.path); (err == nil) != tc.ok {
			t.Errorf("checkRepoPath(%q, %q) = %v, want ok=%v", tc.revision, tc.path, err, tc.ok)
		}
	}
}

func TestFetchTimeoutIsCappedByThePlatform(t *testing.T) {
	s := New(Options{Log: zap.NewNop().Sugar(), MaxFetchTimeout: time.Minute})
	for _, tc := range []struct {
		tenant string
		want   time.Duration
		err    bool
	}{
		{"", time.Minute, false},
		{"10s", 10 * time.Second, false},
		{"100h", time.Minute, false},
		{"soon", 0, true},
	} {
		got, err := s.fetchTimeout("git", map[string]string{"fetch-timeout": tc.tenant})
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("fetch-timeout %q: %v, %v; want %v (error %v)", tc.tenant, got, err, tc.want, tc.err)
		}
	}
}
