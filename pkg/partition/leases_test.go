package partition

import (
	"fmt"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
)

func memberLease(name, identity string, renewed time.Time, parts string, member bool) *coordinationv1.Lease {
	l := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, Annotations: map[string]string{partsAnnotation: parts}},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: ptr.To(identity), RenewTime: &metav1.MicroTime{Time: renewed}},
	}
	if member {
		l.Labels = map[string]string{leaseLabel: memberLabel}
	}
	return l
}

func TestMemberView(t *testing.T) {
	now := time.Now()
	store := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	for _, l := range []*coordinationv1.Lease{
		memberLease("m-self", "self", now, "8", true),
		memberLease("m-live", "live", now.Add(-time.Second), "8", true),
		// Left by a replica killed long ago: not live on first sight.
		memberLease("m-gone", "gone", now.Add(-time.Hour), "8", true),
		// A part's Lease is no member, whatever a watch lets through.
		memberLease("p-0", "live", now, "", false),
	} {
		if err := store.Add(l); err != nil {
			t.Fatal(err)
		}
	}
	w := &memberWatch{lister: store, seen: map[string]observed{}, self: "self", ttl: 8 * time.Second}
	v := w.view(now)
	if got := fmt.Sprint(v.identities()); got != "[live self]" {
		t.Errorf("live members %s, want [live self]", got)
	}
	if owners := v.owners("self", 8); fmt.Sprint(owners) != fmt.Sprint(Assign(8, []string{"live", "self"})) {
		t.Errorf("owners %v, want Assign over live and self", owners)
	}

	// live stops renewing: gone after ttl, as this replica sees it.
	v = w.view(now.Add(10 * time.Second))
	if got := fmt.Sprint(v.identities()); got != "[self]" {
		t.Errorf("after live stopped renewing: members %s, want [self]", got)
	}

	// A live member with another count of parts: nobody takes any.
	if err := store.Update(memberLease("m-live", "live", now.Add(11*time.Second), "16", true)); err != nil {
		t.Fatal(err)
	}
	v = w.view(now.Add(11 * time.Second))
	for p, o := range v.owners("self", 8) {
		if o != "" {
			t.Errorf("part %d assigned to %q while the members disagree on the count (%v)", p, o, v.disagree)
		}
	}
	if len(v.disagree) != 1 {
		t.Errorf("disagreeing members %v, want live's", v.disagree)
	}
}
