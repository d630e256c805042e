package partition

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
)

// replica is one Partition of the test, running until stop.
type replica struct {
	*Partition
	stop  context.CancelFunc
	ended chan error
	// taken and given count what the handler was told, by part.
	mu           sync.Mutex
	taken, given map[int]int
}

func startReplica(t *testing.T, client *fake.Clientset, identity string) *replica {
	t.Helper()
	cfg := Config{Parts: 8, Identity: identity, LeaseNamespace: "default", LeasePrefix: "test",
		LeaseDuration: 2 * time.Second, RenewDeadline: 1500 * time.Millisecond, RetryPeriod: 200 * time.Millisecond}
	p, err := New(cfg, client, func() map[string]Demand { return nil }, zaptest.NewLogger(t).Sugar().With("replica", identity))
	if err != nil {
		t.Fatal(err)
	}
	r := &replica{Partition: p, ended: make(chan error, 1), taken: map[int]int{}, given: map[int]int{}}
	partOf := func(in func(string) bool) int {
		for i := range 8 {
			for n := range 1000 {
				if ws := fmt.Sprintf("ws-%d", n); PartOf(ws, 8) == i && in(ws) {
					return i
				}
			}
		}
		return -1
	}
	p.Handle(Handler{
		Taken: func(in func(string) bool) { r.mu.Lock(); r.taken[partOf(in)]++; r.mu.Unlock() },
		Given: func(in func(string) bool) { r.mu.Lock(); r.given[partOf(in)]++; r.mu.Unlock() },
	})
	ctx, stop := context.WithCancel(context.Background())
	r.stop = stop
	go func() { r.ended <- p.Run(ctx) }()
	return r
}

// holders lists, per part, the replicas that hold it now.
func holders(rs []*replica) [][]string {
	out := make([][]string, 8)
	for _, r := range rs {
		for _, p := range r.Held() {
			out[p] = append(out[p], r.cfg.Identity)
		}
	}
	return out
}

// watchOverlaps fails the test if two replicas ever hold one part, until
// stop is closed.
func watchOverlaps(t *testing.T, rs func() []*replica, stop chan struct{}) *sync.WaitGroup {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			for p, hs := range holders(rs()) {
				if len(hs) > 1 {
					t.Errorf("part %d held by %v at once", p, hs)
					return
				}
			}
		}
	}()
	return &wg
}

// waitBalanced waits until every part is held once and each replica of
// rs holds at least min of them.
func waitBalanced(t *testing.T, rs []*replica, least int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ok := true
		for _, hs := range holders(rs) {
			ok = ok && len(hs) == 1
		}
		for _, r := range rs {
			ok = ok && len(r.Held()) >= least
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			for _, r := range rs {
				select {
				case err := <-r.ended:
					t.Errorf("replica %s ended: %v", r.cfg.Identity, err)
				default:
				}
			}
			t.Fatalf("parts not balanced over %d replicas: %v", len(rs), holders(rs))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestReplicasSplitThePartsAndHandThemOver(t *testing.T) {
	client := fake.NewClientset()
	var mu sync.Mutex
	var running []*replica
	current := func() []*replica { mu.Lock(); defer mu.Unlock(); return append([]*replica(nil), running...) }
	stop := make(chan struct{})
	overlaps := watchOverlaps(t, current, stop)

	a := startReplica(t, client, "a")
	mu.Lock()
	running = append(running, a)
	mu.Unlock()
	waitBalanced(t, current(), 8)

	b, c := startReplica(t, client, "b"), startReplica(t, client, "c")
	mu.Lock()
	running = append(running, b, c)
	mu.Unlock()
	// Eight parts over three: 3, 3 and 2.
	waitBalanced(t, current(), 2)
	a.mu.Lock()
	given := len(a.given)
	a.mu.Unlock()
	if given < 5 {
		t.Errorf("a gave up %d parts, want at least 5 (its 8 less its share)", given)
	}

	// A replica that stops gives its parts up at once (its member Lease
	// gone), and the others take them.
	b.stop()
	if err := <-b.ended; err != nil {
		t.Errorf("b ended with %v", err)
	}
	mu.Lock()
	running = []*replica{a, c}
	mu.Unlock()
	if n := len(b.Held()); n != 0 {
		t.Errorf("b holds %d parts after it stopped", n)
	}
	waitBalanced(t, current(), 4)

	close(stop)
	overlaps.Wait()
	for _, r := range []*replica{a, c} {
		r.stop()
		if err := <-r.ended; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("%s ended with %v", r.cfg.Identity, err)
		}
	}
}

// TestLostPartIsGivenOnceItsReconcilesEnded: a part whose Lease renewal
// fails is no longer reconciled here; the reconciles in flight see their
// context end, and the handlers hear of it only once they returned.
func TestLostPartIsGivenOnceItsReconcilesEnded(t *testing.T) {
	client := fake.NewClientset()
	// Registered before the replica starts: the fake's reactors are not
	// safe to change while it is called.
	var failing atomic.Bool
	client.PrependReactor("update", "leases", func(clienttesting.Action) (bool, runtime.Object, error) {
		if failing.Load() {
			return true, nil, errors.New("kcp does not answer")
		}
		return false, nil, nil
	})
	a := startReplica(t, client, "a")
	defer func() { a.stop(); <-a.ended }()
	waitBalanced(t, []*replica{a}, 8)
	ws, part := "ws-0", PartOf("ws-0", 8)
	ctx, done, ok := a.Enter(context.Background(), ws)
	if !ok {
		t.Fatalf("replica a does not reconcile %s though it holds every part", ws)
	}
	failing.Store(true)
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the reconcile in flight goes on 10 s after the renewals started failing")
	}
	if _, _, ok := a.Enter(context.Background(), ws); ok {
		t.Errorf("a new reconcile of %s enters after the part's Lease was lost", ws)
	}
	time.Sleep(300 * time.Millisecond)
	a.mu.Lock()
	given := a.given[part]
	a.mu.Unlock()
	if given != 0 {
		t.Errorf("the handlers were told part %d was given up while its reconcile was in flight", part)
	}
	done()
	deadline := time.Now().Add(5 * time.Second)
	for given == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		a.mu.Lock()
		given = a.given[part]
		a.mu.Unlock()
	}
	if given != 1 {
		t.Errorf("the handlers were told part %d was given up %d times after its reconcile ended, want 1", part, given)
	}
}
