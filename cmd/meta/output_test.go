package main

import (
	"bytes"
	"regexp"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/rollout/plan"
	"git.coopcloud.tech/coop-cloud/meta/store/fold"
	"git.coopcloud.tech/coop-cloud/meta/store/record"
)

func TestPrintable(t *testing.T) {
	tests := []struct{ in, one, lines string }{
		{"4.0.0+v1.93.0", "4.0.0+v1.93.0", "4.0.0+v1.93.0"},
		{"1\x1b[8mHIDDEN\x1b[0m.0", `1\x1b[8mHIDDEN\x1b[0m.0`, `1\x1b[8mHIDDEN\x1b[0m.0`},
		{"ok\rdeploy by Mallory", `ok\x0ddeploy by Mallory`, `ok\x0ddeploy by Mallory`},
		{"two\nlines\tand a tab", `two\x0alines\x09and a tab`, "two\nlines\tand a tab"},
		{"Alice\u202eecilA", `Alice\u202eecilA`, `Alice\u202eecilA`},
		{"bell\a", `bell\x07`, `bell\x07`},
		{"déjà vu", "déjà vu", "déjà vu"},
	}
	for _, tt := range tests {
		if got := printable(tt.in); got != tt.one {
			t.Errorf("printable(%q) = %q, want %q", tt.in, got, tt.one)
		}
		if got := printableLines(tt.in); got != tt.lines {
			t.Errorf("printableLines(%q) = %q, want %q", tt.in, got, tt.lines)
		}
	}
}

