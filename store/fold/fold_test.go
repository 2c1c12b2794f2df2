package fold

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
)

var t0 = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

// ev builds an event n minutes after t0 with id E<n>, made to look like a
// ULID so ids sort like times.
func ev(n int, kind metav1.Kind, outcome metav1.Outcome, version string, parents ...int) *metav1.Event {
	e := &metav1.Event{
		Id:      id(n),
		Time:    timestamppb.New(t0.Add(time.Duration(n) * time.Minute)),
		Actor:   &metav1.Actor{Name: fmt.Sprintf("op%d", n)},
		Address: &metav1.Address{Project: "coop", Env: "prod", App: "matrix.example.com"},
		Kind:    kind,
		Outcome: outcome,
		Version: version,
	}
	for _, p := range parents {
		e.Parents = append(e.Parents, id(p))
	}
	return e
}

func id(n int) string { return fmt.Sprintf("01JD%022d", n) }

const (
	ok     = metav1.Outcome_OUTCOME_SUCCEEDED
	failed = metav1.Outcome_OUTCOME_FAILED
)

func secret(e *metav1.Event, name, version string) *metav1.Event {
	e.Body = &metav1.Event_Secret{Secret: &metav1.Secret{Name: name, Version: version}}
	return e
}

func TestFold(t *testing.T) {
	deploy, upgrade := metav1.Kind_KIND_DEPLOY, metav1.Kind_KIND_UPGRADE
	tests := []struct {
		name        string
		events      []*metav1.Event
		state       string
		version     string
		lastSuccess string // event id of Head.LastSuccess, if any
		secrets     []Secret
	}{
		{"only a note", []*metav1.Event{ev(1, metav1.Kind_KIND_NOTE, ok, "")}, StateUnknown, "", "", nil},
		{"new app", []*metav1.Event{ev(1, metav1.Kind_KIND_NEW, ok, "1.0.0")}, StateNew, "", "", nil},
		{"deployed", []*metav1.Event{ev(1, deploy, ok, "1.0.0")}, StateDeployed, "1.0.0", "", nil},
		{"upgraded", []*metav1.Event{ev(1, deploy, ok, "1.0.0"), ev(2, upgrade, ok, "1.1.0", 1)}, StateDeployed, "1.1.0", "", nil},
		{"failed upgrade keeps the running version", []*metav1.Event{
			ev(1, deploy, ok, "1.0.0"), ev(2, upgrade, failed, "1.1.0", 1),
		}, StateDeployFailed, "1.0.0", id(1), nil},
		{"a note after a failure keeps the failure", []*metav1.Event{
			ev(1, deploy, ok, "1.0.0"), ev(2, upgrade, failed, "1.1.0", 1), ev(3, metav1.Kind_KIND_NOTE, ok, "", 2),
		}, StateDeployFailed, "1.0.0", id(1), nil},
		{"retry after failure succeeds", []*metav1.Event{
			ev(1, deploy, ok, "1.0.0"), ev(2, upgrade, failed, "1.1.0", 1), ev(3, upgrade, ok, "1.1.0", 2),
		}, StateDeployed, "1.1.0", "", nil},
		{"first deploy failed", []*metav1.Event{ev(1, deploy, failed, "1.0.0")}, StateDeployFailed, "", "", nil},
		{"aborted deploy counts as failed", []*metav1.Event{
			ev(1, deploy, ok, "1.0.0"), ev(2, deploy, metav1.Outcome_OUTCOME_ABORTED, "2.0.0", 1),
		}, StateDeployFailed, "1.0.0", id(1), nil},
		{"rollback", []*metav1.Event{
			ev(1, deploy, ok, "1.0.0"), ev(2, upgrade, ok, "1.1.0", 1),
			func() *metav1.Event {
				e := ev(3, metav1.Kind_KIND_ROLLBACK, ok, "1.0.0", 2)
				e.Body = &metav1.Event_Rollback{Rollback: &metav1.Rollback{TargetVersion: "1.0.0"}}
				return e
			}(),
		}, StateDeployed, "1.0.0", "", nil},
		{"undeployed", []*metav1.Event{ev(1, deploy, ok, "1.0.0"), ev(2, metav1.Kind_KIND_UNDEPLOY, ok, "", 1)}, StateUndeployed, "1.0.0", "", nil},
		{"failed undeploy changes nothing", []*metav1.Event{ev(1, deploy, ok, "1.0.0"), ev(2, metav1.Kind_KIND_UNDEPLOY, failed, "", 1)}, StateDeployed, "1.0.0", "", nil},
		{"secrets come and go", []*metav1.Event{
			secret(ev(1, metav1.Kind_KIND_SECRET_GENERATE, ok, ""), "db", "v1"),
			secret(ev(2, metav1.Kind_KIND_SECRET_INSERT, ok, "", 1), "smtp", "v1"),
			secret(ev(3, metav1.Kind_KIND_SECRET_INSERT, ok, "", 2), "db", "v2"),
			secret(ev(4, metav1.Kind_KIND_SECRET_REMOVE, ok, "", 3), "smtp", ""),
			secret(ev(5, metav1.Kind_KIND_SECRET_INSERT, failed, "", 4), "api", "v1"),
		}, StateUnknown, "", "", []Secret{{"db", "v2"}}},
		{"remove clears secrets", []*metav1.Event{
			ev(1, deploy, ok, "1.0.0"), secret(ev(2, metav1.Kind_KIND_SECRET_INSERT, ok, "", 1), "db", "v1"), ev(3, metav1.Kind_KIND_REMOVE, ok, "", 2),
		}, StateRemoved, "1.0.0", "", nil},
		{"new after remove starts over", []*metav1.Event{
			ev(1, deploy, ok, "1.0.0"), ev(2, metav1.Kind_KIND_REMOVE, ok, "", 1), ev(3, metav1.Kind_KIND_NEW, ok, "", 2),
		}, StateNew, "", "", nil},
		{"unknown kind from a newer meta changes nothing", []*metav1.Event{
			ev(1, deploy, ok, "1.0.0"), ev(2, metav1.Kind(99), ok, "9.9.9", 1),
		}, StateDeployed, "1.0.0", "", nil},
		{"unknown outcome changes nothing", []*metav1.Event{
			ev(1, deploy, ok, "1.0.0"), ev(2, upgrade, metav1.Outcome(7), "2.0.0", 1),
		}, StateDeployed, "1.0.0", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := Fold(tt.events)
			if h.State != tt.state || h.Version != tt.version {
				t.Fatalf("state %q version %q, want %q %q", h.State, h.Version, tt.state, tt.version)
			}
			gotSuccess := ""
			if h.LastSuccess != nil {
				gotSuccess = h.LastSuccess.EventID
			}
			if gotSuccess != tt.lastSuccess {
				t.Fatalf("last success %q, want %q", gotSuccess, tt.lastSuccess)
			}
			if fmt.Sprint(h.Secrets) != fmt.Sprint(append([]Secret{}, tt.secrets...)) {
				t.Fatalf("secrets %v, want %v", h.Secrets, tt.secrets)
			}
			if h.Events != len(tt.events) || h.Forked {
				t.Fatalf("events %d forked %v", h.Events, h.Forked)
			}
		})
	}
}

