package envs_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"git.coopcloud.tech/coop-cloud/meta/envs"
	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/sealed"
	"git.coopcloud.tech/coop-cloud/meta/sealed/dotenv"
	"git.coopcloud.tech/coop-cloud/meta/store"
	"git.coopcloud.tech/coop-cloud/meta/store/config"
)

// editConfig changes meta.yaml by hand and commits it, as an operator
// might, and returns the log as the next meta command opens it.
func editConfig(t *testing.T, s *store.Store, edit func(string) string) *store.Store {
	t.Helper()
	p := filepath.Join(s.Root(), config.File)
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(edit(string(data))), 0o644); err != nil {
		t.Fatal(err)
	}
	git(t, s.Root(), "commit", "-qam", "edit meta.yaml by hand")
	return reopen(t, s)
}

func listing(t *testing.T, e *envs.Envs) map[string]envs.Listing {
	t.Helper()
	ls, err := e.List()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]envs.Listing{}
	for _, l := range ls {
		out[l.Address.App] = l
	}
	return out
}

// List reads who each file is sealed to, without decrypting; a hand edit
// of meta.yaml makes files stale, and Rekey re-encrypts those, in one
// commit.
func TestListMarksStaleFilesAndRekeyFixesThem(t *testing.T) {
	alice, bob := newOperator(t, "alice"), newOperator(t, "bob")
	s := twoApps(t, alice)
	nobody := func() (sealed.Identity, error) { return sealed.Identity{}, errors.New("List must decrypt nothing") }
	list := func(s *store.Store) map[string]envs.Listing {
		e := as(s, alice)
		e.Identity = nobody
		return listing(t, e)
	}
	check := func(t *testing.T, got map[string]envs.Listing, stale bool, readers ...string) {
		t.Helper()
		if len(got) != 2 {
			t.Fatalf("listed %v, want both apps", got)
		}
		for a, l := range got {
			if l.Stale != stale || !slices.Equal(l.Readers, readers) {
				t.Errorf("%s: stale %v, readers %v; want %v, %v", a, l.Stale, l.Readers, stale, readers)
			}
			if data, _, _ := s.EnvFile(a); l.Digest != sealed.Digest(data) {
				t.Errorf("%s: digest %s", a, l.Digest)
			}
		}
		if got[app].Address.Env != "prod" || got[staging].Address.Env != "staging" {
			t.Errorf("addresses %+v, %+v", got[app].Address, got[staging].Address)
		}
	}
	check(t, list(s), false, "alice")

	// bob is added by hand: the files are not sealed to him yet.
	s = editConfig(t, s, func(c string) string { return c + "  - name: bob\n    age: " + bob.recipient() + "\n" })
	check(t, list(s), true, "alice")
	if _, err := openAs(t, s, bob, app); !errors.Is(err, sealed.ErrNotRecipient) || !strings.Contains(err.Error(), "meta env rekey") {
		t.Errorf("bob, in meta.yaml but not yet a recipient, is told %v", err)
	}

	before := headOf(t, s)
	w, err := as(s, alice).Rekey(ctx, "env rekey", envs.Note{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if git(t, s.Root(), "rev-parse", "HEAD~1") != before || len(w.Events) != 2 {
		t.Fatalf("rekey: %d events, not one commit on top", len(w.Events))
	}
	want := sortedCopy(append([]string{envPath("coop", "prod", app), envPath("coop", "staging", staging)}, w.Paths...))
	if got := headFiles(t, s); !slices.Equal(got, want) {
		t.Errorf("the rekey commit holds %v, want %v (meta.yaml untouched)", got, want)
	}
	if got := git(t, s.Root(), "log", "-1", "--format=%s"); got != "env rekey: re-encrypt 2 env file(s) by alice" {
		t.Errorf("subject %q", got)
	}
	assertClean(t, s.Root())
	check(t, list(reopen(t, s)), false, "alice", "bob")
	for _, a := range []string{app, staging} {
		if _, err := openAs(t, s, bob, a); err != nil {
			t.Errorf("bob cannot open %s after the rekey: %v", a, err)
		}
	}

	t.Run("nothing stale: nothing to do", func(t *testing.T) {
		before := headOf(t, s)
		if _, err := as(s, alice).Rekey(ctx, "env rekey", envs.Note{}, nil, nil); !errors.Is(err, store.ErrNoChange) {
			t.Fatalf("rekey with nothing stale: %v", err)
		}
		assertUnwritten(t, s, before)
	})
	t.Run("forced: a fresh data key, the same readers", func(t *testing.T) {
		old, _, _ := s.EnvFile(app)
		w, err := as(s, alice).Rekey(ctx, "env rekey", envs.Note{}, []string{app}, nil)
		if err != nil || len(w.Events) != 1 || w.Events[0].GetAddress().GetApp() != app {
			t.Fatalf("forced rekey: %v, %v", w, err)
		}
		now, _, _ := s.EnvFile(app)
		if string(now) == string(old) || !slices.Equal(sealed.Recipients(now), sealed.Recipients(old)) {
			t.Error("not re-encrypted to the same readers")
		}
		if f, err := openAs(t, s, bob, app); err != nil || string(f.Bytes()) != appRoundTrip {
			t.Errorf("after a forced rekey: %v", err)
		}
	})
	t.Run("forced for an app without an env", func(t *testing.T) {
		before := headOf(t, s)
		_, err := as(s, alice).Rekey(ctx, "env rekey", envs.Note{}, []string{"nope.example.org"}, nil)
		if !errors.Is(err, store.ErrNoEnv) || !strings.Contains(err.Error(), "nope.example.org") {
			t.Fatalf("forced rekey of no env: %v", err)
		}
		assertUnwritten(t, s, before)
	})
	t.Run("a recipient meta.yaml no longer names is shown by key", func(t *testing.T) {
		s := editConfig(t, s, func(c string) string {
			return strings.Replace(c, "  - name: bob\n    age: "+bob.recipient()+"\n", "", 1)
		})
		got := list(s)
		readers := sortedCopy([]string{"alice", bob.recipient()})
		for a, l := range got {
			if !l.Stale || !slices.Equal(l.Readers, readers) {
				t.Errorf("%s: stale %v, readers %v", a, l.Stale, l.Readers)
			}
		}
	})
}

// Diff names the keys that differ between the env files two events ran
// with: env events and deploys alike, in either order, through rekeys. A
// rekey does not reach back: versions from before it stay sealed to the
// readers of their day.
func TestDiffNamesKeysBetweenEvents(t *testing.T) {
	alice, bob := newOperator(t, "alice"), newOperator(t, "bob")
	s := newLog(t, alice)
	e := as(s, alice)
	id := func(res *envs.Result, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return res.Events[0].GetId()
	}
	appended := func(kind metav1.Kind) string {
		t.Helper()
		ev := &metav1.Event{Kind: kind, Outcome: metav1.Outcome_OUTCOME_SUCCEEDED, Version: "1.0.0", Message: "a note", Address: &metav1.Address{App: app}}
		out, err := s.Append(ctx, ev, e.Actor, time.Now(), store.AppendOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return out.Event.GetId()
	}
	imported := id(e.Import(ctx, &metav1.Address{App: app}, parse(t, "A=1\nB=PLANT-b-1\nC=3\n"), envs.Note{}))
	set := id(e.Set(ctx, app, []envs.KV{{Key: "B", Value: "PLANT-b-2"}, {Key: "D", Value: "4"}}, envs.Note{}))
	unset := id(e.Unset(ctx, app, []string{"A"}, envs.Note{}))
	deployed := appended(metav1.Kind_KIND_DEPLOY)
	note := appended(metav1.Kind_KIND_NOTE)
	if _, err := e.AddOperator(ctx, bob.config(), envs.Note{}); err != nil {
		t.Fatal(err)
	}
	evs, err := s.Log(app, 1)
	if err != nil {
		t.Fatal(err)
	}
	rekeyed := evs[0].GetId()
	later := id(e.Set(ctx, app, []envs.KV{{Key: "E", Value: "5"}}, envs.Note{}))
	short := store.Abbreviate([]string{imported, set, unset, deployed, rekeyed, note, later})

	for _, c := range []struct {
		name                    string
		by                      operator
		from, to                string
		added, changed, removed []string
		is                      error
		says                    string
	}{
		{name: "import to set", from: imported, to: set, added: []string{"D"}, changed: []string{"B"}},
		{name: "set to unset", from: set, to: unset, removed: []string{"A"}},
		{name: "import to unset", from: imported, to: unset, added: []string{"D"}, changed: []string{"B"}, removed: []string{"A"}},
		{name: "backwards", from: unset, to: imported, added: []string{"A"}, changed: []string{"B"}, removed: []string{"D"}},
		{name: "an event to itself", from: set, to: set},
		{name: "the env event to the deploy that ran with it", from: unset, to: deployed},
		{name: "the import to a deploy", from: imported, to: deployed, added: []string{"D"}, changed: []string{"B"}, removed: []string{"A"}},
		{name: "across a rekey", from: unset, to: rekeyed},
		{name: "an event with no env", from: imported, to: note, is: store.ErrNoEnv, says: "records none"},
		{name: "by the start of their ids, in any case", from: strings.ToLower(short[imported]), to: short[set], added: []string{"D"}, changed: []string{"B"}},
		{name: "an id too short", from: imported[:3], to: set, is: store.ErrAmbiguousID, says: "too short"},
		{name: "no such event", from: "01J00000000000000000000000", to: set, is: store.ErrNotFound, says: "no events with the id 01J00000000000000000000000"},
		{name: "bob, since the rekey", by: bob, from: rekeyed, to: later, added: []string{"E"}},
		{name: "bob, from before he could read it", by: bob, from: set, to: later, is: sealed.ErrNotRecipient, says: "your age identity cannot decrypt it"},
	} {
		t.Run(c.name, func(t *testing.T) {
			by := c.by
			if by.id == nil {
				by = alice
			}
			got, err := as(s, by).Diff(ctx, app, c.from, c.to)
			if c.says != "" {
				if err == nil || (c.is != nil && !errors.Is(err, c.is)) || !strings.Contains(err.Error(), c.says) {
					t.Fatalf("diff: %v, want it to say %q", err, c.says)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := dotenv.Changes{Added: nonNil(c.added), Changed: nonNil(c.changed), Removed: nonNil(c.removed)}
			if !slices.Equal(got.Added, want.Added) || !slices.Equal(got.Changed, want.Changed) || !slices.Equal(got.Removed, want.Removed) {
				t.Errorf("diff %+v, want %+v", got, want)
			}
		})
	}
}

// A Store that commits a new meta.yaml (through Tx.PutConfig) answers
// Config() with it at once: List does not call files just re-encrypted to
// exactly meta.yaml's readers stale nor name the new operator by age key,
// and a not-a-recipient error knows them as an operator. (The refactor of
// the commit path had lost this; cmd/meta opens the log afresh per command
// and did not show it, but any longer-lived Store does.)
func TestConfigIsCurrentAfterItsOwnWrite(t *testing.T) {
	alice, bob := newOperator(t, "alice"), newOperator(t, "bob")
	s := twoApps(t, alice)
	e := as(s, alice)
	if _, err := e.SetAccess(ctx, "coop/prod", []string{"alice"}, envs.Note{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.AddOperator(ctx, bob.config(), envs.Note{}); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Config().Operator("bob"); !ok {
		t.Errorf("Store.Config() after the store itself committed operator bob still lacks him")
	}
	fresh := listing(t, as(reopen(t, s), alice))
	for a, l := range listing(t, e) {
		if l.Stale || !slices.Equal(l.Readers, fresh[a].Readers) {
			t.Errorf("%s, listed by the store that re-encrypted it: stale %v, readers %v; want false, %v (as a fresh Open lists it)", a, l.Stale, l.Readers, fresh[a].Readers)
		}
	}
	_, err := openAs(t, s, bob, app)
	if !errors.Is(err, sealed.ErrNotRecipient) || !strings.Contains(err.Error(), "you are operator bob") {
		t.Errorf("bob, an operator but no reader of coop/prod, is told: %v", err)
	}
}
