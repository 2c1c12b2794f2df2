// The unit tests of what the package makes of the Engine's answers, on
// the shapes a real Engine gave (swarmtest.Captured reads
// testdata/engine, which engine_test.go's -capture writes).
package swarm_test

import (
	"strings"
	"testing"
	"time"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/swarm"
	"git.coopcloud.tech/coop-cloud/meta/swarm/swarmtest"
)

// captured is the capture name, its stack named "mystack".
func captured(t *testing.T, name string) *swarm.Stack {
	t.Helper()
	return swarmtest.Captured(t, name, swarmtest.CapturedStack)
}

// Look's conversion of the Engine's answers, on the real shapes.
func TestLookFromCaptures(t *testing.T) {
	tests := []struct {
		file                                 string
		services                             int
		state, version                       string
		running, desired, starting, outdated int
		previous                             bool // PreviousSpec present
		lastError                            string
	}{
		{"first_deploy", 2, "", "1.0.0+a", 1, 1, 0, 0, false, ""},
		{"updating", 2, swarm.StateUpdating, "1.1.0+a", 1, 1, 1, 1, true, ""},
		{"completed", 2, swarm.StateCompleted, "1.1.0+a", 1, 1, 0, 0, true, ""},
		{"rollback_started", 1, swarm.StateRollbackStarted, "1.0.0+a", 1, 2, 1, 1, false, "task: non-zero exit (1)"},
		{"rollback_completed", 1, swarm.StateRollbackCompleted, "1.0.0+a", 2, 2, 0, 0, false, "task: non-zero exit (1)"},
		{"paused", 1, swarm.StatePaused, "2.0.0+b", 0, 1, 1, 0, true, "task: non-zero exit (1)"},
		{"label_only", 1, "", "9.9.9+z", 1, 1, 0, 0, true, ""},
		{"scaled_to_zero", 1, "", "1.0.0+a", 0, 0, 0, 0, true, ""},
		{"crash_loop", 1, "", "1.0.0+a", 0, 1, 1, 0, false, "task: non-zero exit (1)"},
		{"crash_loop_up", 1, "", "1.0.0+a", 1, 1, 0, 0, false, "task: non-zero exit (1)"},
		{"chaos", 1, "", "eb96de94+U", 1, 1, 0, 0, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			st := captured(t, tt.file)
			app := st.App()
			if len(st.Services) != tt.services || app == nil {
				t.Fatalf("services: %s", st.Summary())
			}
			got := []any{app.UpdateState, swarm.RunningVersion(app.Labels, st.Name), app.Running, app.Desired, app.Starting, app.Outdated, app.PreviousLabels != nil, app.LastError}
			want := []any{tt.state, tt.version, tt.running, tt.desired, tt.starting, tt.outdated, tt.previous, tt.lastError}
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("got  %v\nwant %v", got, want)
				}
			}
			if app.UpdateStale {
				t.Error("stale UpdateStatus: the Engine resets it on every spec change")
			}
			if (tt.lastError == "") != app.LastErrorAt.IsZero() {
				t.Errorf("LastErrorAt %s for %q", app.LastErrorAt, app.LastError)
			}
			if app.Update.Parallelism != 1 || app.Update.Monitor == 0 || app.Update.FailureAction == "" || app.Update.Order == "" {
				t.Errorf("update config without defaults: %+v", app.Update)
			}
			o := st.Observation("serve")
			if len(o.GetServices()) != tt.services || o.GetService() != "mystack_app" ||
				o.GetUpdateState() != tt.state || (o.GetPreviousVersion() != "") != tt.previous {
				t.Errorf("observation: %v", o)
			}
		})
	}
	st := captured(t, "removed")
	if !st.Missing() || !st.Observation("serve").GetMissing() {
		t.Errorf("removed stack: %s", st.Summary())
	}
}

const (
	unsettled  = metav1.Outcome_OUTCOME_UNSPECIFIED
	succeeded  = metav1.Outcome_OUTCOME_SUCCEEDED
	failed     = metav1.Outcome_OUTCOME_FAILED
	rolledBack = metav1.Outcome_OUTCOME_ROLLED_BACK
	paused     = metav1.Outcome_OUTCOME_PAUSED
)

