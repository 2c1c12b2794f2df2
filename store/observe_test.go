package store

import (
	"context"
	"testing"
	"time"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/store/fold"
)

// An observation is recorded when what runs changed, and one that settles
// the pending deploy always; only the verdict on the deploy pending at the
// time of the write settles anything, and what an Engine said that no
// event may hold is made to fit.
func TestObserveSettlesOnlyThePendingDeploy(t *testing.T) {
	ctx := context.Background()
	s := newLog(t)
	const domain = "a.example.com"
	mustAppend(t, s, deploy(domain, "1.0.0"))
	up := &metav1.Event{Kind: metav1.Kind_KIND_UPGRADE, Outcome: metav1.Outcome_OUTCOME_PENDING, Version: "1.1.0", Address: &metav1.Address{App: domain}}
	pending := mustAppend(t, s, up).Event.GetId()
	seen := func(version, state string) *metav1.Observation {
		return &metav1.Observation{Service: "a_example_com_app", Version: version, UpdateState: state, Source: "serve",
			Services: []*metav1.ServiceStatus{{Name: "a_example_com_app", Running: 1, Desired: 1, LastError: "exit\x1b[2J"}}}
	}
	observe := func(o *metav1.Observation) *Appended {
		t.Helper()
		out, err := s.Observe(ctx, domain, o, alice, time.Now(), AppendOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	if observe(seen("1.1.0", "updating")) == nil {
		t.Fatal("a first observation was not recorded")
	}
	if observe(seen("1.1.0", "updating")) != nil {
		t.Fatal("the same observation was recorded twice")
	}
	h, _ := s.Head(domain)
	if h.State != fold.StatePending || h.Observed.Services[0].LastError != "exit\ufffd[2J" {
		t.Fatalf("state %s, last error %q", h.State, h.Observed.Services[0].LastError)
	}
	// Swarm has not settled it: nothing new.
	undecided := func(want string) (metav1.Outcome, bool) {
		if want != "1.1.0" {
			t.Errorf("asked about %s, want the pending 1.1.0", want)
		}
		return 0, false
	}
	if out, err := s.ObserveSettling(ctx, domain, seen("1.1.0", "updating"), undecided, alice, time.Now(), AppendOptions{}); out != nil || err != nil {
		t.Fatalf("an undecided verdict recorded %v, %v", out, err)
	}
	succeeded := func(string) (metav1.Outcome, bool) { return metav1.Outcome_OUTCOME_SUCCEEDED, true }
	out, err := s.ObserveSettling(ctx, domain, seen("1.1.0", "updating"), succeeded, alice, time.Now(), AppendOptions{})
	if err != nil || out == nil {
		t.Fatalf("a settlement that says what the last observation said was not recorded: %v", err)
	}
	if o := out.Event.GetObservation(); o.GetSettles() != pending || o.GetSettledOutcome() != metav1.Outcome_OUTCOME_SUCCEEDED {
		t.Fatalf("settles %q as %s", o.GetSettles(), o.GetSettledOutcome())
	}
	h, _ = s.Head(domain)
	if h.State != fold.StateDeployed || h.Version != "1.1.0" || h.Deployed.SettledBy == "" {
		t.Fatalf("after settling: state %s version %s deployed %+v", h.State, h.Version, h.Deployed)
	}
	// Settled: a second verdict has nothing to settle, and a forged
	// settles field is not believed.
	rolledBack := func(string) (metav1.Outcome, bool) { return metav1.Outcome_OUTCOME_ROLLED_BACK, true }
	if out, err := s.ObserveSettling(ctx, domain, seen("1.1.0", "updating"), rolledBack, alice, time.Now(), AppendOptions{}); out != nil || err != nil {
		t.Fatalf("a second settlement of a settled deploy was recorded: %v, %v", out, err)
	}
	forged := seen("1.1.0", "updating")
	forged.Settles, forged.SettledOutcome = pending, metav1.Outcome_OUTCOME_ROLLED_BACK
	if out := observe(forged); out != nil {
		t.Fatalf("a settles field the caller set was recorded: %v", out.Event)
	}
	h, _ = s.Head(domain)
	if h.State != fold.StateDeployed || h.Version != "1.1.0" {
		t.Fatalf("a late settlement changed the app: %s %s", h.State, h.Version)
	}
}

// Two observers on two clones of one remote (two hubs, or a hub and an
// operator's meta observe) see the same: the one whose push loses the race
// decides again on top of the winner's, and records nothing. A pending
// deploy is settled once, and the app does not fork.
func TestObservationsRacingThroughOneRemote(t *testing.T) {
	ctx := context.Background()
	url := bareRemote(t)
	a, b := join(t, url), join(t, url)
	const domain = "a.example.com"
	mustAppend(t, a, deploy(domain, "1.0.0"))
	up := &metav1.Event{Kind: metav1.Kind_KIND_UPGRADE, Outcome: metav1.Outcome_OUTCOME_PENDING, Version: "1.1.0", Address: &metav1.Address{App: domain}}
	mustAppend(t, a, up)
	seen := func() *metav1.Observation {
		return &metav1.Observation{Service: "a_example_com_app", Version: "1.1.0", UpdateState: "completed", Source: "serve",
			Services: []*metav1.ServiceStatus{{Name: "a_example_com_app", Running: 1, Desired: 1}}}
	}
	succeeded := func(string) (metav1.Outcome, bool) { return metav1.Outcome_OUTCOME_SUCCEEDED, true }
	won := false
	// B decides (its verdict is asked after its pull) while A, on the
	// other clone, records and pushes the same first.
	racing := func(want string) (metav1.Outcome, bool) {
		if !won {
			won = true
			if out, err := a.ObserveSettling(ctx, domain, seen(), succeeded, alice, time.Now(), AppendOptions{}); err != nil || out == nil || !out.Pushed {
				t.Fatalf("the winner: %v, %v", out, err)
			}
		}
		return succeeded(want)
	}
	out, err := b.ObserveSettling(ctx, domain, seen(), racing, alice, time.Now(), AppendOptions{})
	if err != nil || out != nil {
		t.Fatalf("the loser recorded %v, %v; want nothing", out, err)
	}
	if err := b.Pull(ctx); err != nil {
		t.Fatal(err)
	}
	h, err := b.Head(domain)
	if err != nil {
		t.Fatal(err)
	}
	if h.Forked || h.Events != 3 || h.State != fold.StateDeployed || h.Version != "1.1.0" {
		t.Fatalf("after the race: forked %v, %d events, %s %s", h.Forked, h.Events, h.State, h.Version)
	}
}
