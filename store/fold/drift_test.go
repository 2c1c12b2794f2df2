package fold

import (
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
)

func observe(n int, version, state string, parents ...int) *metav1.Event {
	e := ev(n, metav1.Kind_KIND_OBSERVE, ok, version, parents...)
	e.Body = &metav1.Event_Observation{Observation: &metav1.Observation{Service: "matrix_example_com_app", Version: version, UpdateState: state}}
	return e
}

func TestDrift(t *testing.T) {
	deploy, upgrade := metav1.Kind_KIND_DEPLOY, metav1.Kind_KIND_UPGRADE
	chaos := func(e *metav1.Event, v string) *metav1.Event {
		if o := e.GetObservation(); o != nil {
			o.Chaos, o.ChaosVersion = true, v
		} else {
			e.ChaosVersion = v
		}
		return e
	}
	tests := []struct {
		name     string
		events   []*metav1.Event
		drift    string
		observed string
	}{
		{"never observed", []*metav1.Event{ev(1, deploy, ok, "1.0.0")}, "", ""},
		{"healthy", []*metav1.Event{ev(1, deploy, ok, "1.0.0"), observe(2, "1.0.0", "completed", 1)}, "", "1.0.0"},
		{"rollback state", []*metav1.Event{ev(1, deploy, ok, "1.0.0"), ev(2, upgrade, ok, "1.1.0", 1), observe(3, "1.0.0", "rollback_completed", 2)}, DriftSwarmRollback, "1.0.0"},
		{"rollback started", []*metav1.Event{ev(1, deploy, ok, "1.0.0"), ev(2, upgrade, ok, "1.1.0", 1), observe(3, "1.1.0", "rollback_started", 2)}, DriftSwarmRollback, "1.1.0"},
		{"back at the previous labels", []*metav1.Event{ev(1, deploy, ok, "1.0.0"), ev(2, upgrade, ok, "1.1.0", 1), observe(3, "1.0.0", "completed", 2)}, DriftSwarmRollback, "1.0.0"},
		{"updating", []*metav1.Event{ev(1, deploy, ok, "1.0.0"), observe(2, "1.0.0", "updating", 1)}, DriftUpdating, "1.0.0"},
		{"paused", []*metav1.Event{ev(1, deploy, ok, "1.0.0"), observe(2, "1.0.0", "paused", 1)}, DriftUpdatePaused, "1.0.0"},
		{"deployed by hand", []*metav1.Event{ev(1, deploy, ok, "1.0.0"), observe(2, "2.0.0", "completed", 1)}, DriftUnrecorded, "2.0.0"},
		{"nothing recorded", []*metav1.Event{observe(1, "2.0.0", "")}, DriftUnrecorded, "2.0.0"},
		{"running while undeployed", []*metav1.Event{ev(1, deploy, ok, "1.0.0"), ev(2, metav1.Kind_KIND_UNDEPLOY, ok, "", 1), observe(3, "1.0.0", "", 2)}, DriftNotDeployed, "1.0.0"},
		{"a later deploy clears it", []*metav1.Event{ev(1, deploy, ok, "1.0.0"), observe(2, "2.0.0", "", 1), ev(3, deploy, ok, "2.0.0", 2)}, "", "2.0.0"},
		{"a failed deploy does not", []*metav1.Event{ev(1, deploy, ok, "1.0.0"), observe(2, "2.0.0", "", 1), ev(3, deploy, failed, "3.0.0", 2)}, DriftUnrecorded, "2.0.0"},
		{"chaos runs as deployed", []*metav1.Event{chaos(ev(1, deploy, ok, ""), "eb96de94+U"), chaos(observe(2, "1.0.0", "completed", 1), "eb96de94+U")}, "", "eb96de94+U"},
		{"release label under chaos", []*metav1.Event{ev(1, deploy, ok, "1.0.0"), chaos(observe(2, "1.0.0", "completed", 1), "eb96de94+U")}, DriftUnrecorded, "eb96de94+U"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := Fold(tt.events)
			if h.Drift != tt.drift || h.ObservedVersion != tt.observed {
				t.Fatalf("drift %q observed %q (%s), want drift %q observed %q", h.Drift, h.ObservedVersion, h.DriftDetail, tt.drift, tt.observed)
			}
			if (h.Drift == "") != (h.DriftDetail == "") {
				t.Fatalf("drift %q with detail %q", h.Drift, h.DriftDetail)
			}
			// Folding one event at a time says the same.
			var step *Head
			for _, e := range tt.events {
				step = Next(step, e)
			}
			if step.Drift != h.Drift || step.ObservedVersion != h.ObservedVersion {
				t.Fatalf("step by step: drift %q observed %q", step.Drift, step.ObservedVersion)
			}
		})
	}
}

func lockEv(n int, op string, ttl time.Duration, parents ...int) *metav1.Event {
	e := ev(n, metav1.Kind_KIND_LOCK, ok, "", parents...)
	e.Actor.Name = op
	e.Body = &metav1.Event_Lock{Lock: &metav1.Lock{Expires: timestamppb.New(t0.Add(time.Duration(n)*time.Minute + ttl))}}
	return e
}

func unlockEv(n int, op string, lock int, parents ...int) *metav1.Event {
	e := ev(n, metav1.Kind_KIND_UNLOCK, ok, "", parents...)
	e.Actor.Name = op
	e.Body = &metav1.Event_Unlock{Unlock: &metav1.Unlock{LockId: id(lock)}}
	return e
}

func TestLocks(t *testing.T) {
	forced := func(e *metav1.Event, lock int) *metav1.Event { e.BrokeLock = id(lock); return e }
	tests := []struct {
		name   string
		events []*metav1.Event
		holder string // "" for no lock
	}{
		{"locked", []*metav1.Event{lockEv(1, "alice", time.Hour)}, "alice"},
		{"renewed by the holder", []*metav1.Event{lockEv(1, "alice", time.Hour), lockEv(2, "alice", time.Hour, 1)}, "alice"},
		{"unlocked", []*metav1.Event{lockEv(1, "alice", time.Hour), unlockEv(2, "alice", 1, 1)}, ""},
		{"unlock by another is void", []*metav1.Event{lockEv(1, "alice", time.Hour), unlockEv(2, "bob", 1, 1)}, "alice"},
		{"forced unlock", []*metav1.Event{lockEv(1, "alice", time.Hour), forced(unlockEv(2, "bob", 1, 1), 1)}, ""},
		{"a second lock in the lease is void", []*metav1.Event{lockEv(1, "alice", time.Hour), lockEv(2, "bob", time.Hour, 1)}, "alice"},
		{"concurrent locks: the first in fold order wins", []*metav1.Event{lockEv(2, "bob", time.Hour), lockEv(1, "alice", time.Hour)}, "alice"},
		{"forced lock takes over", []*metav1.Event{lockEv(1, "alice", time.Hour), forced(lockEv(2, "bob", time.Hour, 1), 1)}, "bob"},
		{"after expiry anyone may lock", []*metav1.Event{lockEv(1, "alice", time.Minute), lockEv(5, "bob", time.Hour, 1)}, "bob"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := Fold(tt.events)
			got := ""
			if h.Lock != nil {
				got = h.Lock.Holder
			}
			if got != tt.holder {
				t.Fatalf("holder %q, want %q", got, tt.holder)
			}
		})
	}
}
