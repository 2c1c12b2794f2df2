package store

import (
	"context"
	"testing"
	"time"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/store/fold"
)

// An observation is recorded when what runs changed, and one that settles
// the pending deploy always; a settlement of a deploy no longer pending
// (settled meanwhile, or superseded) settles nothing, and what an Engine
// said that no event may hold is made to fit.
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
	settle := seen("1.1.0", "updating")
	settle.Settles, settle.SettledOutcome = pending, metav1.Outcome_OUTCOME_SUCCEEDED
	if observe(settle) == nil {
		t.Fatal("a settlement that says what the last observation said was not recorded")
	}
	h, _ = s.Head(domain)
	if h.State != fold.StateDeployed || h.Version != "1.1.0" || h.Deployed.SettledBy == "" {
		t.Fatalf("after settling: state %s version %s deployed %+v", h.State, h.Version, h.Deployed)
	}
	again := seen("1.1.0", "updating")
	again.Settles, again.SettledOutcome = pending, metav1.Outcome_OUTCOME_ROLLED_BACK
	if out := observe(again); out != nil {
		t.Fatalf("a second settlement of a settled deploy was recorded: %v", out.Event)
	}
	h, _ = s.Head(domain)
	if h.State != fold.StateDeployed || h.Version != "1.1.0" {
		t.Fatalf("a late settlement changed the app: %s %s", h.State, h.Version)
	}
}
