package envs_test

import (
	"errors"
	"strings"
	"testing"

	"git.coopcloud.tech/coop-cloud/meta/envs"
	"git.coopcloud.tech/coop-cloud/meta/store"
)

// An env change made offline that collides with one pushed meanwhile is
// set aside by the next pull, and the clone goes on; Reapply puts it back
// key by key when no key collides, refuses (ErrConflict) naming the keys
// when one does, and with mine gives the change's values. No value is in
// clear anywhere: not in the aside, not in git, not in .git/meta.
func TestReapplyByKey(t *testing.T) {
	alice, bob := newOperator(t, "alice"), newOperator(t, "bob")
	for _, tc := range []struct {
		name        string
		mine, their string // the offline change, the pushed one
		mineWins    bool
		collides    []string
		want        map[string]string
	}{
		{"other keys", "B=mine", "C=theirs", false, nil, map[string]string{"A": "1", "B": "mine", "C": "theirs"}},
		{"same key, same value", "A=2", "A=2", false, nil, map[string]string{"A": "2"}},
		{"same key", "A=mine-PLANT-reapply", "A=theirs", false, []string{"A"}, map[string]string{"A": "theirs"}},
		{"same key, mine", "A=mine-PLANT-reapply", "A=theirs", true, nil, map[string]string{"A": "mine-PLANT-reapply"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, clones := shared(t, alice, bob)
			a, b := as(clones[0], alice), as(clones[1], bob)
			a.Options = store.AppendOptions{Offline: true}
			k, v, _ := strings.Cut(tc.mine, "=")
			if _, err := a.Set(ctx, app, []envs.KV{{Key: k, Value: v}}, envs.Note{}); err != nil {
				t.Fatal(err)
			}
			k, v, _ = strings.Cut(tc.their, "=")
			if _, err := b.Set(ctx, app, []envs.KV{{Key: k, Value: v}}, envs.Note{}); err != nil {
				t.Fatal(err)
			}
			// Alice's sync takes Bob's change in; hers is set aside or, when
			// the same, already there.
			if _, err := clones[0].Sync(ctx, store.SyncOptions{}); err != nil {
				t.Fatalf("sync: %v", err)
			}
			a.Options = store.AppendOptions{}
			done, err := a.Reapply(ctx, "", tc.mineWins)
			var c *envs.CollisionError
			switch {
			case tc.collides != nil:
				if !errors.Is(err, store.ErrConflict) || !errors.As(err, &c) || strings.Join(c.Keys[app], ",") != strings.Join(tc.collides, ",") {
					t.Fatalf("reapply = %v, want a collision on %v", err, tc.collides)
				}
				if asides, _ := clones[0].Asides(ctx); len(asides) != 1 {
					t.Fatalf("asides after a collision: %v", asides)
				}
			case err != nil:
				t.Fatalf("reapply: %v", err)
			default:
				if asides, _ := clones[0].Asides(ctx); len(asides) != 0 || len(done) != 1 {
					t.Fatalf("re-applied %d, asides left: %v", len(done), asides)
				}
			}
			f, _, _, err := a.Open(ctx, app)
			if err != nil {
				t.Fatal(err)
			}
			for key, want := range tc.want {
				if got, _ := f.Get(key); got != want {
					t.Errorf("%s = %q, want %q", key, got, want)
				}
			}
			// Bob, syncing, gets the same.
			if _, err := clones[1].Sync(ctx, store.SyncOptions{}); err != nil {
				t.Fatal(err)
			}
			fb, _, _, err := b.Open(ctx, app)
			if err != nil {
				t.Fatal(err)
			}
			for key, want := range tc.want {
				if got, _ := fb.Get(key); got != want {
					t.Errorf("bob's %s = %q, want %q", key, got, want)
				}
			}
			assertClean(t, clones[0].Root())
			assertNoLeak(t, []string{"PLANT-reapply"}, clones[0].Root())
		})
	}
}
