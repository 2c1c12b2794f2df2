package store

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/projects"
	"git.coopcloud.tech/coop-cloud/meta/store/record"
)

var errMissing = errors.New("missing")

// things are ids of the shape of event ids, named by Prefix's rule.
var things = Prefix[string]{
	What: "event", Digits: ulidDigits, Len: projects.IDLen,
	ID:       func(s string) string { return s },
	Describe: func(s string) string { return "described" },
	Missing:  func(id string) error { return fmt.Errorf("%w: %s", errMissing, id) },
}

func TestPrefixFind(t *testing.T) {
	all := []string{
		"01JD6M4S2ZC8T3E7R9Q1W5X0YB",
		"01JD6M4S2ZC8T3E7R9Q1W5X0YC", // one millisecond, one process: only the end differs
		"01JD7A0000000000000000000A",
		"01KZZZZZZZZZZZZZZZZZZZZZZZ",
	}
	tests := []struct {
		id      string
		want    string
		wantErr error
		says    []string
	}{
		{id: "01JD6M4S2ZC8T3E7R9Q1W5X0YB", want: all[0]},
		{id: "01jd6m4s2zc8t3e7r9q1w5x0yc", want: all[1]}, // any case
		{id: "01JD7", want: all[2]},
		{id: "01KZ", want: all[3]}, // MinPrefix is enough when it names one
		{id: "01JD", wantErr: ErrAmbiguousID, says: []string{"01JD names 3 events", all[0] + "  described", all[2]}},
		{id: "01JD6M4S2ZC8T3E7R9Q1W5X0Y", wantErr: ErrAmbiguousID, says: []string{"names 2 events"}},
		{id: "01J", wantErr: ErrAmbiguousID, says: []string{`"01J" is too short to name an event; give at least 4 characters`}},
		{id: "", wantErr: ErrAmbiguousID, says: []string{"too short"}},
		{id: "01JE", wantErr: errMissing, says: []string{"01JE"}},
		{id: "01JD6M4S2ZC8T3E7R9Q1W5X0YBZ", wantErr: projects.ErrInvalidName, says: []string{"at most 26 characters"}}, // longer than an id
		{id: "01JDO", wantErr: projects.ErrInvalidName, says: []string{`invalid event id "01JDO"`}},                    // O is no ULID digit
		{id: "01JD\x1b[2J", wantErr: projects.ErrInvalidName},
		{id: "01JD%", wantErr: projects.ErrInvalidName},
	}
	for _, tt := range tests {
		got, err := things.Find(tt.id, all)
		if tt.wantErr == nil {
			if err != nil || got != tt.want {
				t.Errorf("Find(%q) = %q, %v; want %q", tt.id, got, err, tt.want)
			}
			continue
		}
		if !errors.Is(err, tt.wantErr) {
			t.Errorf("Find(%q) = %q, %v; want %v", tt.id, got, err, tt.wantErr)
			continue
		}
		for _, s := range tt.says {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("Find(%q): %q does not say %q", tt.id, err, s)
			}
		}
	}
}

// A whole id wins over a longer one it starts, and the same id twice is
// ambiguous, not the first found.
func TestPrefixFindWholeIDs(t *testing.T) {
	short := Prefix[string]{What: "batch", Digits: ulidDigits, Len: 8, ID: things.ID, Describe: things.Describe, Missing: things.Missing}
	if got, err := short.Find("01JD6M", []string{"01JD6M4S", "01JD6M"}); err != nil || got != "01JD6M" {
		t.Fatalf("whole id = %q, %v", got, err)
	}
	if _, err := short.Find("01JD6M", []string{"01JD6M", "01JD6M"}); !errors.Is(err, ErrAmbiguousID) || !strings.Contains(err.Error(), "names 2 batches") {
		t.Fatalf("the same id twice: %v", err)
	}
}

// An ambiguous id lists at most ten of what it names, sorted, and says how
// many more there are.
func TestPrefixFindListsTenCandidates(t *testing.T) {
	var all []string
	for i := 25; i > 0; i-- {
		all = append(all, fmt.Sprintf("01JD%022d", i))
	}
	_, err := things.Find("01JD", all)
	lines := strings.Split(err.Error(), "\n")
	if !errors.Is(err, ErrAmbiguousID) || len(lines) != 12 || lines[1] != "01JD0000000000000000000001  described" || lines[11] != "and 15 more" {
		t.Fatalf("ambiguous among 25:\n%v", err)
	}
}

