package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/store/record"
)

func TestParseWhen(t *testing.T) {
	now := time.Date(2026, 11, 30, 15, 30, 0, 0, time.UTC)
	tests := []struct {
		v          string
		end        bool
		want       time.Time
		wantErrMsg string
	}{
		{v: "", want: time.Time{}},
		{v: "24h", want: now.Add(-24 * time.Hour)},
		{v: "90m", want: now.Add(-90 * time.Minute)},
		{v: "7d", want: now.AddDate(0, 0, -7)},
		{v: "0d", want: now},
		{v: "2026-11-01", want: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)},
		{v: "2026-11-01", end: true, want: time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC).Add(-time.Nanosecond)},
		{v: "2026-11-01T10:00:00+02:00", want: time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC)},
		{v: "2026-11-01T10:00:00Z", end: true, want: time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)},
		{v: "-24h", wantErrMsg: `--since "-24h": want a duration`},
		{v: "-2d", wantErrMsg: `"-2d"`},
		{v: "yesterday", wantErrMsg: `"yesterday"`},
		{v: "1.5d", wantErrMsg: `"1.5d"`},
		{v: "d", wantErrMsg: `"d"`},
		{v: "2026-13-01", wantErrMsg: `"2026-13-01"`},
		{v: "2026-11-01 10:00", wantErrMsg: `"2026-11-01 10:00"`},
	}
	for _, tt := range tests {
		got, err := parseWhen("--since", tt.v, now, tt.end)
		if tt.wantErrMsg != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErrMsg) {
				t.Errorf("parseWhen(%q) = %v, %v; want an error saying %s", tt.v, got, err, tt.wantErrMsg)
			}
			continue
		}
		if err != nil || !got.Equal(tt.want) {
			t.Errorf("parseWhen(%q, end=%v) = %v, %v; want %v", tt.v, tt.end, got, err, tt.want)
		}
	}
}

// Kinds and outcomes come repeated or comma-separated; any name not in
// the kinds table or the outcomes is refused, naming the flag.
func TestLogFlagsQuery(t *testing.T) {
	now := time.Now()
	q, err := logFlags{kinds: []string{"deploy", " upgrade", "env"}, outcomes: []string{"failed", "aborted"}, operator: "Bob"}.query(now)
	if err != nil || len(q.Kinds) != 3 || len(q.Outcomes) != 2 || q.Operator != "Bob" {
		t.Fatalf("query = %+v, %v", q, err)
	}
	for _, tt := range []struct {
		f    logFlags
		says string
	}{
		{logFlags{kinds: []string{"deploy", "explode"}}, `--kind: unknown kind "explode" (want one of channel-rule, deploy, env, follow, lock,`},
		{logFlags{outcomes: []string{"maybe"}}, `--outcome: unknown outcome "maybe"`},
		{logFlags{n: -1}, "-n must be 0 (all) or more, got -1"},
		{logFlags{since: "1h", until: "2h"}, `--since 1h is after --until 2h`},
		{logFlags{project: "Coop"}, `--project: invalid project "Coop"`},
		{logFlags{env: "a/b"}, `--env: invalid env "a/b"`},
	} {
		if _, err := tt.f.query(now); err == nil || !strings.Contains(err.Error(), tt.says) {
			t.Errorf("%+v: %v; want an error saying %s", tt.f, err, tt.says)
		}
	}
}

// The header names the columns every event's cells start under, inside a
// batch (its rows indented, its line between them) and outside; ids are
// shortened, and alike ones kept apart.
func TestWriteEventsLinesUpUnderTheHeader(t *testing.T) {
	at := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	ev := func(id, domain, kind, batch, operator string) *metav1.Event {
		k, _ := record.ParseAnyKind(kind)
		return &metav1.Event{Id: id, Time: timestamppb.New(at), Kind: k, Outcome: metav1.Outcome_OUTCOME_SUCCEEDED,
			Address: &metav1.Address{Project: "coop", Env: "prod", App: domain}, Actor: &metav1.Actor{Name: operator},
			Version: "1.0.0", BatchId: batch, BatchSummary: "Deployed apps for organisation X, a long summary"}
	}
	const batch = "01JD6M0000000000000000000B"
	events := []*metav1.Event{
		ev("01JD6M4S2ZC8T3E7R9Q1W5X0YC", "a.example.com", "note", "", "Zoë"),
		ev("01JD6M4S2ZC8T3E7R9Q1W5X0YB", "matrix.example.com", "deploy", batch, "Alice Long-Name"),
		ev("01JD6M4S3ZAAAAAAAAAAAAAAAA", "b.example.com", "secret-generate", batch, "Bob"),
		ev("01JD6M4S4ZAAAAAAAAAAAAAAAA", "c.example.com", "upgrade", "", "Bob"),
	}
	events[2].Body = &metav1.Event_Secret{Secret: &metav1.Secret{Name: "db", Version: "v1"}}
	var out bytes.Buffer
	if err := writeEvents(&out, events); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 6 || lines[2] != "batch 01JD6M000000: Deployed apps for organisation X, a long summary" {
		t.Fatalf("log:\n%s", out.String())
	}
	header := lines[0]
	for _, col := range eventColumns[1 : len(eventColumns)-1] { // no messages here
		at := strings.Index(header, col)
		for _, l := range append(lines[1:2], lines[3:]...) {
			r := []rune(l)
			if at >= len(r) || r[at-1] != ' ' || r[at-2] != ' ' || r[at] == ' ' {
				t.Errorf("column %s (at %d) does not start a cell in %q", col, at, l)
			}
		}
	}
	for _, want := range []string{"01JD6M4S2ZC8T3E7R9Q1W5X0YC  a.example.com", "01JD6M4S2ZC8T3E7R9Q1W5X0YB  matrix.example.com", "  01JD6M4S3ZAA  ", "  2026-11-30 12:00:00Z"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("log does not hold %q:\n%s", want, out.String())
		}
	}
}
