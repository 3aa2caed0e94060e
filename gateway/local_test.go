package gateway

import (
	"slices"
	"testing"

	"github.com/workerman-go/workerman/internal/leakcheck"
)

// LocalUIDs and LocalGroups are this node's own, each name once however
// many of its clients share it, whatever the other nodes hold; what Stats
// counts. The cluster-wide queries merge them across the nodes.
func TestLocalUIDsAndGroups(t *testing.T) {
	leakcheck.Check(t)
	ns := hubNodes(t, 2)
	n1, n2 := ns[0], ns[1]
	c := ctx(t)
	phone, tablet, laptop := dialWS(t, n1), dialWS(t, n1), dialWS(t, n2)
	mustOK(t, n2.BindUID(c, phone.id, "alice"))
	mustOK(t, n2.BindUID(c, tablet.id, "alice"))
	mustOK(t, n1.BindUID(c, laptop.id, "alice"))
	mustOK(t, n2.JoinGroup(c, phone.id, "room"))
	mustOK(t, n2.JoinGroup(c, tablet.id, "room"))
	mustOK(t, n1.JoinGroup(c, tablet.id, "news"))
	mustOK(t, n1.JoinGroup(c, laptop.id, "room"))

	for _, tc := range []struct {
		n            *node
		uids, groups []string
	}{
		{n1, []string{"alice"}, []string{"news", "room"}},
		{n2, []string{"alice"}, []string{"room"}},
	} {
		uids, groups := tc.n.LocalUIDs(), tc.n.LocalGroups()
		slices.Sort(uids)
		slices.Sort(groups)
		if !slices.Equal(uids, tc.uids) || !slices.Equal(groups, tc.groups) {
			t.Errorf("%s: LocalUIDs %v, LocalGroups %v; want %v, %v", tc.n.Node(), uids, groups, tc.uids, tc.groups)
		}
		if s := tc.n.Stats(); s.UIDs != len(uids) || s.Groups != len(groups) {
			t.Errorf("%s: Stats %+v, but %d local uids and %d local groups", tc.n.Node(), s, len(uids), len(groups))
		}
	}
	if k, err := n1.UIDCount(c); err != nil || k != 1 {
		t.Fatalf("UIDCount = %d, %v; want 1", k, err)
	}
	if l, err := n2.Groups(c); err != nil || !slices.Equal(l, []string{"news", "room"}) {
		t.Fatalf("Groups = %v, %v; want [news room]", l, err)
	}

	// A copy: changing it changes nothing, and it follows unbinds.
	uids := n1.LocalUIDs()
	uids[0] = "mallory"
	if l := n1.LocalUIDs(); !slices.Equal(l, []string{"alice"}) {
		t.Fatalf("LocalUIDs after changing what it returned: %v", l)
	}
	mustOK(t, n2.UnbindUID(c, phone.id, "alice"))
	mustOK(t, n2.UnbindUID(c, tablet.id, "alice"))
	if l := n1.LocalUIDs(); len(l) != 0 {
		t.Fatalf("LocalUIDs after the unbinds: %v", l)
	}
	if l := n2.LocalUIDs(); !slices.Equal(l, []string{"alice"}) {
		t.Fatalf("n2's LocalUIDs after n1's unbinds: %v", l)
	}
}
