package swarm

import (
	"testing"
	"time"

	mswarm "github.com/moby/moby/api/types/swarm"
)

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
