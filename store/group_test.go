package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/store/record"
)

// groupOf is n appends of version 1.0.i to apps[i%len(apps)], by
// operator i, each with the id its operator's meta chose.
func groupOf(n int, apps ...string) []GroupItem {
	items := make([]GroupItem, n)
	for i := range items {
		items[i] = GroupItem{Event: deploy(apps[i%len(apps)], fmt.Sprintf("1.0.%d", i)),
			Actor:   &metav1.Actor{Name: fmt.Sprintf("op%d", i), Email: fmt.Sprintf("op%d@example.com", i)},
			Options: AppendOptions{ID: record.NewID(time.Now())}}
		time.Sleep(time.Millisecond) // ids in the order of the group
	}
	return items
}

// groupTime is the hub's clock for items: their first id's time (ids are
// never made earlier than one made before in the process, which other
// tests may have dated ahead).
func groupTime(t *testing.T, items []GroupItem) time.Time {
	t.Helper()
	at, err := record.IDTime(items[0].Options.ID)
	if err != nil {
		t.Fatal(err)
	}
	return at
}

// keptState is the integrity state on disk.
func keptState(t *testing.T, s *Store) string {
	t.Helper()
	data, err := os.ReadFile(s.integrityPath())
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Checked string `json:"checked"`
	}
	if err := json.Unmarshal(data, &st); err != nil {
		t.Fatal(err)
	}
	return st.Checked
}

// A group goes on the branch as one chain: each event its own commit by
// its own operator, one after another on the same app, in one push; the
// state kept on disk is the tip's, and heads read as if each had been
// appended alone.
func TestGroupIsOneCommitAnEventInOnePush(t *testing.T) {
	remote := bareRemote(t)
	s := join(t, remote)
	before, _ := s.repo.Head()
	hub := &metav1.Actor{Name: "hub"}
	items := groupOf(40, "a.example.com", "b.example.com", "c.example.com")
	res := s.AppendGroup(ctx, hub, groupTime(t, items), items)
	for i, r := range res {
		if r.Err != nil || r.Appended == nil || !r.Pushed || r.Event.GetId() != items[i].Options.ID {
			t.Fatalf("item %d: %+v, %v", i, r.Appended, r.Err)
		}
	}
	tip, _ := s.repo.Head()
	if got := git(t, remote, "rev-parse", "main"); got != tip.String() {
		t.Fatalf("remote at %s, clone at %s", got, tip)
	}
	authors := strings.Split(git(t, remote, "log", "--reverse", "--format=%an", before.String()+"..main"), "\n")
	if len(authors) != len(items) {
		t.Fatalf("%d commits, want %d", len(authors), len(items))
	}
	for i, a := range authors {
		if a != fmt.Sprintf("op%d", i) {
			t.Fatalf("commit %d by %q, want op%d", i, a, i)
		}
	}
	if got := keptState(t, s); got != tip.String() {
		t.Fatalf("kept state checked %s, want the tip %s", got, tip)
	}
	git(t, s.Root(), "fsck", "--strict", "--no-progress")
	if st := git(t, s.Root(), "status", "--porcelain"); st != "" {
		t.Fatalf("work tree: %s", st)
	}
	// Each event's parent is the one before it on its app.
	h, err := s.Head("a.example.com")
	if err != nil || h.Events != 14 || h.Version != "1.0.39" {
		t.Fatalf("head of a = %+v, %v", h, err)
	}
	if got := res[39].Event.GetParents(); len(got) != 1 || got[0] != items[36].Options.ID {
		t.Fatalf("last event's parents = %v, want %s", got, items[36].Options.ID)
	}
	fresh := join(t, remote)
	if h2, err := fresh.Head("a.example.com"); err != nil || h2.Events != h.Events || h2.Version != h.Version {
		t.Fatalf("a fresh clone reads %+v, %v", h2, err)
	}
}

// An event refused half way through a group's chain (a lease another
// operator holds) leaves nothing of the chain: the others are appended,
// each on its own, the refused one is not, and neither the branch, the
// work tree nor the state kept on disk names a commit the branch lacks.
func TestGroupSpoiledHalfWayLeavesNoTrace(t *testing.T) {
	remote := bareRemote(t)
	s := join(t, remote)
	if _, err := s.Lock(ctx, "b.example.com", bob, time.Now(), time.Hour, "mine", AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	items := groupOf(6, "a.example.com", "b.example.com", "c.example.com")
	res := s.AppendGroup(ctx, &metav1.Actor{Name: "hub"}, groupTime(t, items), items)
	for i, r := range res {
		var locked *LockedError
		switch {
		case i%3 == 1 && !errors.As(r.Err, &locked):
			t.Fatalf("item %d on b: %v, want refused for Bob's lease", i, r.Err)
		case i%3 != 1 && (r.Err != nil || !r.Pushed):
			t.Fatalf("item %d: %+v, %v", i, r.Appended, r.Err)
		}
	}
	tip, _ := s.repo.Head()
	if got := git(t, remote, "log", "--format=%an", "main", "--", "projects/coop/prod/b.example.com"); got != "Bob" {
		t.Fatalf("b's commits are by %q, want Bob's lock alone", got)
	}
	if got := keptState(t, s); got != tip.String() {
		t.Fatalf("kept state checked %s, want the tip %s", got, tip)
	}
	if st := git(t, s.Root(), "status", "--porcelain", "--untracked-files=all"); st != "" {
		t.Fatalf("work tree: %s", st)
	}
	if h, err := s.Head("a.example.com"); err != nil || h.Events != 2 {
		t.Fatalf("head of a = %+v, %v", h, err)
	}
}