func TestAbbreviate(t *testing.T) {
	tests := []struct {
		ids  []string
		want map[string]string
	}{
		{[]string{"01JD6M4S2ZC8T3E7R9Q1W5X0YB"}, map[string]string{"01JD6M4S2ZC8T3E7R9Q1W5X0YB": "01JD6M4S2ZC8"}},
		{[]string{"01JD6M4S2ZC8T3E7R9Q1W5X0YB", "01JD6M4S2ZC9AAAAAAAAAAAAAA"}, map[string]string{
			"01JD6M4S2ZC8T3E7R9Q1W5X0YB": "01JD6M4S2ZC8", "01JD6M4S2ZC9AAAAAAAAAAAAAA": "01JD6M4S2ZC9"}},
		// Alike beyond ShortLen: as long as it takes, on both.
		{[]string{"01JD6M4S2ZC8T3E7R9Q1W5X0YC", "01JD6M4S2ZC8T3E7R9Q1W5X0YB", "01JD6M4S2ZC8T3"}, map[string]string{
			"01JD6M4S2ZC8T3E7R9Q1W5X0YB": "01JD6M4S2ZC8T3E7R9Q1W5X0YB", "01JD6M4S2ZC8T3E7R9Q1W5X0YC": "01JD6M4S2ZC8T3E7R9Q1W5X0YC",
			"01JD6M4S2ZC8T3": "01JD6M4S2ZC8T3"}},
		// The same id twice is one id; an empty one is none.
		{[]string{"01JD6M4S2ZC8T3E7R9Q1W5X0YB", "01JD6M4S2ZC8T3E7R9Q1W5X0YB", ""}, map[string]string{"01JD6M4S2ZC8T3E7R9Q1W5X0YB": "01JD6M4S2ZC8"}},
		{[]string{"abc"}, map[string]string{"abc": "abc"}},
		{nil, map[string]string{}},
	}
	for _, tt := range tests {
		got := Abbreviate(tt.ids)
		if fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("Abbreviate(%q) = %v, want %v", tt.ids, got, tt.want)
		}
		// Every short form names its id among the others by Prefix's rule.
		for id, short := range got {
			if len(id) == projects.IDLen {
				if found, err := things.Find(short, tt.ids); err != nil && !errors.Is(err, ErrAmbiguousID) || err == nil && found != id {
					t.Errorf("%s (short for %s) finds %q, %v", short, id, found, err)
				}
			}
		}
	}
}

// seeded is a log of events from two operators across two projects and
// envs, over three days, with each outcome; it returns them oldest first.
func seeded(t *testing.T) (*Store, []*metav1.Event) {
	t.Helper()
	s := newLog(t)
	bob := &metav1.Actor{Name: "Bob Builder", Email: "bob@Example.org"}
	// An event's time is its id's, and ids only go forward within a
	// process (record.NewID): start after the last id any test made.
	last, _ := record.IDTime(record.NewID(time.Now()))
	day := last.Add(time.Second)
	add := func(ev *metav1.Event, actor *metav1.Actor, at time.Time) *metav1.Event {
		out, err := s.Append(ctx, ev, actor, at, AppendOptions{Offline: true})
		if err != nil {
			t.Fatal(err)
		}
		return out.Event
	}
	with := func(ev *metav1.Event, project, env string, o metav1.Outcome) *metav1.Event {
		ev.Address.Project, ev.Address.Env, ev.Outcome = project, env, o
		return ev
	}
	note := &metav1.Event{Kind: metav1.Kind_KIND_NOTE, Outcome: metav1.Outcome_OUTCOME_SUCCEEDED, Message: "hello", Address: &metav1.Address{App: "a.example.com"}}
	up := &metav1.Event{Kind: metav1.Kind_KIND_UPGRADE, Version: "2.0.0", Address: &metav1.Address{App: "b.example.com"}}
	return s, []*metav1.Event{
		add(with(deploy("a.example.com", "1.0.0"), "coop", "prod", metav1.Outcome_OUTCOME_SUCCEEDED), alice, day),                  // 0
		add(with(deploy("b.example.com", "1.0.0"), "other", "staging", metav1.Outcome_OUTCOME_SUCCEEDED), bob, day.Add(time.Hour)), // 1
		add(note, bob, day.AddDate(0, 0, 1)), // 2
		add(with(up, "other", "staging", metav1.Outcome_OUTCOME_FAILED), alice, day.AddDate(0, 0, 1).Add(time.Hour)),                                 // 3
		add(with(deploy("a.example.com", "1.1.0"), "coop", "prod", metav1.Outcome_OUTCOME_ABORTED), alice, day.AddDate(0, 0, 2)),                     // 4
		add(with(deploy("c.example.com", "1.0.0"), "coop", "staging", metav1.Outcome_OUTCOME_SUCCEEDED), bob, day.AddDate(0, 0, 2).Add(time.Minute)), // 5
	}
}

