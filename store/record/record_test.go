package record

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
)

var update = flag.Bool("update", false, "rewrite golden files")

// sample is a complete, valid event with fixed values, so its encoding is
// the same on every run.
func sample() *metav1.Event {
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	return &metav1.Event{
		Format:  FormatVersion,
		Id:      encodeULID(uint64(at.UnixMilli()), [10]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}),
		Time:    timestamppb.New(at),
		Actor:   &metav1.Actor{Name: "Alice", Email: "alice@example.com", Host: "laptop"},
		Address: &metav1.Address{Project: "coop", Env: "prod", App: "matrix.example.com"},
		Parents: []string{"01JD5K4Z3N8E7QW2XG6H9T0ABC"},
		Kind:    metav1.Kind_KIND_ROLLBACK,
		Outcome: metav1.Outcome_OUTCOME_SUCCEEDED,
		Recipe:  "matrix-synapse",
		Version: "4.0.0+v1.93.0",
		Command: []string{"abra", "app", "rollback", "matrix.example.com", "4.0.0+v1.93.0"},
		Message: "upgrade broke federation",
		BatchId: "01JD5K4Z3N8E7QW2XG6H9T0XYZ",
		Body:    &metav1.Event_Rollback{Rollback: &metav1.Rollback{TargetVersion: "4.0.0+v1.93.0", FromVersion: "4.1.0+v1.94.0"}},
	}
}

func TestNewIDSortsInCreationOrder(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	var ids []string
	for i := 0; i < 1000; i++ {
		// Many ids in one millisecond, and a clock that steps back.
		at := now
		if i == 500 {
			at = now.Add(-time.Second)
		}
		ids = append(ids, NewID(at))
	}
	if !sort.StringsAreSorted(ids) {
		t.Fatal("ids are not in creation order")
	}
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			t.Fatalf("duplicate id %s", id)
		}
		seen[id] = true
	}
	got, err := IDTime(ids[0])
	if err != nil || !got.Equal(now) {
		t.Fatalf("IDTime = %v, %v, want %v", got, err, now)
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	ev := sample()
	data, err := Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	again, err := Unmarshal(data)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(ev, again) {
		t.Fatalf("round trip changed the event:\n%v\n%v", ev, again)
	}
	if err := CheckPath(again, "projects/coop/prod/matrix.example.com/2026-11/"+ev.GetId()+".pb"); err != nil {
		t.Fatal(err)
	}
	if err := CheckPath(again, "projects/coop/staging/matrix.example.com/2026-11/"+ev.GetId()+".pb"); err == nil {
		t.Fatal("CheckPath accepted a record in the wrong env")
	}
}

// TestGoldenRecord pins the wire format: a change to these bytes breaks
// every existing log. Run with -update only for a deliberate format change.
func TestGoldenRecord(t *testing.T) {
	data, err := Marshal(sample())
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	if err := WriteText(&text, sample()); err != nil {
		t.Fatal(err)
	}
	for name, got := range map[string][]byte{"rollback.pb": data, "rollback.txt": text.Bytes()} {
		path := filepath.Join("testdata", name)
		if *update {
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from the golden file (go test -run Golden -update rewrites it):\n got %q\nwant %q", name, got, want)
		}
	}
	// And the golden bytes, as written by this format version and by
	// every one before, still decode.
	for _, name := range []string{"rollback.pb", "rollback-format1.pb", "rollback-format2.pb"} {
		old, _ := os.ReadFile(filepath.Join("testdata", name))
		if ev, err := Unmarshal(old); err != nil || ev.GetRollback().GetTargetVersion() != "4.0.0+v1.93.0" {
			t.Fatalf("golden record %s decodes to %v, %v", name, ev, err)
		}
	}
}

// A newer meta may add fields and kinds: an older reader keeps the fields
// and shows the kind as unknown, never failing.
func TestReadsRecordsFromNewerVersions(t *testing.T) {
	ev := sample()
	ev.Kind = metav1.Kind(42)
	ev.Outcome = metav1.Outcome(9)
	data, err := proto.MarshalOptions{Deterministic: true}.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	// Field 99, a string no version of meta.v1 knows.
	data = protowire.AppendTag(data, 99, protowire.BytesType)
	data = protowire.AppendString(data, "from the future")

	got, err := Unmarshal(data)
	if err != nil {
		t.Fatalf("newer record rejected: %v", err)
	}
	if KindName(got.GetKind()) != "unknown(42)" || OutcomeName(got.GetOutcome()) != "unknown(9)" {
		t.Fatalf("kind %s, outcome %s", KindName(got.GetKind()), OutcomeName(got.GetOutcome()))
	}
	again, err := proto.MarshalOptions{Deterministic: true}.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(again, []byte("from the future")) {
		t.Fatal("unknown field was not preserved")
	}
	var text bytes.Buffer
	WriteText(&text, got)
	if !strings.Contains(text.String(), "unknown(42)") || !strings.Contains(text.String(), "fields from a newer meta") {
		t.Fatalf("text does not show what is unknown:\n%s", text.String())
	}
	if err := Validate(got); err == nil {
		t.Fatal("an unknown kind must not be appended by this version")
	}
}

