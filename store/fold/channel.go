package fold

import (
	"fmt"
	"sort"
	"time"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/store/record"
)

// Channel is a recipe's channel as its log says: the release it points at,
// who put it there, the rule its promotions must pass, and every promotion
// before. Its JSON keys are part of meta's interface (`meta channel ls
// --json`, the hub's /v1/channels): add keys, never rename or remove them.
type Channel struct {
	Recipe  string `json:"recipe"`
	Channel string `json:"channel"`
	// Version is the release the channel points at, "" before its first
	// promotion; Promoted is the promotion that set it.
	Version  string     `json:"version"`
	Promoted *Promotion `json:"promoted"`
	// Rule is what a release must have done before it may be promoted
	// here; nil for none.
	Rule *Rule `json:"rule"`
	// History is every promotion, in fold order (oldest first).
	History []Promotion `json:"history"`
	// Forked says two operators promoted the channel without seeing each
	// other's promotion; Forks are those promotions (the one Version
	// comes from last, the same on every machine). The next promotion,
	// made by someone who has both, ends the fork.
	Forked bool        `json:"forked"`
	Forks  []Promotion `json:"forks"`
	// Heads are the log's heads: the parents of its next event.
	Heads         []Ref `json:"heads"`
	Events        int   `json:"events"`
	UnknownEvents int   `json:"unknown_events"`
}

// Promotion is one move of a channel to a release.
type Promotion struct {
	Ref
	// Previous is the version the promoting operator saw the channel at;
	// Expected the one they required (--expect), "" for none.
	Previous string `json:"previous"`
	Expected string `json:"expected"`
	// Forced says the operator promoted past the rule; Admitted names the
	// apps whose soak let it through.
	Forced   bool     `json:"forced"`
	Admitted []string `json:"admitted"`
	// Message is why, in the promoting operator's words (-m).
	Message string `json:"message"`
}

// Rule is a channel's rule: a release may be promoted only once every app
// following From has run it, deployed successfully, without drift for
// Soak.
type Rule struct {
	From string `json:"from"`
	// Soak in Go's duration syntax ("24h0m0s") and in seconds.
	Soak        string        `json:"soak"`
	SoakSeconds float64       `json:"soak_seconds"`
	SoakFor     time.Duration `json:"-"`
	// Set is the event that set the rule.
	Set Ref `json:"set"`
}

// HeadIDs are the ids of the channel log's heads.
func (c *Channel) HeadIDs() []string {
	ids := make([]string, len(c.Heads))
	for i, r := range c.Heads {
		ids[i] = r.EventID
	}
	return ids
}

// FoldChannel computes a channel's state from its log's events, given in
// any order; nil for none.
func FoldChannel(events []*metav1.Event) *Channel {
	if len(events) == 0 {
		return nil
	}
	ordered := Order(events)
	a := record.Address(ordered[0])
	c := &Channel{Recipe: a.Recipe(), Channel: a.Channel(), History: []Promotion{}, Forks: []Promotion{}}
	for _, ev := range ordered {
		switch {
		case !record.KnownKind(ev.GetKind()) || ev.GetOutcome() != metav1.Outcome_OUTCOME_SUCCEEDED:
			c.UnknownEvents++
		case ev.GetKind() == metav1.Kind_KIND_PROMOTE:
			p := ev.GetPromotion()
			pr := Promotion{Ref: RefOf(ev), Previous: p.GetPrevious(), Expected: p.GetExpected(), Forced: p.GetForced(), Admitted: append([]string{}, p.GetAdmitted()...), Message: ev.GetMessage()}
			c.History = append(c.History, pr)
			c.Version, c.Promoted = pr.Version, &c.History[len(c.History)-1]
		case ev.GetKind() == metav1.Kind_KIND_CHANNEL_RULE:
			r := ev.GetRule()
			if r.GetFrom() == "" {
				c.Rule = nil
				continue
			}
			d := r.GetSoak().AsDuration()
			c.Rule = &Rule{From: r.GetFrom(), Soak: d.String(), SoakSeconds: d.Seconds(), SoakFor: d, Set: RefOf(ev)}
		}
	}
	if c.Promoted != nil {
		last := *c.Promoted
		c.Promoted = &last // not into History, which may grow
	}
	c.Events = len(ordered)
	c.Heads = heads(ordered)
	c.Forks = promotionForks(ordered, c.History)
	c.Forked = len(c.Forks) > 1
	if !c.Forked {
		c.Forks = []Promotion{}
	}
	return c
}