// What follows "meta: warning: " or "meta: error: " cannot start a line of
// its own: a file name with a line break in it would otherwise print a
// line that passes for meta's.
func TestMessageIndentsEveryLineAfterTheFirst(t *testing.T) {
	tests := []struct{ in, want string }{
		{"one line", "one line"},
		{"projects/x\nmeta: warning: all clear", "projects/x\n  meta: warning: all clear"},
		{"git said:\nfatal: no\n", "git said:\n  fatal: no"},
		{"esc \x1b[2J\nnext", `esc \x1b[2J` + "\n  next"},
	}
	for _, tt := range tests {
		if got := message(tt.in); got != tt.want {
			t.Errorf("message(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// A head or an event from a record committed by hand, or by an older meta,
// reaches the terminal with every control character escaped (review F6).
func TestTextOutputHoldsNoControlCharacters(t *testing.T) {
	evil := "x\x1b]0;pwned\x07\x1b[2J\r"
	now := time.Now()
	h := &fold.Head{Domain: "a.example.com", Project: "coop", Env: "prod", State: "deployed", Version: evil, Recipe: evil,
		Since: now, DeployedBy: evil, Operator: evil, Secrets: []fold.Secret{{Name: evil, Version: evil}},
		Lock: &fold.Lock{Holder: evil, Reason: evil, Expires: now.Add(time.Hour)}, Drift: "updating", DriftDetail: evil,
		Deployed: &fold.Ref{Version: evil}}
	var out bytes.Buffer
	st := &plan.Status{Channel: "nextcloud/stable", Version: evil, Lags: true, Action: plan.Blocked, Blocked: []string{"drift: " + evil}}
	if err := writeHead(&out, h, st, 0, painter{}, now); err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(out.String(), "\x1b\x07\r") {
		t.Fatalf("head printed control characters:\n%q", out.String())
	}
	if h.Version != evil {
		t.Fatal("writeHead changed the head it was given")
	}
	id := record.NewID(now)
	at, _ := record.IDTime(id)
	ev := &metav1.Event{Id: id, Time: timestamppb.New(at), Kind: metav1.Kind_KIND_DEPLOY, Outcome: metav1.Outcome_OUTCOME_SUCCEEDED,
		Address: &metav1.Address{Project: "coop", Env: "prod", App: "a.example.com"}, Actor: &metav1.Actor{Name: evil},
		Version: evil, Message: evil + "\nsecond line"}
	out.Reset()
	if err := writeEvents(&out, []*metav1.Event{ev}); err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(out.String(), "\x1b\x07\r") || strings.Count(out.String(), "\n") != 2 { // the header and the event
		t.Fatalf("log printed control characters or broke its line:\n%q", out.String())
	}
}

func TestLeft(t *testing.T) {
	for d, want := range map[time.Duration]string{
		2500 * time.Millisecond: "3s", 59 * time.Second: "59s", 59*time.Second + 900*time.Millisecond: "1m",
		30 * time.Minute: "30m", 90*time.Minute + 20*time.Second: "1h30m", 24 * time.Hour: "24h0m",
	} {
		if got := left(d); got != want {
			t.Errorf("left(%s) = %q, want %q", d, got, want)
		}
	}
}

// --version says the module version and, when the build recorded it, the
// commit (and whether the work tree had changes).
func TestVersionNamesTheCommit(t *testing.T) {
	rev := "0504253" + "6d47958e676705840b02f0022edee3698"
	tests := []struct {
		version  string
		settings []debug.BuildSetting
		want     string
	}{
		{"(devel)", nil, "devel"},
		{"v0.3.0", nil, "v0.3.0"},
		{"(devel)", []debug.BuildSetting{{Key: "vcs.revision", Value: rev}}, "devel (commit 05042536d479)"},
		{"(devel)", []debug.BuildSetting{{Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: "true"}}, "devel (commit 05042536d479, modified)"},
	}
	for _, tt := range tests {
		bi := &debug.BuildInfo{Main: debug.Module{Version: tt.version}, Settings: tt.settings}
		if got := versionOf(bi); got != tt.want {
			t.Errorf("versionOf(%s, %v) = %q, want %q", tt.version, tt.settings, got, tt.want)
		}
	}
}

// sgr matches the colour sequences a painter adds.
var sgr = regexp.MustCompile("\x1b\\[[0-9;]*m")

// Coloured output lines up exactly as plain output does: padding is
// measured before colouring (tabwriter counted the escape bytes, and
// shifted `meta ls` rows 9 columns from the header).
func TestColourDoesNotMoveColumns(t *testing.T) {
	now := time.Now()
	h := &fold.Head{Domain: "a.example.com", Project: "coop", Env: "prod", State: "deploy-failed", Version: "1.0",
		Since: now, DeployedBy: "Alice", Operator: "Alice", Drift: "version", DriftDetail: "Swarm runs 0.9",
		Lock: &fold.Lock{Holder: "Bob", Expires: now.Add(time.Hour)}, Forked: true}
	render := func(p painter) string {
		var out bytes.Buffer
		if err := writeHead(&out, h, nil, 2, p, now); err != nil {
			t.Fatal(err)
		}
		tab := newTable(&out)
		tab.row("DOMAIN", "STATE", "NOTE")
		tab.row("a.example.com", p.state("deploy-failed"), p.paint("31", "drift:version"))
		tab.row("b.example.com", p.state("undeployed"), "")
		tab.row(p.paint("33", "c"), "deployed", "-")
		if err := tab.flush(); err != nil {
			t.Fatal(err)
		}
		return out.String()
	}
	plain, coloured := render(painter{}), render(painter{on: true})
	if !strings.Contains(coloured, "\x1b[") {
		t.Fatal("the painter added no colour; the test proves nothing")
	}
	if got := sgr.ReplaceAllString(coloured, ""); got != plain {
		t.Errorf("coloured output, colour removed, differs from plain output:\n%s\nwant:\n%s", got, plain)
	}
	for _, line := range strings.Split(plain, "\n") {
		if strings.HasPrefix(line, "c  ") && line != "c              deployed       -" {
			t.Errorf("columns not two spaces past the widest cell: %q", line)
		}
		if strings.HasSuffix(line, " ") {
			t.Errorf("a row ends in blanks: %q", line)
		}
	}
}