// Settled, on what the real Engine showed at each step.
func TestSettledOnCaptures(t *testing.T) {
	tests := []struct {
		name, file, want string
		grace            time.Duration
		outcome          metav1.Outcome
		detail           string
		later            time.Duration // the look taken that much after the capture
	}{
		{"a first deploy, its tasks up for less than the monitor", "first_deploy", "1.0.0+a", swarm.FollowGrace, unsettled, "", 0},
		{"a first deploy, every task up for the monitor", "first_deploy", "1.0.0+a", swarm.FollowGrace, succeeded, "1.0.0+a runs", 10 * time.Second},
		{"a first deploy, within the grace", "first_deploy", "1.0.0+a", time.Hour, unsettled, "", 10 * time.Second},
		{"a first deploy of another version", "first_deploy", "2.0.0+b", swarm.FollowGrace, unsettled, "", 10 * time.Second},
		{"updating", "updating", "1.1.0+a", 0, unsettled, "", 0},
		{"completed", "completed", "1.1.0+a", swarm.FollowGrace, succeeded, "Swarm completed the update; 1.1.0+a runs", 0},
		{"completed, another version runs", "completed", "1.2.0+a", swarm.FollowGrace, failed, "1.1.0+a runs, not 1.2.0+a", 0},
		{"rollback started", "rollback_started", "2.0.0+b", 0, unsettled, "", 0},
		{"rollback completed", "rollback_completed", "2.0.0+b", swarm.FollowGrace, rolledBack, "(rollback completed); 1.0.0+a runs; the last task error: task: non-zero exit (1)", 0},
		{"paused", "paused", "2.0.0+b", swarm.FollowGrace, paused, "Swarm paused the update (update paused due to failure or early termination of task", 0},
		{"label-only update", "label_only", "9.9.9+z", time.Second, succeeded, "9.9.9+z runs", 0},
		{"label-only update, within the grace", "label_only", "9.9.9+z", time.Minute, unsettled, "", 0},
		{"scaled to zero", "scaled_to_zero", "1.0.0+a", 0, succeeded, "", 0},
		{"crash loop", "crash_loop", "1.0.0+a", 0, unsettled, "", 0},
		{"chaos", "chaos", "eb96de94+U", swarm.FollowGrace, succeeded, "eb96de94+U runs", 10 * time.Second},
		{"chaos, judged by its version label", "chaos", "1.0.0+a", swarm.FollowGrace, unsettled, "", 0},
		{"removed", "removed", "1.0.0+a", 0, unsettled, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := captured(t, tt.file)
			st.At = st.At.Add(tt.later)
			v, ok := st.Settled(tt.want, tt.grace)
			if ok != (tt.outcome != unsettled) || v.Outcome != tt.outcome || !strings.Contains(v.Detail, tt.detail) {
				t.Fatalf("Settled = %v %q, %v; want %v containing %q", v.Outcome, v.Detail, ok, tt.outcome, tt.detail)
			}
		})
	}
}

// What the real Engine was not seen doing, made from captured shapes:
// a paused rollback, a stale UpdateStatus, another service of the stack
// rolled back or still updating, and an update not begun yet.
func TestSettledBeyondCaptures(t *testing.T) {
	tests := []struct {
		name    string
		change  func(st *swarm.Stack)
		want    string
		outcome metav1.Outcome
		detail  string
	}{
		{"rollback paused", func(st *swarm.Stack) { st.App().UpdateState = swarm.StateRollbackPaused }, "2.0.0+b", paused, "rollback of the update itself paused"},
		{"a stale rollback_completed, the labels since changed to want", func(st *swarm.Stack) {
			st.App().UpdateStale = true
			st.App().Labels["coop-cloud.mystack.version"] = "2.0.0+b"
			st.At = st.At.Add(time.Minute)
		}, "2.0.0+b", succeeded, "2.0.0+b runs"},
		// A first deploy that crash-loops: each look may land while a task
		// is briefly up; a task that failed since the spec changed asks for
		// twice the monitor of running before it counts.
		{"a crash loop, up for the monitor", func(st *swarm.Stack) {
			app := st.App()
			app.UpdateState, app.UpdateStale = "", false
			app.LastErrorAt = app.UpdatedAt.Add(time.Second)
			app.RunningSince = app.LastErrorAt.Add(5 * time.Second)
			st.At = app.RunningSince.Add(app.Update.Monitor + time.Second)
		}, "1.0.0+a", unsettled, ""},
		{"a crash loop recovered, up for twice the monitor", func(st *swarm.Stack) {
			app := st.App()
			app.UpdateState, app.UpdateStale = "", false
			app.LastErrorAt = app.UpdatedAt.Add(time.Second)
			app.RunningSince = app.LastErrorAt.Add(5 * time.Second)
			st.At = app.RunningSince.Add(2*app.Update.Monitor + time.Second)
		}, "1.0.0+a", succeeded, "1.0.0+a runs"},
		{"a stale completed is no verdict", func(st *swarm.Stack) { st.App().UpdateStale = true; st.App().Starting = 1 }, "1.0.0+a", unsettled, ""},
		{"another service rolled back", func(st *swarm.Stack) {
			st.App().UpdateState = swarm.StateCompleted
			st.Services = append(st.Services, swarm.ServiceState{Name: "mystack_db", UpdateState: swarm.StateRollbackCompleted, UpdateMessage: "rollback completed"})
		}, "1.0.0+a", rolledBack, "Swarm rolled service mystack_db back"},
		{"another service still updating", func(st *swarm.Stack) {
			st.App().UpdateState = swarm.StateCompleted
			st.Services = append(st.Services, swarm.ServiceState{Name: "mystack_db", UpdateState: swarm.StateUpdating})
		}, "1.0.0+a", unsettled, ""},
		{"old tasks still running, the update not begun", func(st *swarm.Stack) {
			st.App().UpdateState, st.App().Outdated = "", 2
		}, "1.0.0+a", unsettled, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := captured(t, "rollback_completed")
			tt.change(st)
			v, ok := st.Settled(tt.want, 0)
			if ok != (tt.outcome != unsettled) || v.Outcome != tt.outcome || !strings.Contains(v.Detail, tt.detail) {
				t.Fatalf("Settled = %v %q, %v; want %v containing %q", v.Outcome, v.Detail, ok, tt.outcome, tt.detail)
			}
		})
	}
}