func TestEventsFilters(t *testing.T) {
	s, evs := seeded(t)
	day := evs[0].GetTime().AsTime()
	tests := []struct {
		name string
		q    Query
		want []int // indexes into evs, in the order expected
	}{
		{"all, newest first", Query{}, []int{5, 4, 3, 2, 1, 0}},
		{"one app", Query{Domain: "a.example.com"}, []int{4, 2, 0}},
		{"-n counts what the filters let through", Query{Kinds: []metav1.Kind{metav1.Kind_KIND_DEPLOY}, N: 2}, []int{5, 4}},
		{"since, inclusive", Query{Since: evs[3].GetTime().AsTime()}, []int{5, 4, 3}},
		{"until, inclusive", Query{Until: evs[1].GetTime().AsTime()}, []int{1, 0}},
		{"since and until", Query{Since: day.Add(time.Minute), Until: day.AddDate(0, 0, 1).Add(time.Hour)}, []int{3, 2, 1}},
		{"kinds", Query{Kinds: []metav1.Kind{metav1.Kind_KIND_NOTE, metav1.Kind_KIND_UPGRADE}}, []int{3, 2}},
		{"kind none has", Query{Kinds: []metav1.Kind{metav1.Kind_KIND_ROLLBACK}}, nil},
		{"outcomes", Query{Outcomes: []metav1.Outcome{metav1.Outcome_OUTCOME_FAILED, metav1.Outcome_OUTCOME_ABORTED}}, []int{4, 3}},
		{"operator by name, any case", Query{Operator: "BUILDER"}, []int{5, 2, 1}},
		{"operator by email, any case", Query{Operator: "bob@example"}, []int{5, 2, 1}},
		{"operator by part of a name", Query{Operator: "lic"}, []int{4, 3, 0}},
		{"operator none is", Query{Operator: "carol"}, nil},
		{"project", Query{Project: "other"}, []int{3, 1}},
		{"env", Query{Env: "staging"}, []int{5, 3, 1}},
		{"project and env", Query{Project: "coop", Env: "staging"}, []int{5}},
		{"everything at once", Query{Domain: "a.example.com", Project: "coop", Env: "prod", Kinds: []metav1.Kind{metav1.Kind_KIND_DEPLOY},
			Outcomes: []metav1.Outcome{metav1.Outcome_OUTCOME_ABORTED}, Operator: "alice", Since: day, Until: day.AddDate(0, 0, 3)}, []int{4}},
	}
	for _, tt := range tests {
		got, err := s.Events(tt.q)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		var ids, want []string
		for _, ev := range got {
			ids = append(ids, ev.GetId())
		}
		for _, i := range tt.want {
			want = append(want, evs[i].GetId())
		}
		if !slices.Equal(ids, want) {
			t.Errorf("%s: got %v, want %v", tt.name, ids, want)
		}
	}
}

