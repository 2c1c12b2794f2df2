package swarm

import (
	"context"
	"fmt"
	"strings"
	"time"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
)

// Swarm's update states (UpdateStatus.State).
const (
	StateUpdating          = "updating"
	StatePaused            = "paused"
	StateCompleted         = "completed"
	StateRollbackStarted   = "rollback_started"
	StateRollbackPaused    = "rollback_paused"
	StateRollbackCompleted = "rollback_completed"
)

// FollowEvery is how often Follow looks, besides when the Engine's event
// stream says the stack changed; FollowGrace is the grace it gives
// Settled.
const (
	FollowEvery = 500 * time.Millisecond
	FollowGrace = 2 * time.Second
)

// Settled is the one rule of what Swarm did with the update a deploy
// started: want is the version the deploy put in (the chaos version under
// chaos, compared as the observation's Running version is), grace how
// long a spec change that started no Swarm update must be left alone
// before it counts as done (Swarm starts an update within milliseconds of
// the spec change, and until then the old tasks still run).
//
// The app service's UpdateStatus decides, unless it is stale:
// rollback_completed is rolled back, paused and rollback_paused are
// paused, completed is succeeded when the app runs want (failed when
// another version runs). Without an UpdateStatus (a first deploy, or a
// spec change that replaces no task, as a label-only one) it is
// succeeded once the spec is grace old, the app's labels say want and
// every service runs all its tasks, none starting and none from an older
// spec. An update in progress on any service (updating, rollback_started)
// is not settled; nor is anything else. When the app succeeded but
// another service of the stack was rolled back or paused, that is the
// verdict.
//
// On the real Engine UpdateStatus is reset by every spec change, so right
// after a deploy the last update's completed or rollback_completed is
// never there to be mistaken for this deploy's.
func (s *Stack) Settled(want string, grace time.Duration) (Verdict, bool) {
	app := s.App()
	if app == nil {
		return Verdict{}, false
	}
	for _, svc := range s.Services {
		if st := svc.state(); st == StateUpdating || st == StateRollbackStarted {
			return Verdict{}, false
		}
	}
	runs := RunningVersion(app.Labels, s.Name)
	var v Verdict
	switch app.state() {
	case StateRollbackCompleted:
		return Verdict{metav1.Outcome_OUTCOME_ROLLED_BACK, fmt.Sprintf("Swarm rolled the update back (%s); %s runs%s", app.UpdateMessage, orNone(runs), app.lastError())}, true
	case StateRollbackPaused:
		return Verdict{metav1.Outcome_OUTCOME_PAUSED, fmt.Sprintf("Swarm's rollback of the update itself paused (%s); %s is in the spec%s", app.UpdateMessage, orNone(runs), app.lastError())}, true
	case StatePaused:
		return Verdict{metav1.Outcome_OUTCOME_PAUSED, fmt.Sprintf("Swarm paused the update (%s); %s is in the spec%s", app.UpdateMessage, orNone(runs), app.lastError())}, true
	case StateCompleted:
		if runs != want {
			return Verdict{metav1.Outcome_OUTCOME_FAILED, fmt.Sprintf("Swarm completed an update, but %s runs, not %s", orNone(runs), want)}, true
		}
		v = Verdict{metav1.Outcome_OUTCOME_SUCCEEDED, fmt.Sprintf("Swarm completed the update; %s runs", runs)}
	case "":
		if runs != want || s.At.Sub(app.UpdatedAt) < grace || !s.converged() || !s.stable(grace) {
			return Verdict{}, false
		}
		v = Verdict{metav1.Outcome_OUTCOME_SUCCEEDED, fmt.Sprintf("%s runs; every task of the stack is running (Swarm had no update to make)", runs)}
	default:
		return Verdict{}, false
	}
	for _, svc := range s.Services {
		switch svc.state() {
		case StateRollbackCompleted:
			return Verdict{metav1.Outcome_OUTCOME_ROLLED_BACK, fmt.Sprintf("Swarm rolled service %s back (%s)%s", svc.Name, svc.UpdateMessage, svc.lastError())}, true
		case StatePaused, StateRollbackPaused:
			return Verdict{metav1.Outcome_OUTCOME_PAUSED, fmt.Sprintf("Swarm's update of service %s is %s (%s)%s", svc.Name, strings.ReplaceAll(svc.UpdateState, "_", " "), svc.UpdateMessage, svc.lastError())}, true
		}
	}
	return v, true
}

// state is the UpdateStatus state that counts: none when it is stale.
func (s *ServiceState) state() string {
	if s.UpdateStale {
		return ""
	}
	return s.UpdateState
}

func (s *ServiceState) lastError() string {
	if s.LastError == "" {
		return ""
	}
	return "; the last task error: " + s.LastError
}

func orNone(version string) string {
	if version == "" {
		return "no version"
	}
	return version
}

// SettleTimeout is how long an update of the stack may take, by its
// update_config: per service ceil(replicas / parallelism) batches (one
// batch when parallelism is 0, all at once; the desired tasks for a
// global service) of (delay + monitor + 30 s for a task to start), twice
// that under failure_action rollback (the rollback takes as long); the
// longest service (Swarm updates services at once), plus 30 s; at least 1
// minute, at most 15.
func (s *Stack) SettleTimeout() time.Duration {
	const start, slack, least, most = 30 * time.Second, 30 * time.Second, time.Minute, 15 * time.Minute
	var longest time.Duration
	for _, svc := range s.Services {
		tasks := uint64(svc.Desired)
		if svc.Replicas != nil {
			tasks = *svc.Replicas
		}
		batches := uint64(1)
		if p := svc.Update.Parallelism; p > 0 {
			batches = (tasks + p - 1) / p
		}
		d := time.Duration(batches) * (svc.Update.Delay + svc.Update.Monitor + start)
		if svc.Update.FailureAction == "rollback" {
			d *= 2
		}
		longest = max(longest, d)
	}
	return min(max(longest+slack, least), most)
}

