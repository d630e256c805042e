package partition

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
	"k8s.io/client-go/tools/cache"
	rl "k8s.io/client-go/tools/leaderelection/resourcelock"
)

// errNotAssigned refuses to take a part's Lease this replica is not
// assigned: the elector goes on observing it.
var errNotAssigned = errors.New("the part is not assigned to this replica")

// partLock is client-go's LeaseLock for a part, with two differences.
//
// It reads the Lease from the replica's informer (the API only for a Lease
// not in it yet), so that every replica can run an elector for every part
// at no cost: client-go's elector deems a Lease expired only LeaseDuration
// after it first saw it, so an elector started when a part is assigned
// would wait that long again after its holder died.
//
// And it takes the Lease (creates it, or writes itself as the holder of a
// Lease another held or released) only while may says the part is
// assigned to this replica; renewing and releasing are always allowed.
type partLock struct {
	namespace, name, identity string
	client                    coordinationv1client.LeasesGetter
	cache                     cache.Indexer
	may                       func() bool

	mu    sync.Mutex
	lease *coordinationv1.Lease // last read or written
}

// partLabel marks the parts' Leases, for the informer.
const partLabel = "part"

func (l *partLock) Get(ctx context.Context) (*rl.LeaderElectionRecord, []byte, error) {
	var lease *coordinationv1.Lease
	obj, exists, err := l.cache.GetByKey(l.namespace + "/" + l.name)
	switch {
	case err != nil:
		return nil, nil, err
	case exists && !l.holds():
		lease = obj.(*coordinationv1.Lease)
	default:
		// The holder reads what it renews from the API: an informer a
		// write behind would fail its renewal on a conflict until the
		// deadline.
		// So does a lock whose Lease is not in the informer: not created
		// yet, or written before the Leases carried the label.
		if lease, err = l.client.Leases(l.namespace).Get(ctx, l.name, metav1.GetOptions{}); err != nil {
			return nil, nil, err
		}
	}
	// The informer may lag this lock's last write by a moment: an update
	// from an older version meets a conflict, and the elector tries again.
	_ = l.keep(lease.DeepCopy(), nil)
	record := rl.LeaseSpecToLeaderElectionRecord(&lease.Spec)
	raw, err := json.Marshal(*record)
	return record, raw, err
}

func (l *partLock) Create(ctx context.Context, ler rl.LeaderElectionRecord) error {
	if !l.may() {
		return errNotAssigned
	}
	lease := &coordinationv1.Lease{Spec: rl.LeaderElectionRecordToLeaseSpec(&ler)}
	lease.Namespace, lease.Name, lease.Labels = l.namespace, l.name, map[string]string{leaseLabel: partLabel}
	return l.keep(l.client.Leases(l.namespace).Create(ctx, lease, metav1.CreateOptions{}))
}

func (l *partLock) Update(ctx context.Context, ler rl.LeaderElectionRecord) error {
	l.mu.Lock()
	if l.lease == nil {
		l.mu.Unlock()
		return errors.New("lease not initialized, call get or create first")
	}
	lease := l.lease.DeepCopy()
	l.mu.Unlock()
	held := lease.Spec.HolderIdentity != nil && *lease.Spec.HolderIdentity == l.identity
	if ler.HolderIdentity == l.identity && !held && !l.may() {
		return errNotAssigned
	}
	lease.Spec = rl.LeaderElectionRecordToLeaseSpec(&ler)
	if lease.Labels == nil {
		lease.Labels = map[string]string{}
	}
	lease.Labels[leaseLabel] = partLabel
	return l.keep(l.client.Leases(l.namespace).Update(ctx, lease, metav1.UpdateOptions{}))
}

// keep remembers the Lease a write returned, for the next Update.
func (l *partLock) keep(written *coordinationv1.Lease, err error) error {
	if err != nil {
		return err
	}
	l.mu.Lock()
	l.lease = written
	l.mu.Unlock()
	return nil
}

// holds says this lock last read or wrote itself as the holder.
func (l *partLock) holds() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lease != nil && l.lease.Spec.HolderIdentity != nil && *l.lease.Spec.HolderIdentity == l.identity
}

func (l *partLock) RecordEvent(string) {}

func (l *partLock) Identity() string { return l.identity }

func (l *partLock) Describe() string { return fmt.Sprintf("%s/%s", l.namespace, l.name) }
