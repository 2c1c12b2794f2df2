package fold

import (
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
)

func inChannel(e *metav1.Event) *metav1.Event {
	e.Address = &metav1.Address{Project: "_recipes", Env: "nextcloud", App: "stable"}
	e.Recipe = "nextcloud"
	return e
}

func promote(n int, version string, parents ...int) *metav1.Event {
	e := inChannel(ev(n, metav1.Kind_KIND_PROMOTE, ok, version, parents...))
	e.Body = &metav1.Event_Promotion{Promotion: &metav1.Promotion{Channel: "stable"}}
	return e
}

func rule(n int, from string, soak time.Duration, parents ...int) *metav1.Event {
	e := inChannel(ev(n, metav1.Kind_KIND_CHANNEL_RULE, ok, "", parents...))
	e.Body = &metav1.Event_Rule{Rule: &metav1.ChannelRule{Channel: "stable", From: from, Soak: durationpb.New(soak)}}
	return e
}

func TestFoldChannel(t *testing.T) {
	for _, tc := range []struct {
		name    string
		events  []*metav1.Event
		version string
		history int
		forked  bool
		rule    string
	}{
		{"one promotion", []*metav1.Event{promote(1, "1.0.0")}, "1.0.0", 1, false, ""},
		{"promoted on", []*metav1.Event{promote(1, "1.0.0"), promote(2, "1.1.0", 1)}, "1.1.0", 2, false, ""},
		{"moved back", []*metav1.Event{promote(1, "1.0.0"), promote(2, "1.1.0", 1), promote(3, "1.0.0", 2)}, "1.0.0", 3, false, ""},
		// Two operators promoting without seeing each other: a fork, and
		// the later one in fold order is the version on every machine.
		{"two at once", []*metav1.Event{promote(1, "1.0.0"), promote(3, "1.2.0", 1), promote(2, "1.1.0", 1)}, "1.2.0", 3, true, ""},
		{"fork joined", []*metav1.Event{promote(1, "1.0.0"), promote(2, "1.1.0", 1), promote(3, "1.2.0", 1), promote(4, "1.2.0", 2, 3)}, "1.2.0", 4, false, ""},
		// A rule set beside a promotion is two heads but no fork of the
		// channel's release.
		{"rule beside a promotion", []*metav1.Event{promote(1, "1.0.0"), rule(2, "staging", time.Hour), promote(3, "1.1.0", 1)}, "1.1.0", 2, false, "staging"},
		{"rule dropped", []*metav1.Event{rule(1, "staging", time.Hour), rule(2, "", 0, 1)}, "", 0, false, ""},
		{"a newer meta's kind", []*metav1.Event{promote(1, "1.0.0"), inChannel(ev(2, metav1.Kind(99), ok, "9.9.9", 1))}, "1.0.0", 1, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := FoldChannel(tc.events)
			if c.Version != tc.version || len(c.History) != tc.history || c.Forked != tc.forked {
				t.Fatalf("version %q history %d forked %v, want %q %d %v", c.Version, len(c.History), c.Forked, tc.version, tc.history, tc.forked)
			}
			if (c.Rule == nil) != (tc.rule == "") || c.Rule != nil && c.Rule.From != tc.rule {
				t.Fatalf("rule %+v, want from %q", c.Rule, tc.rule)
			}
			if c.Recipe != "nextcloud" || c.Channel != "stable" {
				t.Fatalf("channel %s/%s", c.Recipe, c.Channel)
			}
			if tc.forked && (len(c.Forks) != 2 || c.Forks[1].Version != c.Version) {
				t.Fatalf("forks %+v", c.Forks)
			}
			// Any order in, the same channel out.
			rev := append([]*metav1.Event{}, tc.events...)
			for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
				rev[i], rev[j] = rev[j], rev[i]
			}
			if d := FoldChannel(rev); d.Version != c.Version || d.Forked != c.Forked {
				t.Fatalf("reversed input folds to %q forked %v", d.Version, d.Forked)
			}
		})
	}
}

func TestFoldReleasesOnceEach(t *testing.T) {
	rel := func(n int, version string) *metav1.Event {
		e := ev(n, metav1.Kind_KIND_RELEASE, ok, version)
		e.Address = &metav1.Address{Project: "_recipes", Env: "nextcloud", App: "_releases"}
		e.Body = &metav1.Event_Release{Release: &metav1.Release{Images: []*metav1.Image{{Service: "app", Ref: "nextcloud:" + version}}}}
		return e
	}
	got := FoldReleases([]*metav1.Event{rel(2, "1.1.0"), rel(1, "1.0.0"), rel(3, "1.1.0")})
	if len(got) != 2 || got[0].Version != "1.0.0" || got[1].Version != "1.1.0" || got[1].Ref.EventID != id(2) || len(got[1].Also) != 1 || got[1].Also[0] != id(3) {
		t.Fatalf("releases %+v", got)
	}
	if got[0].Images[0].Ref != "nextcloud:1.0.0" {
		t.Fatalf("images %+v", got[0].Images)
	}
}

