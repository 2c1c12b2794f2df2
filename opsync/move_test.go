package opsync

import (
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
)

// A move between servers that meta.yaml's servers: maps to different envs
// is recorded under both: the departure under the env the app left (whose
// head becomes "moved"), the arrival under the env it arrived in (where
// its log goes on), both naming both envs and the version abra keeps. A
// move between servers of one env is recorded once; a failed move once,
// under the env the app stays in.
func TestMoveIsRecordedUnderEachEnvItTouches(t *testing.T) {
	servers := map[string]string{s1: "prod", s2: "staging", s3: "prod", "s4.example.com": "other/edge"}
	move := func(from, to, fromEnv, toEnv string) *metav1.Event_Move {
		return &metav1.Event_Move{Move: &metav1.Move{FromServer: from, ToServer: to, FromEnv: fromEnv, ToEnv: toEnv}}
	}
	tests := []struct {
		name string
		to   string
		code string
		// want are the events recorded, in order, and where.
		want  []*metav1.Event
		where []string
		// left is the state of the head the app left, head where the app
		// is now and its state.
		left, head, state string
		server            string // where abra keeps the env file after
	}{
		{name: "to another env", to: s2,
			want: []*metav1.Event{
				{Kind: metav1.Kind_KIND_MOVE, Outcome: succeeded, Version: "1.0.0", Body: move(s1, s2, "prod", "staging")},
				{Kind: metav1.Kind_KIND_MOVE, Outcome: succeeded, Version: "1.0.0", Body: move(s1, s2, "prod", "staging")},
			},
			where: []string{"coop/prod", "coop/staging"}, left: "moved", head: "coop/staging", state: "undeployed", server: s2},
		{name: "to another project's env", to: "s4.example.com",
			want: []*metav1.Event{
				{Kind: metav1.Kind_KIND_MOVE, Outcome: succeeded, Version: "1.0.0", Body: move(s1, "s4.example.com", "prod", "edge")},
				{Kind: metav1.Kind_KIND_MOVE, Outcome: succeeded, Version: "1.0.0", Body: move(s1, "s4.example.com", "prod", "edge")},
			},
			where: []string{"coop/prod", "other/edge"}, left: "moved", head: "other/edge", state: "undeployed", server: "s4.example.com"},
		{name: "within one env", to: s3,
			want:  []*metav1.Event{{Kind: metav1.Kind_KIND_MOVE, Outcome: succeeded, Body: move(s1, s3, "", "")}},
			where: []string{"coop/prod"}, left: "undeployed", head: "coop/prod", state: "undeployed", server: s3},
		{name: "failed", to: s2, code: "4",
			want:  []*metav1.Event{{Kind: metav1.Kind_KIND_MOVE, Outcome: failed, Message: "abra exited 4", Body: move(s1, s2, "", "")}},
			where: []string{"coop/prod"}, left: "deployed", head: "coop/prod", state: "deployed", server: s1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, servers)
			w.envFile(s1, domain, "1.0.0")
			seed := w.mustRun(0, "app", "deploy", domain)
			if got := where(seed.Recorded[0]); got != "coop/prod/"+domain {
				t.Fatalf("the deploy on %s went to %s", s1, got)
			}
			w.order("exit", tt.code)
			code := map[string]int{"": 0, "4": 4}[tt.code]
			res := w.mustRun(code, "app", "move", domain, tt.to)
			if len(res.Recorded) != len(tt.want) {
				t.Fatalf("recorded %d events, want %d", len(res.Recorded), len(tt.want))
			}
			for i, ev := range res.Recorded {
				if bare := unstamped(ev); !proto.Equal(bare, tt.want[i]) {
					t.Errorf("event %d:\n got %s\nwant %s", i, prototext.Format(bare), prototext.Format(tt.want[i]))
				}
				if where(ev) != tt.where[i]+"/"+domain || ev.GetRecipe() != recipe {
					t.Errorf("event %d under %s, recipe %q; want %s", i, where(ev), ev.GetRecipe(), tt.where[i])
				}
				if !equal(ev.GetCommand(), []string{"abra", "app", "move", domain, tt.to}) {
					t.Errorf("event %d: command %q", i, ev.GetCommand())
				}
			}
			// The departure follows the deploy; the arrival starts a log.
			if p := res.Recorded[0].GetParents(); !equal(p, []string{seed.Recorded[0].GetId()}) {
				t.Errorf("departure parents %v", p)
			}
			if len(res.Recorded) == 2 && len(res.Recorded[1].GetParents()) != 0 {
				t.Errorf("arrival parents %v", res.Recorded[1].GetParents())
			}
			if left := w.headAt("coop", "prod", domain); left.State != tt.left {
				t.Errorf("the head the app left is %s, want %s", left.State, tt.left)
			}
			h := w.head(domain)
			if h.Project+"/"+h.Env != tt.head || h.State != tt.state || h.Version != "1.0.0" {
				t.Errorf("head %s/%s %s %s, want %s %s 1.0.0", h.Project, h.Env, h.State, h.Version, tt.head, tt.state)
			}
			if _, err := os.Stat(filepath.Join(w.abraDir, "servers", tt.server, domain+".env")); err != nil {
				t.Errorf("the env file is not on %s: %v", tt.server, err)
			}
			// The app's next event goes where it is now.
			w.order("exit", "")
			next := w.mustRun(0, "app", "deploy", domain)
			if got := where(next.Recorded[0]); got != tt.head+"/"+domain {
				t.Errorf("the deploy after the move went to %s, want %s", got, tt.head)
			}
			if w.tip(w.remote) != w.tip(w.log.Root()) {
				t.Error("not pushed")
			}
		})
	}
}

// Moved back to the env it left, the app's log goes on there, after the
// events it left behind (deploy, departure, arrival back).
func TestMoveBackContinuesTheOldLog(t *testing.T) {
	w := newWorld(t, map[string]string{s1: "prod", s2: "staging"})
	w.envFile(s1, domain, "1.0.0")
	w.mustRun(0, "app", "deploy", domain)
	away := w.mustRun(0, "app", "move", domain, s2)
	back := w.mustRun(0, "app", "move", domain, s1)
	if len(back.Recorded) != 2 || where(back.Recorded[0]) != "coop/staging/"+domain || where(back.Recorded[1]) != "coop/prod/"+domain {
		t.Fatalf("the move back recorded %v", back.Recorded)
	}
	if p := back.Recorded[1].GetParents(); !equal(p, []string{away.Recorded[0].GetId()}) {
		t.Fatalf("the arrival back follows %v, want the departure %s", p, away.Recorded[0].GetId())
	}
	if h := w.head(domain); h.Env != "prod" || h.State != "undeployed" || h.Events != 3 {
		t.Fatalf("head %s %s with %d events", h.Env, h.State, h.Events)
	}
	if left := w.headAt("coop", "staging", domain); left.State != "moved" {
		t.Fatalf("staging's head is %s", left.State)
	}
}