// A domain with events under two project/envs is ambiguous until --project
// or --env picks one; a pick that holds none of its events says where it
// looked.
func TestEventsProjectAndEnvPickTheApp(t *testing.T) {
	s := newLog(t)
	mustAppend(t, s, deploy("twice.example.com", "1.0.0"))
	other := deploy("twice.example.com", "2.0.0")
	other.Address = &metav1.Address{Project: "coop", Env: "staging", App: "twice.example.com"}
	commitByHand(t, s, other)
	if _, err := s.Events(Query{Domain: "twice.example.com"}); !errors.Is(err, ErrAmbiguous) {
		t.Fatalf("no pick: %v", err)
	}
	got, err := s.Events(Query{Domain: "twice.example.com", Env: "staging"})
	if err != nil || len(got) != 1 || got[0].GetVersion() != "2.0.0" {
		t.Fatalf("--env staging: %v, %v", got, err)
	}
	_, err = s.Events(Query{Domain: "twice.example.com", Project: "nope"})
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "twice.example.com has events only under coop/prod/twice.example.com and coop/staging/twice.example.com") {
		t.Fatalf("--project nope: %v", err)
	}
}

func TestEventByPrefix(t *testing.T) {
	s, evs := seeded(t)
	// Appended now, after events of the days to come: its id is the last
	// one's counted up, alike but for the last character.
	evs = append(evs, mustAppend(t, s, deploy("x.example.com", "1.0.0")).Event)
	var ids []string
	for _, ev := range evs {
		ids = append(ids, ev.GetId())
	}
	short := Abbreviate(ids)
	for _, ev := range evs {
		for _, id := range []string{ev.GetId(), short[ev.GetId()], strings.ToLower(short[ev.GetId()])} {
			got, err := s.Event(id)
			if err != nil || got.GetId() != ev.GetId() {
				t.Fatalf("Event(%s) = %v, %v; want %s", id, got.GetId(), err, ev.GetId())
			}
		}
	}
	// Counted up by one, the two ids differ in their last character, or
	// in the last two when the count carried (one time in 32): the short
	// form is as long as it takes to tell them apart.
	last, before := evs[6].GetId(), evs[5].GetId()
	if common := commonPrefix(last, before); common < projects.IDLen-2 {
		t.Fatalf("ids %s and %s are not alike but for their end", before, last)
	} else if n := len(short[last]); n != common+1 {
		t.Fatalf("short form of an id alike but for its end: %d characters, want %d", n, common+1)
	}
	// Events an hour apart share the start of their ids.
	common := evs[0].GetId()[:max(MinPrefix, commonPrefix(evs[0].GetId(), evs[1].GetId()))]
	_, err := s.Event(common)
	if !errors.Is(err, ErrAmbiguousID) || !strings.Contains(err.Error(), evs[0].GetId()+"  "+evs[0].GetTime().AsTime().Format(timeLayout)+"  deploy    a.example.com") {
		t.Fatalf("Event(%s): %v", common, err)
	}
	if _, err := s.Event("01JD0000000000000000000001"); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "no events with the id 01JD0000000000000000000001") {
		t.Fatalf("no such event: %v", err)
	}
	if _, err := s.Event("nonsense"); !errors.Is(err, projects.ErrInvalidName) {
		t.Fatalf("not an id: %v", err)
	}
	if _, err := s.Event(common[:3]); !errors.Is(err, ErrAmbiguousID) {
		t.Fatalf("too short: %v", err)
	}
}