// Follow watches stack on e until Swarm settles the update that put want
// in (Settled, with FollowGrace): it looks every FollowEvery, and at once
// when the Engine's event stream names the stack; it calls progress (when
// not nil) with each look that differs from the one before. It returns
// the last look with the verdict; when timeout passes or ctx ends first,
// the last look and an error wrapping ErrNotSettled and the context's
// error; when the Engine fails, the last look and the Engine's error
// (wrapping ErrUnreachable when it stopped answering).
func Follow(ctx context.Context, e Engine, stack, want string, timeout time.Duration, progress func(*Stack)) (*Stack, Verdict, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// The stream only hurries a look: when it breaks, the ticker goes on.
	changes, _ := e.Changes(ctx)
	tick := time.NewTicker(FollowEvery)
	defer tick.Stop()
	var last *Stack
	var seen string
	for {
		st, err := e.Look(ctx, stack)
		if err != nil {
			if ctx.Err() != nil {
				return last, Verdict{}, notSettled(ctx, stack, timeout, last)
			}
			return last, Verdict{}, err
		}
		last = st
		if k := st.Summary(); k != seen {
			seen = k
			if progress != nil {
				progress(st)
			}
		}
		if v, ok := st.Settled(want, FollowGrace); ok {
			return settle(ctx, e, st, v, progress), v, nil
		}
	wait:
		for {
			select {
			case <-ctx.Done():
				return last, Verdict{}, notSettled(ctx, stack, timeout, last)
			case <-tick.C:
				break wait
			case name, ok := <-changes:
				if !ok {
					changes = nil
				} else if name == stack {
					break wait
				}
			}
		}
	}
}

// FollowConverge bounds how long Follow, once Swarm has settled an update,
// waits for the stack's tasks to catch up, so that what it returns is what
// then runs: a rollback is over (rollback_completed) before the tasks of
// the version before run again (rollback_config's default order is
// stop-first), and an update completes while an old task still stops.
const FollowConverge = 15 * time.Second

// settle waits, up to FollowConverge, for every service of the stack to run
// as many tasks as Swarm wants, none starting and none of an older spec,
// and returns the last look. A paused update has tasks that may never
// converge: it is returned at once.
func settle(ctx context.Context, e Engine, st *Stack, v Verdict, progress func(*Stack)) *Stack {
	if v.Outcome == metav1.Outcome_OUTCOME_PAUSED {
		return st
	}
	ctx, cancel := context.WithTimeout(ctx, FollowConverge)
	defer cancel()
	seen := st.Summary()
	for !st.converged() {
		select {
		case <-ctx.Done():
			return st
		case <-time.After(FollowEvery):
		}
		next, err := e.Look(ctx, st.Name)
		if err != nil {
			return st
		}
		st = next
		if k := st.Summary(); k != seen && progress != nil {
			seen = k
			progress(st)
		}
	}
	return st
}

// stable says every service's tasks have run long enough to count as
// up, as Swarm's update monitor would judge them: for the service's
// monitor and grace besides, or, when one of its tasks failed since the
// spec changed, for twice that. Without it, one look that lands while a
// crash-looping task is briefly up would pass a first deploy (which
// starts no Swarm update, so no monitor of Swarm's judges it).
func (s *Stack) stable(grace time.Duration) bool {
	for _, svc := range s.Services {
		if svc.Running == 0 {
			continue
		}
		need := svc.Update.Monitor + grace
		if svc.LastErrorAt.After(svc.UpdatedAt) {
			need *= 2
		}
		if s.At.Sub(svc.RunningSince) < need {
			return false
		}
	}
	return true
}

// converged says every service runs all the tasks Swarm wants, none
// starting and none of an older spec.
func (s *Stack) converged() bool {
	for _, svc := range s.Services {
		if svc.Running != svc.Desired || svc.Starting > 0 || svc.Outdated > 0 {
			return false
		}
	}
	return true
}

func notSettled(ctx context.Context, stack string, timeout time.Duration, last *Stack) error {
	saw := "nothing (no look answered)"
	if last != nil {
		saw = last.Summary()
	}
	return fmt.Errorf("%w: stack %s, within %s (%w); last seen: %s", ErrNotSettled, stack, timeout, ctx.Err(), saw)
}

// Summary says in one line what a look saw, for progress and messages:
// per service its version label, update state and tasks.
func (s *Stack) Summary() string {
	if s.Missing() {
		return "no service of the stack"
	}
	parts := make([]string, len(s.Services))
	for i, svc := range s.Services {
		p := fmt.Sprintf("%s %d/%d running", svc.Name, svc.Running, svc.Desired)
		if v := RunningVersion(svc.Labels, s.Name); v != "" {
			p += " " + v
		}
		if svc.Starting > 0 {
			p += fmt.Sprintf(" (%d starting)", svc.Starting)
		}
		if st := svc.state(); st != "" {
			p += " " + strings.ReplaceAll(st, "_", " ")
		}
		if svc.LastError != "" {
			p += ", last error: " + svc.LastError
		}
		parts[i] = p
	}
	return strings.Join(parts, "; ")
}