func TestValidateRejects(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*metav1.Event)
		want   string
	}{
		{"no format", func(e *metav1.Event) { e.Format = 0 }, "format"},
		{"bad id", func(e *metav1.Event) { e.Id = "nope" }, "event id"},
		{"no time", func(e *metav1.Event) { e.Time = nil }, "time"},
		{"time differs from id", func(e *metav1.Event) { e.Time = timestamppb.New(e.Time.AsTime().Add(time.Hour)) }, "id time"},
		{"bad app", func(e *metav1.Event) { e.Address.App = "../etc" }, "invalid app"},
		{"bad project", func(e *metav1.Event) { e.Address.Project = "" }, "invalid project"},
		{"bad env", func(e *metav1.Event) { e.Address.Env = "a/b" }, "invalid env"},
		{"no operator", func(e *metav1.Event) { e.Actor = nil }, "operator"},
		{"an operator git cannot author", func(e *metav1.Event) { e.Actor.Name = "Alice <a@example.com> 0 +0000>" }, "git author"},
		{"an email git cannot author", func(e *metav1.Event) { e.Actor.Email = "m@example.com> 1 +0000" }, "git author"},
		{"bad parent", func(e *metav1.Event) { e.Parents = []string{"x"} }, "parent"},
		{"no kind", func(e *metav1.Event) { e.Kind = 0 }, "kind"},
		{"no outcome", func(e *metav1.Event) { e.Outcome = 0 }, "outcome"},
		{"deploy without version", func(e *metav1.Event) { e.Kind = metav1.Kind_KIND_DEPLOY; e.Body = nil; e.Version = "" }, "needs a version"},
		{"rollback target differs", func(e *metav1.Event) { e.Version = "1.0.0" }, "differs"},
		{"secret without name", func(e *metav1.Event) {
			e.Kind = metav1.Kind_KIND_SECRET_INSERT
			e.Body = &metav1.Event_Secret{Secret: &metav1.Secret{Version: "v1"}}
		}, "secret name"},
		{"secret kind without body", func(e *metav1.Event) { e.Kind = metav1.Kind_KIND_SECRET_REMOVE; e.Body = nil }, "secret name"},
		{"wrong body", func(e *metav1.Event) { e.Kind = metav1.Kind_KIND_NOTE }, "cannot carry"},
		{"escape in a version", func(e *metav1.Event) { e.Version = "1\x1b[8mHIDDEN\x1b[0m.0" }, "control character U+001B"},
		{"carriage return in a message", func(e *metav1.Event) { e.Message = "ok\rdeploy by Mallory" }, "control character U+000D"},
		{"line break in a recipe", func(e *metav1.Event) { e.Recipe = "a\nb" }, "control character U+000A"},
		{"bidi override in a name", func(e *metav1.Event) { e.Actor.Name = "Alice\u202e" }, "control character U+202E"},
		{"invalid UTF-8", func(e *metav1.Event) { e.Recipe = "\xff" }, "not valid UTF-8"},
		{"a long version", func(e *metav1.Event) { e.Version = strings.Repeat("1", maxShort+1) }, "more than the"},
		{"a long message", func(e *metav1.Event) { e.Message = strings.Repeat("m", maxText+1) }, "more than the"},
		{"a long command line", func(e *metav1.Event) {
			for i := 0; i < 20; i++ {
				e.Command = append(e.Command, strings.Repeat("c", 1000))
			}
		}, "command line is"},
		{"a local env with a digest", func(e *metav1.Event) { e.LocalEnv, e.EnvDigest = true, "sha256:"+strings.Repeat("0", 64) }, "cannot carry it"},
		{"a local env on a note", func(e *metav1.Event) { e.Kind, e.Body, e.LocalEnv = metav1.Kind_KIND_NOTE, nil, true }, "a note event"},
		{"a note rolled back", func(e *metav1.Event) {
			e.Kind, e.Body, e.Outcome = metav1.Kind_KIND_NOTE, nil, metav1.Outcome_OUTCOME_ROLLED_BACK
		}, "a note event cannot end rolled-back"},
		{"an observation pending", func(e *metav1.Event) {
			e.Kind, e.Outcome = metav1.Kind_KIND_OBSERVE, metav1.Outcome_OUTCOME_PENDING
			e.Body = &metav1.Event_Observation{Observation: &metav1.Observation{Service: "s_app"}}
		}, "cannot end pending"},
		{"what Swarm did with a note", func(e *metav1.Event) {
			e.Kind, e.Body, e.Swarm = metav1.Kind_KIND_NOTE, nil, &metav1.Observation{}
		}, "cannot say what Swarm did"},
		{"a settlement without its outcome", func(e *metav1.Event) {
			e.Kind = metav1.Kind_KIND_OBSERVE
			e.Body = &metav1.Event_Observation{Observation: &metav1.Observation{Settles: e.Parents[0]}}
		}, "names both"},
		{"a settlement of no event", func(e *metav1.Event) {
			e.Kind = metav1.Kind_KIND_OBSERVE
			e.Body = &metav1.Event_Observation{Observation: &metav1.Observation{Settles: "x", SettledOutcome: metav1.Outcome_OUTCOME_SUCCEEDED}}
		}, "settles"},
		{"settled as still pending", func(e *metav1.Event) {
			e.Kind = metav1.Kind_KIND_OBSERVE
			e.Body = &metav1.Event_Observation{Observation: &metav1.Observation{Settles: e.Parents[0], SettledOutcome: metav1.Outcome_OUTCOME_PENDING}}
		}, "cannot settle a deploy as pending"},
		{"an escape in a task error", func(e *metav1.Event) {
			e.Kind = metav1.Kind_KIND_OBSERVE
			e.Body = &metav1.Event_Observation{Observation: &metav1.Observation{Services: []*metav1.ServiceStatus{{Name: "s_app", LastError: "boom\x1b[2J"}}}}
		}, "observation.services[0].last_error holds the control character U+001B"},
		{"volume without name", func(e *metav1.Event) {
			e.Kind = metav1.Kind_KIND_VOLUME_REMOVE
			e.Body = &metav1.Event_Volume{Volume: &metav1.Volume{}}
		}, "volume name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := sample()
			tt.mutate(ev)
			_, err := Marshal(ev)
			if err != nil && strings.ContainsAny(err.Error(), "\x1b\r\u202e") {
				t.Fatalf("the error carries the control character itself: %q", err)
			}
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Marshal = %v, want ErrInvalid saying %q", err, tt.want)
			}
		})
	}
}