// Events appended in one millisecond share all but the end of their ids: a
// prefix that long names both and lists them; one character more names one.
func TestEventPrefixWithinOneMillisecond(t *testing.T) {
	s := newLog(t)
	at := time.Now()
	w, err := s.Write(ctx, alice, at, AppendOptions{Offline: true}, func(tx *Tx) error {
		for _, app := range []string{"a.example.com", "b.example.com"} {
			tx.Add(projects.Address{Project: "coop", Env: "prod", App: app}, deploy(app, "1.0.0"))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	a, b := w.Events[0].GetId(), w.Events[1].GetId()
	n := commonPrefix(a, b)
	if n < 20 {
		t.Skipf("ids %s and %s share only %d characters: not made in one millisecond", a, b, n)
	}
	_, err = s.Event(a[:n])
	if !errors.Is(err, ErrAmbiguousID) || !strings.Contains(err.Error(), a+"  ") || !strings.Contains(err.Error(), b+"  ") {
		t.Fatalf("Event(%s): %v", a[:n], err)
	}
	short := Abbreviate([]string{a, b})
	for id, s2 := range short {
		if got, err := s.Event(s2); err != nil || got.GetId() != id {
			t.Fatalf("Event(%s), short for %s = %v, %v", s2, id, got.GetId(), err)
		}
	}
}

// A purged event is named, by its id or its start, as purged: show says
// so (not found), purge again says it was purged already.
func TestPurgedEventByPrefix(t *testing.T) {
	s, evs := seeded(t)
	gone := evs[2].GetId()
	if _, err := s.Purge(ctx, gone[:ShortLen], "test", alice, time.Now(), AppendOptions{Offline: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Event(gone[:ShortLen]); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "it was purged") {
		t.Fatalf("show purged: %v", err)
	}
	if _, err := s.Purge(ctx, gone[:ShortLen], "again", alice, time.Now(), AppendOptions{Offline: true}); !errors.Is(err, ErrPurged) {
		t.Fatalf("purge again: %v", err)
	}
	before := git(t, s.Root(), "rev-parse", "HEAD")
	for _, id := range []string{"nonsense", "01J", evs[0].GetId()[:MinPrefix]} {
		if _, err := s.Purge(ctx, id, "x", alice, time.Now(), AppendOptions{Offline: true}); err == nil {
			t.Fatalf("purge %s: no error", id)
		}
	}
	if after := git(t, s.Root(), "rev-parse", "HEAD"); after != before {
		t.Fatal("a refused purge committed")
	}
}

func TestBatchEvents(t *testing.T) {
	s := newLog(t)
	if _, _, err := s.BatchEvents(""); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "no events in any batch") {
		t.Fatalf("no batch yet: %v", err)
	}
	first, err := s.StartBatch("first", alice, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	// An open batch without events yet is the last batch.
	if id, evs, err := s.BatchEvents(""); err != nil || id != first.ID || len(evs) != 0 {
		t.Fatalf("open, empty: %s %v %v", id, evs, err)
	}
	a := mustAppend(t, s, deploy("a.example.com", "1.0.0")).Event
	b := mustAppend(t, s, deploy("b.example.com", "1.0.0")).Event
	if _, err := s.EndBatch(); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, s, deploy("a.example.com", "1.1.0"))
	// Closed, it is still the last batch.
	for _, id := range []string{"", first.ID, first.ID[:ShortLen], strings.ToLower(first.ID)} {
		got, evs, err := s.BatchEvents(id)
		if err != nil || got != first.ID || len(evs) != 2 || evs[0].GetId() != a.GetId() || evs[1].GetId() != b.GetId() {
			t.Fatalf("BatchEvents(%q) = %s %v %v", id, got, evs, err)
		}
	}
	second, err := s.StartBatch("second", alice, time.Now().Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if id, _, err := s.BatchEvents(""); err != nil || id != second.ID {
		t.Fatalf("last batch = %s, %v; want the one open, %s", id, err, second.ID)
	}
	if _, _, err := s.BatchEvents("01JD0000000000000000000001"); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "no events in batch 01JD0000000000000000000001") {
		t.Fatalf("unknown batch: %v", err)
	}
	if _, _, err := s.BatchEvents(first.ID[:MinPrefix]); !errors.Is(err, ErrAmbiguousID) || !strings.Contains(err.Error(), `"first"  2 events`) {
		t.Fatalf("ambiguous batch: %v", err)
	}
}

// Quarantined commits are acknowledged by the start of their id, from
// MinPrefix characters on.
func TestAcknowledgeByPrefix(t *testing.T) {
	s := newLog(t)
	mustAppend(t, s, deploy("a.example.com", "1.0.0"))
	commit := commitBytes(t, s, record.Path(newEvent("a.example.com", "prod", time.Now())), []byte("not a record"))
	if _, err := s.Head("a.example.com"); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{commit[:MinPrefix-1], "xyz1234", "0000000"} {
		if _, err := s.Acknowledge(ctx, []string{bad}); err == nil {
			t.Fatalf("ack %s: no error", bad)
		}
	}
	done, err := s.Acknowledge(ctx, []string{strings.ToUpper(commit[:MinPrefix])})
	if err != nil || len(done) != 1 || done[0].Commit != commit {
		t.Fatalf("ack %s = %v, %v", commit[:MinPrefix], done, err)
	}
}