// follower is an app's head after events, as the rule sees it.
func follower(domain string, events ...*metav1.Event) *Head {
	for _, e := range events {
		e.Address.App = domain
	}
	return Fold(events)
}

func TestRuleAdmit(t *testing.T) {
	deploy, upgrade := metav1.Kind_KIND_DEPLOY, metav1.Kind_KIND_UPGRADE
	r := &Rule{From: "staging", SoakFor: time.Hour}
	at := func(minutes int) time.Time { return t0.Add(time.Duration(minutes) * time.Minute) }
	soaked := follower("a.example.org", ev(1, deploy, ok, "1.0.0"), ev(2, upgrade, ok, "1.1.0", 1))
	for _, tc := range []struct {
		name      string
		followers []*Head
		now       time.Time
		ok        bool
		reason    string
	}{
		{"soaked", []*Head{soaked}, at(62), true, ""},
		{"soaking", []*Head{soaked}, at(30), false, "has run 1.1.0 without drift for 28m0s of 1h0m0s (32m0s to go)"},
		{"nobody follows", nil, at(1000), false, "no app follows nextcloud/staging"},
		{"still on the old release", []*Head{follower("b.example.org", ev(1, deploy, ok, "1.0.0"))}, at(1000), false, "runs 1.0.0, not 1.1.0"},
		{"upgrade failed", []*Head{follower("b.example.org", ev(1, deploy, ok, "1.0.0"), ev(2, upgrade, failed, "1.1.0", 1))}, at(1000), false, "runs 1.0.0, not 1.1.0"},
		{"drifted", []*Head{follower("b.example.org", ev(1, deploy, ok, "1.0.0"), ev(2, upgrade, ok, "1.1.0", 1), observe(3, "1.0.0", "rollback_completed", 2))}, at(1000), false, "drifted (swarm-rollback)"},
		// Drift that ended starts the soak over from the observation
		// that saw it end.
		{"drift ended late", []*Head{follower("b.example.org", ev(1, upgrade, ok, "1.1.0"), observe(2, "1.1.0", "updating", 1), observe(50, "1.1.0", "completed", 2))}, at(100), false, "for 50m0s of 1h0m0s"},
		{"drift ended long ago", []*Head{follower("b.example.org", ev(1, upgrade, ok, "1.1.0"), observe(2, "1.1.0", "updating", 1), observe(50, "1.1.0", "completed", 2))}, at(111), true, ""},
		{"one of two", []*Head{soaked, follower("c.example.org", ev(1, deploy, ok, "1.0.0"))}, at(1000), false, "c.example.org"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := r.Admit("nextcloud", "1.1.0", tc.followers, tc.now)
			if a.OK != tc.ok {
				t.Fatalf("OK = %v, waiting %+v", a.OK, a.Waiting)
			}
			if tc.reason != "" {
				found := false
				for _, w := range a.Waiting {
					found = found || contains(w.App+" "+w.Reason, tc.reason)
				}
				if !found {
					t.Fatalf("no waiting app says %q: %+v", tc.reason, a.Waiting)
				}
			}
			if tc.ok && len(a.Admitted) != len(tc.followers) {
				t.Fatalf("admitted %v", a.Admitted)
			}
		})
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

func TestFollowAndUnfollow(t *testing.T) {
	follow := func(n int, kind metav1.Kind, recipe, channel string, parents ...int) *metav1.Event {
		e := ev(n, kind, ok, "", parents...)
		e.Recipe = recipe
		e.Body = &metav1.Event_Follow{Follow: &metav1.Follow{Channel: channel}}
		return e
	}
	f, u := metav1.Kind_KIND_FOLLOW, metav1.Kind_KIND_UNFOLLOW
	for _, tc := range []struct {
		name    string
		events  []*metav1.Event
		channel string
	}{
		{"follows", []*metav1.Event{follow(1, f, "nextcloud", "stable")}, "nextcloud/stable"},
		{"switched", []*metav1.Event{follow(1, f, "nextcloud", "stable"), follow(2, f, "nextcloud", "staging", 1)}, "nextcloud/staging"},
		{"unfollowed", []*metav1.Event{follow(1, f, "nextcloud", "stable"), follow(2, u, "nextcloud", "stable", 1)}, ""},
		// Made without seeing the switch to staging: it leaves it.
		{"unfollow of another channel", []*metav1.Event{follow(1, f, "nextcloud", "stable"), follow(2, f, "nextcloud", "staging", 1), follow(3, u, "nextcloud", "stable", 1)}, "nextcloud/staging"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := Fold(tc.events)
			got := ""
			if h.Follows != nil {
				got = h.Follows.Recipe + "/" + h.Follows.Channel
			}
			if got != tc.channel {
				t.Fatalf("follows %q, want %q", got, tc.channel)
			}
			if h.Recipe != "" {
				t.Fatalf("a follow told the app's recipe: %q", h.Recipe)
			}
		})
	}
}