func TestFoldReportsWhoAndWhen(t *testing.T) {
	h := Fold([]*metav1.Event{ev(1, metav1.Kind_KIND_DEPLOY, ok, "1.0.0"), ev(2, metav1.Kind_KIND_NOTE, ok, "", 1)})
	if h.DeployedBy != "op1" || !h.Since.Equal(t0.Add(time.Minute)) {
		t.Fatalf("deployed by %q since %v", h.DeployedBy, h.Since)
	}
	if h.EventID != id(2) || h.Kind != "note" || h.Operator != "op2" {
		t.Fatalf("last event %s %s %s", h.EventID, h.Kind, h.Operator)
	}
}

// Two operators append on the same parent without seeing each other: the
// head says so, names both, and still picks one version deterministically.
func TestFoldDetectsAndJoinsForks(t *testing.T) {
	base := ev(1, metav1.Kind_KIND_DEPLOY, ok, "1.0.0")
	alice := ev(3, metav1.Kind_KIND_UPGRADE, ok, "1.1.0", 1)
	bob := ev(2, metav1.Kind_KIND_UPGRADE, ok, "1.2.0", 1) // earlier, so folded first
	h := Fold([]*metav1.Event{alice, base, bob})
	if !h.Forked || len(h.Heads) != 2 || h.Heads[0].EventID != bob.Id || h.Heads[1].EventID != alice.Id {
		t.Fatalf("forked %v heads %+v", h.Forked, h.Heads)
	}
	if h.Version != "1.1.0" {
		t.Fatalf("version %q, want alice's later 1.1.0", h.Version)
	}
	// Whoever appends next names both heads as parents: the fork is joined.
	joined := Fold([]*metav1.Event{alice, base, bob, ev(4, metav1.Kind_KIND_NOTE, ok, "", 2, 3)})
	if joined.Forked || len(joined.Heads) != 1 {
		t.Fatalf("still forked after joining: %+v", joined.Heads)
	}
	// Two first events of one app are a fork too.
	if h := Fold([]*metav1.Event{ev(1, metav1.Kind_KIND_NEW, ok, ""), ev(2, metav1.Kind_KIND_NEW, ok, "")}); !h.Forked {
		t.Fatal("two parentless events not reported as a fork")
	}
}

