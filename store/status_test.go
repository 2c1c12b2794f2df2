package store

import (
	"os"
	"slices"
	"testing"
	"time"
)

// unpushedIDs is what Unpushed lists for domain, by event id.
func unpushedIDs(t *testing.T, s *Store, domain string) []string {
	t.Helper()
	u, err := s.Unpushed(ctx, domain)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range u {
		ids = append(ids, e.EventID)
	}
	return ids
}

// The unpushed events a clone keeps in its memo are what diffing every
// unpushed commit says, whatever happened to the tips since the memo was
// written: appends on top, a push, a branch reset behind meta's back, a
// remote that moved, a memo that is garbage or gone.
func TestUnpushedMemoFollowsBothTips(t *testing.T) {
	remote := bareRemote(t)
	s := join(t, remote)
	other := join(t, remote)
	want := func(step string, domain string, ids ...string) {
		t.Helper()
		got := unpushedIDs(t, s, domain)
		if !slices.Equal(got, ids) {
			t.Fatalf("%s: unpushed %s = %v, want %v", step, domain, got, ids)
		}
		// The same from scratch, without the memo.
		os.Remove(s.unpushedPath())
		if fresh := unpushedIDs(t, s, domain); !slices.Equal(fresh, ids) {
			t.Fatalf("%s: without the memo unpushed %s = %v, want %v", step, domain, fresh, ids)
		}
	}
	want("nothing appended", "")
	a1 := offlineAppend(t, s, deploy("a.example.com", "1.0.0")).Event.GetId()
	want("one offline append", "", a1)
	unpushedIDs(t, s, "") // the memo at a1
	b1 := offlineAppend(t, s, deploy("b.example.com", "1.0.0")).Event.GetId()
	a2 := offlineAppend(t, s, deploy("a.example.com", "1.1.0")).Event.GetId()
	unpushedIDs(t, s, "a.example.com") // the memo at a2, from the one at a1
	want("appended on top of the memo", "", a1, b1, a2)
	unpushedIDs(t, s, "")
	want("one app's", "a.example.com", a1, a2)

	// A branch moved back behind meta's back: the memo's tip is no
	// ancestor of the new one.
	unpushedIDs(t, s, "")
	git(t, s.Root(), "reset", "-q", "--hard", "HEAD~1")
	want("after a reset", "", a1, b1)

	// The remote moved: another clone pushed, this one fetched.
	unpushedIDs(t, s, "")
	mustAppend(t, other, deploy("c.example.com", "1.0.0"))
	if _, err := s.Sync(ctx, SyncOptions{}); err != nil {
		t.Fatal(err)
	}
	want("after a sync pushed them", "")

	// Garbage in the memo file is not believed.
	c1 := offlineAppend(t, s, deploy("c.example.com", "2.0.0")).Event.GetId()
	if err := os.WriteFile(s.unpushedPath(), []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	want("a garbage memo", "", c1)
}

// A memo written while this clone's branch was behind the remote's (a
// person ran `git fetch`, or reset the branch back) answers nothing for
// the commits the branch then moves forward through: they are the
// remote's, though a record one of them added is no longer at the
// remote's tip (purged there). The memo used to take them as the clone's
// own and list that record as unpushed, which a fresh diff never does.
func TestUnpushedMemoBehindTheRemote(t *testing.T) {
	remote := bareRemote(t)
	s := join(t, remote)
	other := join(t, remote)
	gone := mustAppend(t, other, deploy("a.example.com", "1.0.0")).Event.GetId()
	if _, err := other.Purge(ctx, gone, "test", alice, time.Now(), AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, other, deploy("b.example.com", "1.0.0"))
	// By hand: the tracking ref moves on, the branch stays behind.
	git(t, s.Root(), "fetch", "-q", "origin")
	if got := unpushedIDs(t, s, ""); len(got) != 0 {
		t.Fatalf("unpushed behind the remote = %v", got)
	}
	if _, err := s.Sync(ctx, SyncOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := unpushedIDs(t, s, ""); len(got) != 0 {
		t.Fatalf("unpushed once level with the remote = %v, want none (%s was purged there)", got, gone)
	}
}
