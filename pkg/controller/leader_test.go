package controller

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"
)

func TestLeaderElectionConfigIsCheckedAtLoad(t *testing.T) {
	d := func(s string) metav1.Duration {
		v, _ := time.ParseDuration(s)
		return metav1.Duration{Duration: v}
	}
	for _, tc := range []struct {
		name    string
		cfg     LeaderElectionConfig
		wantErr string
	}{
		{name: "defaults", cfg: LeaderElectionConfig{}},
		{name: "renew deadline not shorter than the lease", cfg: LeaderElectionConfig{LeaseDuration: d("5s"), RenewDeadline: d("5s")}, wantErr: "shorter than leaseDuration"},
		{name: "no room for a jittered retry", cfg: LeaderElectionConfig{RenewDeadline: d("2s"), RetryPeriod: d("2s")}, wantErr: "longer than 1.2 x retryPeriod"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.defaults()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("defaults() = %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("defaults() = %v, want an error saying %q", err, tc.wantErr)
			}
			if tc.wantErr == "" && (tc.cfg.Identity == "" || tc.cfg.LeaseName == "" || tc.cfg.LeaseDuration.Duration != 6*time.Second ||
				tc.cfg.RetryPeriod.Duration != 500*time.Millisecond || tc.cfg.PartRetryPeriod.Duration != time.Second) {
				t.Errorf("defaults left %+v", tc.cfg)
			}
		})
	}
}

// TestLeaderStandsAgainAfterALateRenewal runs two candidates on a fake
// clientset with client-go's real electors. The leader's renewals fail
// for a while: its term ends (its work returns), the other leads, and the
// first stands again in the same call of leadOn, without an error, and
// leads again once the other stops. Terms never overlap.
func TestLeaderStandsAgainAfterALateRenewal(t *testing.T) {
	client := fake.NewClientset()
	var failing atomic.Bool
	client.PrependReactor("update", "leases", func(action k8stesting.Action) (bool, runtime.Object, error) {
		lease := action.(k8stesting.UpdateAction).GetObject().(*coordinationv1.Lease)
		// a's renewals and its release (no holder) go unanswered.
		if holder := ptr.Deref(lease.Spec.HolderIdentity, ""); failing.Load() && (holder == "a" || holder == "") {
			return true, nil, errors.New("kcp did not answer in time")
		}
		return false, nil, nil
	})
	var (
		mu      sync.Mutex
		active  int
		overlap bool
		terms   = map[string]int{}
	)
	work := func(identity string) func(context.Context) error {
		return func(term context.Context) error {
			mu.Lock()
			active++
			overlap = overlap || active > 1
			terms[identity]++
			mu.Unlock()
			<-term.Done()
			mu.Lock()
			active--
			mu.Unlock()
			return nil
		}
	}
	termsOf := func(identity string) int {
		mu.Lock()
		defer mu.Unlock()
		return terms[identity]
	}
	// The Lease records whole seconds: shorter durations would be 0.
	cfg := func(identity string) LeaderElectionConfig {
		return LeaderElectionConfig{Identity: identity, LeaseNamespace: "default", LeaseName: "leader",
			LeaseDuration: metav1.Duration{Duration: 2 * time.Second}, RenewDeadline: metav1.Duration{Duration: time.Second},
			RetryPeriod: metav1.Duration{Duration: 200 * time.Millisecond}}
	}
	run := func(ctx context.Context, identity string) chan error {
		done := make(chan error, 1)
		go func() { done <- leadOn(ctx, zap.NewNop().Sugar(), client, cfg(identity), nil, work(identity)) }()
		return done
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		if err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 10*time.Second, true,
			func(context.Context) (bool, error) { return cond(), nil }); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a := run(ctx, "a")
	waitFor("a leads", func() bool { return termsOf("a") == 1 })
	ctxB, stopB := context.WithCancel(ctx)
	b := run(ctxB, "b")
	failing.Store(true)
	waitFor("b leads after a's renewals failed", func() bool { return termsOf("b") == 1 })
	failing.Store(false)
	stopB()
	if err := <-b; err != nil {
		t.Fatalf("b: leadOn = %v", err)
	}
	waitFor("a leads again once b stopped", func() bool { return termsOf("a") == 2 })
	select {
	case err := <-a:
		t.Fatalf("a's leadOn returned (%v) instead of standing again", err)
	default:
	}
	cancel()
	if err := <-a; err != nil {
		t.Fatalf("a: leadOn = %v when its context ended", err)
	}
	if overlap {
		t.Errorf("two terms ran at once")
	}
}

func TestLeaderGateAdmitsDuringATerm(t *testing.T) {
	g := &leaderGate{}
	resyncs := 0
	g.OnTerm(func() { resyncs++ })
	if _, _, ok := g.Enter(context.Background(), "ws"); ok {
		t.Fatal("admitted a reconcile before any term")
	}
	term, end := context.WithCancel(context.Background())
	closed := g.open(term)
	if resyncs != 1 {
		t.Errorf("resyncs = %d at the start of a term, want 1", resyncs)
	}
	reconcile, done, ok := g.Enter(context.Background(), "ws")
	if !ok {
		t.Fatal("refused a reconcile during a term")
	}
	end()
	select {
	case <-reconcile.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the reconcile's context did not end with the term")
	}
	waited := make(chan struct{})
	go func() { closed(); close(waited) }()
	select {
	case <-waited:
		t.Fatal("the term closed with a reconcile in flight")
	case <-time.After(50 * time.Millisecond):
	}
	done()
	<-waited
	if _, _, ok := g.Enter(context.Background(), "ws"); ok {
		t.Error("admitted a reconcile after the term")
	}
}