func TestUnmarshalRejectsNonRecords(t *testing.T) {
	valid, _ := Marshal(sample())
	noAddress := sample()
	noAddress.Address = nil
	noAddressData, _ := proto.Marshal(noAddress)
	for name, data := range map[string][]byte{
		"garbage":    []byte("not a protobuf \xff\xff\xff"),
		"truncated":  valid[:len(valid)/2],
		"empty":      {},
		"no address": noAddressData,
		"huge":       make([]byte, maxRecord+1),
	} {
		if _, err := Unmarshal(data); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: Unmarshal = %v, want ErrCorrupt", name, err)
		}
	}
}

func TestParseKindAndOutcome(t *testing.T) {
	for _, name := range KindNames() {
		k, err := ParseKind(name)
		if err != nil || KindName(k) != name {
			t.Errorf("ParseKind(%q) = %v, %v", name, k, err)
		}
	}
	if _, err := ParseKind("deploy-everything"); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "secret-insert") {
		t.Errorf("ParseKind of an unknown kind: %v (should list the kinds)", err)
	}
	if _, err := ParseOutcome("maybe"); !errors.Is(err, ErrInvalid) {
		t.Errorf("ParseOutcome(maybe) = %v", err)
	}
}

// FuzzUnmarshal: no input makes the decoder panic, and whatever it accepts
// survives a round trip.
func FuzzUnmarshal(f *testing.F) {
	valid, _ := Marshal(sample())
	f.Add(valid)
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := Unmarshal(data)
		if err != nil {
			return
		}
		again, err := proto.Marshal(ev)
		if err != nil {
			t.Fatalf("accepted record does not re-encode: %v", err)
		}
		ev2, err := Unmarshal(again)
		if err != nil || !proto.Equal(ev, ev2) {
			t.Fatalf("round trip differs: %v", err)
		}
		var b bytes.Buffer
		WriteText(&b, ev)
		ViewOf(ev)
	})
}