// promotionForks are the promotions no later promotion saw (none of which
// is an ancestor of another), in fold order. A rule set beside a
// promotion is no fork of the channel's release.
func promotionForks(ordered []*metav1.Event, history []Promotion) []Promotion {
	parents := make(map[string][]string, len(ordered))
	for _, ev := range ordered {
		parents[ev.GetId()] = ev.GetParents()
	}
	// ancestors of each promotion, walked once each: channel logs hold
	// a promotion a week or so, not millions.
	seen := map[string]bool{}
	for _, p := range history {
		stack := append([]string{}, parents[p.EventID]...)
		visited := map[string]bool{}
		for len(stack) > 0 {
			id := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if visited[id] {
				continue
			}
			visited[id] = true
			seen[id] = true
			stack = append(stack, parents[id]...)
		}
	}
	var out []Promotion
	for _, p := range history {
		if !seen[p.EventID] {
			out = append(out, p)
		}
	}
	return out
}

// Release is one recorded release of a recipe.
type Release struct {
	Version string   `json:"version"`
	Commit  string   `json:"commit"`
	Images  []Image  `json:"images"`
	Notes   string   `json:"notes"`
	Ref     Ref      `json:"recorded"`
	Also    []string `json:"also_recorded_by"`
}

// Image is the image one service of a release runs.
type Image struct {
	Service string `json:"service"`
	Ref     string `json:"ref"`
}

// FoldReleases lists a recipe's releases from its releases log, in fold
// order. A version recorded twice (two operators importing at once) is
// listed once, as its first record in fold order says; the others' ids
// are in Also.
func FoldReleases(events []*metav1.Event) []Release {
	out := []Release{}
	at := map[string]int{}
	for _, ev := range Order(events) {
		if ev.GetKind() != metav1.Kind_KIND_RELEASE || ev.GetOutcome() != metav1.Outcome_OUTCOME_SUCCEEDED {
			continue
		}
		if i, dup := at[ev.GetVersion()]; dup {
			out[i].Also = append(out[i].Also, ev.GetId())
			continue
		}
		r := Release{Version: ev.GetVersion(), Commit: ev.GetRelease().GetCommit(), Images: []Image{}, Notes: ev.GetMessage(), Ref: RefOf(ev), Also: []string{}}
		for _, im := range ev.GetRelease().GetImages() {
			r.Images = append(r.Images, Image{Service: im.GetService(), Ref: im.GetRef()})
		}
		at[r.Version] = len(out)
		out = append(out, r)
	}
	return out
}

// Admission is whether a channel's rule lets a release through.
type Admission struct {
	// OK says it does: every app following the rule's channel has run the
	// release, deployed and without drift, for the soak.
	OK bool
	// Admitted names those apps (project/env/domain); Waiting the others,
	// each with why not yet.
	Admitted []string
	Waiting  []Waiting
}

// Waiting is an app that has not got where the rule wants it yet.
type Waiting struct {
	App    string        `json:"app"`
	Reason string        `json:"reason"`
	Left   time.Duration `json:"-"`
}

// Admit says whether r lets version through, by the heads of the apps that
// follow r.From (of the channel's recipe), evaluated at now. The one rule
// of soaking: an app admits the release when the log says it runs exactly
// that version, deployed, without drift, since at least r.SoakFor ago. No
// follower admits nothing: a release nobody ran has not soaked.
func (r *Rule) Admit(recipe, version string, followers []*Head, now time.Time) Admission {
	var a Admission
	for _, h := range followers {
		app := h.Project + "/" + h.Env + "/" + h.Domain
		wait := func(format string, args ...any) {
			a.Waiting = append(a.Waiting, Waiting{App: app, Reason: fmt.Sprintf(format, args...)})
		}
		switch {
		case h.Running() != version && h.Version != version:
			if h.Running() == "" {
				wait("runs nothing yet (%s)", h.State)
			} else {
				wait("runs %s, not %s", h.Running(), version)
			}
		case h.ChaosVersion != "":
			wait("runs a chaos deploy (%s)", h.ChaosVersion)
		case h.State != StateDeployed:
			wait("is %s", h.State)
		case h.Drift != "":
			wait("has drifted (%s)", h.Drift)
		case h.SteadySince.IsZero():
			wait("is not steady yet")
		case now.Sub(h.SteadySince) < r.SoakFor:
			left := r.SoakFor - now.Sub(h.SteadySince)
			a.Waiting = append(a.Waiting, Waiting{App: app, Left: left,
				Reason: fmt.Sprintf("has run %s without drift for %s of %s (%s to go)", version, round(now.Sub(h.SteadySince)), round(r.SoakFor), round(left))})
		default:
			a.Admitted = append(a.Admitted, app)
		}
	}
	if len(followers) == 0 {
		a.Waiting = append(a.Waiting, Waiting{App: "", Reason: fmt.Sprintf("no app follows %s/%s, so nothing has run the release there", recipe, r.From)})
	}
	sort.Strings(a.Admitted)
	sort.Slice(a.Waiting, func(i, j int) bool { return a.Waiting[i].App < a.Waiting[j].App })
	a.OK = len(a.Waiting) == 0
	return a
}

// round shows a duration to the second, as people read soaks.
func round(d time.Duration) time.Duration { return d.Round(time.Second) }