// Parents come first even when their clocks ran late, and every order of
// the same events folds to the same head.
func TestOrderIsDeterministic(t *testing.T) {
	late := ev(9, metav1.Kind_KIND_DEPLOY, ok, "1.0.0") // parent with a fast clock
	child := ev(2, metav1.Kind_KIND_UPGRADE, ok, "2.0.0", 9)
	other := ev(5, metav1.Kind_KIND_NOTE, ok, "")
	events := []*metav1.Event{child, other, late}
	want := []string{other.Id, late.Id, child.Id}
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < 50; i++ {
		rng.Shuffle(len(events), func(i, j int) { events[i], events[j] = events[j], events[i] })
		got := Order(events)
		for k := range want {
			if got[k].Id != want[k] {
				t.Fatalf("order %v, want %v", ids(got), want)
			}
		}
		if h := Fold(events); h.Version != "2.0.0" {
			t.Fatalf("version %q", h.Version)
		}
	}
}

// Hand-made records can name each other as parents; the fold must still
// finish and place every event once.
func TestOrderSurvivesCyclesAndDuplicates(t *testing.T) {
	a := ev(1, metav1.Kind_KIND_DEPLOY, ok, "1.0.0", 2)
	b := ev(2, metav1.Kind_KIND_DEPLOY, ok, "2.0.0", 1)
	self := ev(3, metav1.Kind_KIND_NOTE, ok, "", 3, 3, 42)
	got := Order([]*metav1.Event{b, a, self, a})
	if len(got) != 3 {
		t.Fatalf("got %v", ids(got))
	}
	if Fold(nil) != nil || Fold(nil).HeadIDs() != nil {
		t.Fatal("no events must fold to nil")
	}
}

func ids(events []*metav1.Event) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = e.Id
	}
	return out
}

// Next must agree with a full fold for every event appended on top of all
// heads, whatever came before: random histories, forks included.
func TestNextMatchesFold(t *testing.T) {
	kinds := []metav1.Kind{metav1.Kind_KIND_DEPLOY, metav1.Kind_KIND_UPGRADE, metav1.Kind_KIND_ROLLBACK, metav1.Kind_KIND_UNDEPLOY,
		metav1.Kind_KIND_NEW, metav1.Kind_KIND_REMOVE, metav1.Kind_KIND_NOTE, metav1.Kind_KIND_SECRET_INSERT, metav1.Kind_KIND_SECRET_REMOVE, metav1.Kind(77)}
	outcomes := []metav1.Outcome{ok, ok, ok, failed, metav1.Outcome_OUTCOME_ABORTED, metav1.Outcome(5)}
	rng := rand.New(rand.NewSource(7))
	for run := 0; run < 200; run++ {
		var events []*metav1.Event
		var h *Head
		for n := 1; n <= 30; n++ {
			e := ev(n, kinds[rng.Intn(len(kinds))], outcomes[rng.Intn(len(outcomes))], fmt.Sprintf("%d.0.0", n))
			if record := e.GetKind(); record == metav1.Kind_KIND_SECRET_INSERT || record == metav1.Kind_KIND_SECRET_REMOVE {
				secret(e, []string{"a", "b", "c"}[rng.Intn(3)], "v1")
			}
			forking := n > 1 && rng.Intn(5) == 0 // an event that did not see the last one
			if forking {
				e.Parents = events[len(events)-1].GetParents()
			} else {
				e.Parents = h.HeadIDs()
			}
			events = append(events, e)
			want := Fold(events)
			if forking {
				if Next(h, e) != nil && len(h.Heads) > 0 {
					t.Fatalf("run %d event %d: Next accepted an event that misses a head", run, n)
				}
				h = want
				continue
			}
			got := Next(h, e)
			if got == nil {
				t.Fatalf("run %d event %d: Next refused an event on all heads", run, n)
			}
			gotJSON, _ := json.Marshal(got)
			wantJSON, _ := json.Marshal(want)
			if string(gotJSON) != string(wantJSON) {
				t.Fatalf("run %d event %d:\nnext %s\nfold %s", run, n, gotJSON, wantJSON)
			}
			h = got
		}
	}
}
