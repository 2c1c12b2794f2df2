package swarm

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	mswarm "github.com/moby/moby/api/types/swarm"
)

// captured reads testdata/engine/name.json: what a real Engine answered
// (go test ./swarm -run TestEngine -capture writes them), its stack named
// "mystack".
func captured(t *testing.T, name string) *Stack {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "engine", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		At       time.Time
		Services []mswarm.Service
		Tasks    []mswarm.Task
	}
	if err := json.Unmarshal(data, &c); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	st := stacksFrom(c.Services, c.Tasks, c.At)["mystack"]
	if st == nil {
		st = &Stack{Name: "mystack", At: c.At}
	}
	return st
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
		{"updating", 2, StateUpdating, "1.1.0+a", 1, 1, 1, 1, true, ""},
		{"completed", 2, StateCompleted, "1.1.0+a", 1, 1, 0, 0, true, ""},
		{"rollback_started", 1, StateRollbackStarted, "1.0.0+a", 1, 2, 1, 1, false, "task: non-zero exit (1)"},
		{"rollback_completed", 1, StateRollbackCompleted, "1.0.0+a", 2, 2, 0, 0, false, "task: non-zero exit (1)"},
		{"paused", 1, StatePaused, "2.0.0+b", 0, 1, 1, 0, true, "task: non-zero exit (1)"},
		{"label_only", 1, "", "9.9.9+z", 1, 1, 0, 0, true, ""},
		{"scaled_to_zero", 1, "", "1.0.0+a", 0, 0, 0, 0, true, ""},
		{"crash_loop", 1, "", "1.0.0+a", 0, 1, 1, 0, false, "task: non-zero exit (1)"},
		{"chaos", 1, "", "eb96de94+U", 1, 1, 0, 0, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			st := captured(t, tt.file)
			app := st.App()
			if len(st.Services) != tt.services || app == nil {
				t.Fatalf("services: %s", st.Summary())
			}
			got := []any{app.UpdateState, RunningVersion(app.Labels, st.Name), app.Running, app.Desired, app.Starting, app.Outdated, app.PreviousLabels != nil, app.LastError}
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
		{"a first deploy, its tasks up for less than the monitor", "first_deploy", "1.0.0+a", FollowGrace, unsettled, "", 0},
		{"a first deploy, every task up for the monitor", "first_deploy", "1.0.0+a", FollowGrace, succeeded, "1.0.0+a runs", 10 * time.Second},
		{"a first deploy, within the grace", "first_deploy", "1.0.0+a", time.Hour, unsettled, "", 10 * time.Second},
		{"a first deploy of another version", "first_deploy", "2.0.0+b", FollowGrace, unsettled, "", 10 * time.Second},
		{"updating", "updating", "1.1.0+a", 0, unsettled, "", 0},
		{"completed", "completed", "1.1.0+a", FollowGrace, succeeded, "Swarm completed the update; 1.1.0+a runs", 0},
		{"completed, another version runs", "completed", "1.2.0+a", FollowGrace, failed, "1.1.0+a runs, not 1.2.0+a", 0},
		{"rollback started", "rollback_started", "2.0.0+b", 0, unsettled, "", 0},
		{"rollback completed", "rollback_completed", "2.0.0+b", FollowGrace, rolledBack, "(rollback completed); 1.0.0+a runs; the last task error: task: non-zero exit (1)", 0},
		{"paused", "paused", "2.0.0+b", FollowGrace, paused, "Swarm paused the update (update paused due to failure or early termination of task", 0},
		{"label-only update", "label_only", "9.9.9+z", time.Second, succeeded, "9.9.9+z runs", 0},
		{"label-only update, within the grace", "label_only", "9.9.9+z", time.Minute, unsettled, "", 0},
		{"scaled to zero", "scaled_to_zero", "1.0.0+a", 0, succeeded, "", 0},
		{"crash loop", "crash_loop", "1.0.0+a", 0, unsettled, "", 0},
		{"chaos", "chaos", "eb96de94+U", FollowGrace, succeeded, "eb96de94+U runs", 10 * time.Second},
		{"chaos, judged by its version label", "chaos", "1.0.0+a", FollowGrace, unsettled, "", 0},
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
		change  func(st *Stack)
		want    string
		outcome metav1.Outcome
		detail  string
	}{
		{"rollback paused", func(st *Stack) { st.App().UpdateState = StateRollbackPaused }, "2.0.0+b", paused, "rollback of the update itself paused"},
		{"a stale rollback_completed, the labels since changed to want", func(st *Stack) {
			st.App().UpdateStale = true
			st.App().Labels["coop-cloud.mystack.version"] = "2.0.0+b"
			st.At = st.At.Add(time.Minute)
		}, "2.0.0+b", succeeded, "2.0.0+b runs"},
		// A first deploy that crash-loops: each look may land while a task
		// is briefly up; a task that failed since the spec changed asks for
		// twice the monitor of running before it counts.
		{"a crash loop, up for the monitor", func(st *Stack) {
			app := st.App()
			app.UpdateState, app.UpdateStale = "", false
			app.LastErrorAt = app.UpdatedAt.Add(time.Second)
			app.RunningSince = app.LastErrorAt.Add(5 * time.Second)
			st.At = app.RunningSince.Add(app.Update.Monitor + time.Second)
		}, "1.0.0+a", unsettled, ""},
		{"a crash loop recovered, up for twice the monitor", func(st *Stack) {
			app := st.App()
			app.UpdateState, app.UpdateStale = "", false
			app.LastErrorAt = app.UpdatedAt.Add(time.Second)
			app.RunningSince = app.LastErrorAt.Add(5 * time.Second)
			st.At = app.RunningSince.Add(2*app.Update.Monitor + time.Second)
		}, "1.0.0+a", succeeded, "1.0.0+a runs"},
		{"a stale completed is no verdict", func(st *Stack) { st.App().UpdateStale = true; st.App().Starting = 1 }, "1.0.0+a", unsettled, ""},
		{"another service rolled back", func(st *Stack) {
			st.App().UpdateState = StateCompleted
			st.Services = append(st.Services, ServiceState{Name: "mystack_db", UpdateState: StateRollbackCompleted, UpdateMessage: "rollback completed"})
		}, "1.0.0+a", rolledBack, "Swarm rolled service mystack_db back"},
		{"another service still updating", func(st *Stack) {
			st.App().UpdateState = StateCompleted
			st.Services = append(st.Services, ServiceState{Name: "mystack_db", UpdateState: StateUpdating})
		}, "1.0.0+a", unsettled, ""},
		{"old tasks still running, the update not begun", func(st *Stack) {
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

// UpdateStale: a service written well after its update completed.
func TestUpdateStale(t *testing.T) {
	done := time.Date(2026, 12, 2, 3, 20, 27, 0, time.UTC)
	tests := []struct {
		name    string
		updated time.Time
		status  *mswarm.UpdateStatus
		stale   bool
	}{
		{"completed, written with it (as Swarm does)", done.Add(15 * time.Microsecond), &mswarm.UpdateStatus{State: "completed", CompletedAt: &done}, false},
		{"completed, written a minute later", done.Add(time.Minute), &mswarm.UpdateStatus{State: "completed", CompletedAt: &done}, true},
		{"updating", done.Add(time.Minute), &mswarm.UpdateStatus{State: "updating"}, false},
		{"no status", done, nil, false},
	}
	for _, tt := range tests {
		svc := mswarm.Service{Meta: mswarm.Meta{UpdatedAt: tt.updated}, UpdateStatus: tt.status}
		if got := updateStale(svc); got != tt.stale {
			t.Errorf("%s: stale = %v", tt.name, got)
		}
	}
}

func TestSettleTimeout(t *testing.T) {
	three := uint64(3)
	tests := []struct {
		name     string
		services []ServiceState
		want     time.Duration
	}{
		{"no services: the floor", nil, time.Minute},
		{"one replica, defaults: 5s+30s, +30s", []ServiceState{{Replicas: &one, Update: defaultUpdate}}, 65 * time.Second},
		{"three replicas one at a time, 10s delay, 8s monitor, rollback", []ServiceState{
			{Replicas: &three, Update: UpdateConfig{Parallelism: 1, Delay: 10 * time.Second, Monitor: 8 * time.Second, FailureAction: "rollback"}},
			{Replicas: &one, Update: defaultUpdate},
		}, 3*48*time.Second*2 + 30*time.Second},
		{"parallelism 0: one batch", []ServiceState{{Replicas: &three, Update: UpdateConfig{Monitor: 40 * time.Second}}}, 100 * time.Second},
		{"capped", []ServiceState{{Replicas: &three, Update: UpdateConfig{Parallelism: 1, Monitor: 10 * time.Minute}}}, 15 * time.Minute},
	}
	for _, tt := range tests {
		if got := (&Stack{Services: tt.services}).SettleTimeout(); got != tt.want {
			t.Errorf("%s: %s, want %s", tt.name, got, tt.want)
		}
	}
}

var one = uint64(1)