// SetBody makes the body the kinds table calls for, from field names.
func TestSetBody(t *testing.T) {
	tests := []struct {
		kind   metav1.Kind
		values map[string]string
		want   Body
		err    string
	}{
		{metav1.Kind_KIND_SECRET_INSERT, map[string]string{"name": "db", "version": "v2"}, BodySecret, ""},
		{metav1.Kind_KIND_SECRET_INSERT, map[string]string{"version": "v2"}, BodyNone, "secret-insert needs a secret name"},
		{metav1.Kind_KIND_VOLUME_REMOVE, map[string]string{}, BodyNone, "volume-remove needs a volume name"},
		{metav1.Kind_KIND_RESTORE, map[string]string{"snapshot": ""}, BodyNone, ""},
		{metav1.Kind_KIND_RESTORE, map[string]string{"snapshot": "s1"}, BodyRestore, ""},
		{metav1.Kind_KIND_MOVE, map[string]string{"to_server": "b"}, BodyMove, ""},
		{metav1.Kind_KIND_MOVE, map[string]string{"name": "x"}, BodyNone, "a move has no field name"},
		{metav1.Kind_KIND_DEPLOY, map[string]string{"name": "x"}, BodyNone, "deploy events carry no body"},
	}
	for _, tt := range tests {
		ev := &metav1.Event{Kind: tt.kind}
		err := SetBody(ev, tt.values)
		if tt.err != "" {
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s %v: %v, want %q", KindName(tt.kind), tt.values, err, tt.err)
			}
			continue
		}
		if err != nil || BodyOfEvent(ev) != tt.want {
			t.Errorf("%s %v: body %q, %v; want %q", KindName(tt.kind), tt.values, BodyOfEvent(ev), err, tt.want)
		}
	}
	ev := &metav1.Event{Kind: metav1.Kind_KIND_SECRET_GENERATE}
	SetBody(ev, map[string]string{"name": "db", "version": "v1"})
	if ev.GetSecret().GetName() != "db" || ev.GetSecret().GetVersion() != "v1" {
		t.Errorf("secret = %v", ev.GetSecret())
	}
	if got := KindsWith(BodySecret); strings.Join(got, ",") != "secret-generate,secret-insert,secret-remove" {
		t.Errorf("KindsWith(secret) = %v", got)
	}
}

// A message may span lines; an event, however made, stays small.
func TestLimitsLeaveRealEventsAlone(t *testing.T) {
	ev := sample()
	ev.Message = "migration timed out\n\tafter 300 s"
	if _, err := Marshal(ev); err != nil {
		t.Fatalf("a two-line message: %v", err)
	}
	ev = sample()
	ev.Message, ev.Command = "", nil
	for i := 0; i < 8; i++ {
		ev.Message += strings.Repeat("x", maxText/8-1)
		ev.Command = append(ev.Command, strings.Repeat("c", maxText/9))
	}
	ev.Recipe = strings.Repeat("r", maxShort)
	if data, err := Marshal(ev); err != nil || len(data) > MaxRecord {
		t.Fatalf("an event at the field limits: %d bytes, %v", len(data), err)
	}
}

// What an Engine says is made to fit before it is recorded: the event
// then passes Validate, and says as much as it can of what was said.
func TestFit(t *testing.T) {
	ev := sample()
	ev.Kind, ev.Outcome = metav1.Kind_KIND_OBSERVE, metav1.Outcome_OUTCOME_SUCCEEDED
	long := "a" + strings.Repeat("é", maxText) // two bytes each after the a: cut mid-character
	o := &metav1.Observation{
		Service:       "s_app\x1b[8m",
		UpdateMessage: "update rolled back\n\tdue to failure\u202e",
		Services: []*metav1.ServiceStatus{
			{Name: "s_app", LastError: long},
			{Name: "s_db\xff", LastError: "task: non-zero exit (1)"},
		},
	}
	ev.Body = &metav1.Event_Observation{Observation: o}
	if _, err := Marshal(ev); err == nil {
		t.Fatal("the raw observation passed")
	}
	Fit(o.ProtoReflect())
	if _, err := Marshal(ev); err != nil {
		t.Fatalf("fitted: %v", err)
	}
	for _, c := range []struct{ got, want string }{
		{o.GetService(), "s_app\ufffd[8m"},
		{o.GetUpdateMessage(), "update rolled back\n\tdue to failure\ufffd"},
		{o.GetServices()[1].GetName(), "s_db\ufffd"},
		{o.GetServices()[1].GetLastError(), "task: non-zero exit (1)"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
	if got := o.GetServices()[0].GetLastError(); len(got) != maxText-1 || !utf8.ValidString(got) {
		t.Errorf("a long error is cut to %d bytes (valid UTF-8: %v), want %d", len(got), utf8.ValidString(got), maxText-1)
	}
}
