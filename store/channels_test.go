package store

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/projects"
	"git.coopcloud.tech/coop-cloud/meta/store/config"
	"git.coopcloud.tech/coop-cloud/meta/store/fold"
)

var (
	stable  = projects.ChannelRef{Recipe: "nextcloud", Channel: "stable"}
	staging = projects.ChannelRef{Recipe: "nextcloud", Channel: "staging"}
)

func addReleases(t testing.TB, s *Store, versions ...string) {
	t.Helper()
	var specs []ReleaseSpec
	for _, v := range versions {
		specs = append(specs, ReleaseSpec{Recipe: "nextcloud", Version: v, Commit: strings.Repeat("a", 40)})
	}
	if _, err := s.AddReleases(context.Background(), specs, false, alice, time.Now(), AppendOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestReleasesAndPromotionsAreRecordsOfTheirLogs(t *testing.T) {
	ctx := context.Background()
	s := newLog(t)
	addReleases(t, s, "1.0.0+29.0.0", "1.1.0+29.0.1")
	// The first record of a recipe's log moved meta.yaml to the version
	// that says the log has them, in the same write.
	cfg, err := config.Parse([]byte(git(t, s.Root(), "show", "HEAD~1:meta.yaml")))
	if err != nil || cfg.Version != config.RecipesVersion {
		t.Fatalf("meta.yaml at the first release: version %d, %v", cfg.Version, err)
	}
	// One commit: the first record and meta.yaml's move.
	if files := git(t, s.Root(), "show", "--format=", "--name-only", "HEAD~1"); strings.Count(files, "\n") != 1 || !strings.Contains(files, "meta.yaml") || !strings.Contains(files, "projects/_recipes/nextcloud/_releases/") {
		t.Fatalf("the first release's commit holds:\n%s", files)
	}
	if before, _ := config.Parse([]byte(git(t, s.Root(), "show", "HEAD~2:meta.yaml"))); before.Version != config.Initial {
		t.Fatalf("meta.yaml before the first release: version %d", before.Version)
	}
	if _, err := s.AddReleases(ctx, []ReleaseSpec{{Recipe: "nextcloud", Version: "1.0.0+29.0.0"}}, false, alice, time.Now(), AppendOptions{}); !errors.Is(err, ErrRecorded) {
		t.Fatalf("recording a release twice: %v", err)
	}
	added, err := s.AddReleases(ctx, []ReleaseSpec{{Recipe: "nextcloud", Version: "1.0.0+29.0.0"}, {Recipe: "nextcloud", Version: "1.2.0+29.0.2"}}, true, alice, time.Now(), AppendOptions{})
	if err != nil || len(added.Skipped) != 1 || len(added.Events) != 1 {
		t.Fatalf("import: %+v, %v", added, err)
	}
	rels, err := s.Releases("nextcloud")
	if err != nil || len(rels) != 3 || rels[0].Commit != strings.Repeat("a", 40) {
		t.Fatalf("releases %+v, %v", rels, err)
	}

	if _, err := s.Promote(ctx, PromoteSpec{Channel: stable, Version: "9.9.9"}, alice, time.Now(), AppendOptions{}); !errors.Is(err, ErrNoRelease) {
		t.Fatalf("promoting an unrecorded release: %v", err)
	}
	if _, err := s.Promote(ctx, PromoteSpec{Channel: stable, Version: "1.0.0+29.0.0", Expect: "1.1.0+29.0.1"}, alice, time.Now(), AppendOptions{}); !errors.Is(err, ErrUnexpected) {
		t.Fatalf("--expect on a channel never promoted: %v", err)
	}
	if _, err := s.Promote(ctx, PromoteSpec{Channel: stable, Version: "1.0.0+29.0.0", Expect: "none", Message: "first"}, alice, time.Now(), AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Promote(ctx, PromoteSpec{Channel: stable, Version: "1.0.0+29.0.0"}, alice, time.Now(), AppendOptions{}); !errors.Is(err, ErrNoChange) {
		t.Fatalf("promoting to where it is: %v", err)
	}
	if _, err := s.Promote(ctx, PromoteSpec{Channel: stable, Version: "1.1.0+29.0.1", Expect: "1.0.0+29.0.0"}, alice, time.Now(), AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	c, err := s.Channel(stable)
	if err != nil || c.Version != "1.1.0+29.0.1" || len(c.History) != 2 || c.History[1].Previous != "1.0.0+29.0.0" || c.Forked {
		t.Fatalf("channel %+v, %v", c, err)
	}
	// Nothing of it is an app.
	if heads, err := s.List(); err != nil || len(heads) != 0 {
		t.Fatalf("ls shows %d apps, %v", len(heads), err)
	}
	v, err := s.Verify(ctx, nil)
	if err != nil || len(v.Findings) != 0 {
		t.Fatalf("verify: %+v, %v", v, err)
	}
	assertClean(t, s.Root())
}

// A first record of a recipe's log that cannot be written leaves meta.yaml
// as it was: nothing is written at all.
func TestRefusedFirstRecordLeavesMetaYAML(t *testing.T) {
	s := newLog(t)
	tip := git(t, s.Root(), "rev-parse", "HEAD")
	_, err := s.AddReleases(context.Background(), []ReleaseSpec{{Recipe: "nextcloud", Version: "1.0.0", Notes: "bad \x1b notes"}}, false, alice, time.Now(), AppendOptions{})
	if err == nil {
		t.Fatal("a release with an escape in its notes was recorded")
	}
	if _, err := s.SetRule(context.Background(), stable, "staging", time.Hour, "why \x1b", alice, time.Now(), AppendOptions{}); err == nil {
		t.Fatal("a rule with an escape in its message was recorded")
	}
	if now := git(t, s.Root(), "rev-parse", "HEAD"); now != tip {
		t.Fatalf("refused writes committed: %s", git(t, s.Root(), "log", "--format=%s", tip+"..HEAD"))
	}
	assertClean(t, s.Root())
}

func TestChannelRuleSoaks(t *testing.T) {
	ctx := context.Background()
	s := newLog(t)
	addReleases(t, s, "1.0.0", "1.1.0")
	for _, d := range []string{"a.example.org", "b.example.org"} {
		ev := deploy(d, "1.0.0")
		ev.Recipe = "nextcloud"
		mustAppend(t, s, ev)
		if _, err := s.Follow(ctx, d, staging, "", alice, time.Now(), AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Follow(ctx, "a.example.org", projects.ChannelRef{Recipe: "matrix-synapse", Channel: "stable"}, "", alice, time.Now(), AppendOptions{}); !errors.Is(err, ErrRecipe) {
		t.Fatalf("following another recipe's channel: %v", err)
	}
	if _, err := s.Follow(ctx, "nobody.example.org", staging, "", alice, time.Now(), AppendOptions{}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("following with an app the log lacks: %v", err)
	}
	if _, err := s.SetRule(ctx, stable, "staging", time.Hour, "", alice, time.Now(), AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	_, err := s.Promote(ctx, PromoteSpec{Channel: stable, Version: "1.1.0"}, alice, now, AppendOptions{})
	var na *NotAdmittedError
	if !errors.As(err, &na) || len(na.Admission.Waiting) != 2 || !strings.Contains(err.Error(), "a.example.org runs 1.0.0, not 1.1.0") {
		t.Fatalf("promotion nobody ran: %v", err)
	}
	for _, d := range []string{"a.example.org", "b.example.org"} {
		up := &metav1.Event{Kind: metav1.Kind_KIND_UPGRADE, Outcome: metav1.Outcome_OUTCOME_SUCCEEDED, Version: "1.1.0", Recipe: "nextcloud", Address: &metav1.Address{App: d}}
		mustAppend(t, s, up)
	}
	if _, err := s.Promote(ctx, PromoteSpec{Channel: stable, Version: "1.1.0"}, alice, time.Now(), AppendOptions{}); !errors.As(err, &na) || !strings.Contains(err.Error(), "to go") {
		t.Fatalf("promotion still soaking: %v", err)
	}
	// An hour on, both have soaked: the promotion names them.
	p, err := s.Promote(ctx, PromoteSpec{Channel: stable, Version: "1.1.0"}, alice, time.Now().Add(61*time.Minute), AppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Event.GetPromotion(); len(got.GetAdmitted()) != 2 || got.GetForced() || got.GetRule().GetFrom() != "staging" {
		t.Fatalf("promotion %v", got)
	}
	// --force goes past the rule, and says so.
	addReleases(t, s, "1.2.0")
	p, err = s.Promote(ctx, PromoteSpec{Channel: stable, Version: "1.2.0", Force: true}, alice, time.Now(), AppendOptions{})
	if err != nil || !p.Event.GetPromotion().GetForced() {
		t.Fatalf("forced promotion: %v, %v", p, err)
	}
	h, err := s.Head("a.example.org")
	if err != nil || h.Follows == nil || h.Follows.Channel != "staging" || h.Recipe != "nextcloud" {
		t.Fatalf("head %+v, %v", h, err)
	}
	if _, err := s.Unfollow(ctx, "a.example.org", "", alice, time.Now(), AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Unfollow(ctx, "a.example.org", "", alice, time.Now(), AppendOptions{}); !errors.Is(err, ErrNotFollowing) {
		t.Fatalf("unfollowing twice: %v", err)
	}
}

// Two operators promoting one channel at once through one remote: both
// promotions land, and every clone shows the fork the same way.
func TestConcurrentPromotionsFork(t *testing.T) {
	ctx := context.Background()
	url := bareRemote(t)
	a, b := join(t, url), join(t, url)
	addReleases(t, a, "1.0.0", "1.1.0", "1.2.0")
	if _, err := a.Promote(ctx, PromoteSpec{Channel: stable, Version: "1.0.0"}, alice, time.Now(), AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := b.Pull(ctx); err != nil {
		t.Fatal(err)
	}
	bob := &metav1.Actor{Name: "Bob"}
	if _, err := a.Promote(ctx, PromoteSpec{Channel: stable, Version: "1.1.0"}, alice, time.Now(), AppendOptions{Offline: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Promote(ctx, PromoteSpec{Channel: stable, Version: "1.2.0"}, bob, time.Now(), AppendOptions{Offline: true}); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*Store{a, b, a} {
		if _, err := s.Sync(ctx, SyncOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	ca, err := a.Channel(stable)
	if err != nil {
		t.Fatal(err)
	}
	cb, _ := b.Channel(stable)
	if !ca.Forked || len(ca.History) != 3 || len(ca.Forks) != 2 || ca.Version != cb.Version || !cb.Forked {
		t.Fatalf("a: %+v\nb: %+v", ca, cb)
	}
	// Promoting again, seeing both, ends the fork.
	if _, err := a.Promote(ctx, PromoteSpec{Channel: stable, Version: ca.Version}, alice, time.Now(), AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	if c, _ := a.Channel(stable); c.Forked || c.Version != ca.Version {
		t.Fatalf("after joining: %+v", c)
	}
	_ = fold.StateDeployed
}

// An event of a recipe's log is found by its id like any other.
func TestRecipeEventsByID(t *testing.T) {
	s := newLog(t)
	addReleases(t, s, "1.0.0")
	p, err := s.Promote(context.Background(), PromoteSpec{Channel: stable, Version: "1.0.0"}, alice, time.Now(), AppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ev, err := s.Event(p.Event.GetId())
	if err != nil || ev.GetPromotion().GetChannel() != "stable" {
		t.Fatalf("Event = %v, %v", ev, err)
	}
}
