package page

import (
	"cmp"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/projects"
	"git.coopcloud.tech/coop-cloud/meta/rollout/plan"
	"git.coopcloud.tech/coop-cloud/meta/store"
	"git.coopcloud.tech/coop-cloud/meta/store/fold"
	"git.coopcloud.tech/coop-cloud/meta/store/record"
)

// errBadFilter is a filter in the page's query it cannot read (400).
var errBadFilter = errors.New("bad filter")

// Filter is the main page's query: each field, when set, keeps only the
// apps it names. They are plain URL parameters, so a filtered view is a
// link to share.
type Filter struct {
	Project, Env, Server, Recipe, Channel string
	// State is a head's state (fold.State*), or one of the Watch words.
	State string
	// Q keeps the apps whose domain holds it.
	Q string
	// Changed keeps the apps whose last event is at most this old ("" for
	// any): 1h, 24h, 7d, 30d.
	Changed string
	// Sort is "name" (project, env, domain: the default) or "last" (the
	// newest last event first).
	Sort string
}

// Watch words: states of the State filter that are not a head's state but
// what an operator looks for.
const (
	WatchDrift   = "drift"
	WatchLocked  = "locked"
	WatchForked  = "forked"
	WatchLagging = "lagging"
	WatchFailed  = "failed"
)

var watchWords = []string{WatchDrift, WatchLagging, WatchLocked, WatchForked, WatchFailed}

// window is one choice of the Changed filter: its value in the URL, its
// words in the form, and how far back it reaches.
type window struct {
	Value, Label string
	D            time.Duration
}

// changedWindows are the Changed filter's choices.
var changedWindows = []window{{"1h", "last hour", time.Hour}, {"24h", "last day", 24 * time.Hour}, {"7d", "this week", 7 * 24 * time.Hour}, {"30d", "last 30 days", 30 * 24 * time.Hour}}

func filterOf(q url.Values) (Filter, error) {
	f := Filter{
		Project: q.Get("project"), Env: q.Get("env"), Server: q.Get("server"), Recipe: q.Get("recipe"),
		Channel: q.Get("channel"), State: q.Get("state"), Q: strings.TrimSpace(q.Get("q")), Changed: q.Get("changed"), Sort: q.Get("sort"),
	}
	if f.Changed != "" && f.window() == 0 {
		return f, fmt.Errorf("%w: changed=%q: want 1h, 24h, 7d or 30d", errBadFilter, f.Changed)
	}
	if f.Sort != "" && f.Sort != "name" && f.Sort != "last" {
		return f, fmt.Errorf("%w: sort=%q: want name or last", errBadFilter, f.Sort)
	}
	return f, nil
}

func (f Filter) window() time.Duration {
	for _, w := range changedWindows {
		if w.Value == f.Changed {
			return w.D
		}
	}
	return 0
}

// Any says a filter is set.
func (f Filter) Any() bool {
	return f != Filter{Sort: f.Sort}
}

// Row is one app of the main table.
type Row struct {
	// H is the head at the page's now: a lease past its expiry is gone.
	H *fold.Head
	// Ref is project/env/domain, the app page's path.
	Ref    string
	Server string
	// Channel is the app's status against the channel it follows; nil
	// when it follows none.
	Channel *plan.Status
}

// Failed says the last deploy did not take.
func (r Row) Failed() bool {
	switch r.H.State {
	case fold.StateDeployFailed, fold.StateRolledBack, fold.StatePaused:
		return true
	}
	return false
}

// Lags says the app is behind (or off) its channel's release.
func (r Row) Lags() bool { return r.Channel != nil && r.Channel.Lags }

func (r Row) matches(f Filter, now time.Time) bool {
	h := r.H
	follows := ""
	if h.Follows != nil {
		follows = h.Follows.Recipe + "/" + h.Follows.Channel
	}
	ok := (f.Project == "" || h.Project == f.Project) &&
		(f.Env == "" || h.Env == f.Env) &&
		(f.Server == "" || r.Server == f.Server) &&
		(f.Recipe == "" || h.Recipe == f.Recipe || h.Follows != nil && h.Follows.Recipe == f.Recipe) &&
		(f.Channel == "" || follows == f.Channel) &&
		(f.Q == "" || strings.Contains(strings.ToLower(h.Domain), strings.ToLower(f.Q))) &&
		(f.Changed == "" || !h.Time.IsZero() && now.Sub(h.Time) <= f.window())
	if !ok || f.State == "" {
		return ok
	}
	switch f.State {
	case WatchDrift:
		return h.Drift != ""
	case WatchLocked:
		return h.Lock != nil
	case WatchForked:
		return h.Forked
	case WatchLagging:
		return r.Lags()
	case WatchFailed:
		return r.Failed()
	}
	return h.State == f.State
}

// Counts are how many of the apps need a look, for the main page's
// summary; each is a link to the filter that shows them.
type Counts struct {
	Apps, Drift, Lagging, Locked, Forked, Failed int
}

type appsData struct {
	base
	Filter  Filter
	Options options
	Rows    []Row
	// Total is every app, Counts are of every app: the filter narrows
	// the table, not the summary.
	Total       int
	Counts      Counts
	Quarantined int
}

// options are the choices of each filter: the values the log has.
type options struct {
	Projects, Envs, Servers, Recipes, Channels, States []string
	Watch                                              []string
	Changed                                            []window
}

// rows are every app of the log with its server and channel status, at now.
func rows(s *store.Store, now time.Time) ([]Row, plan.Input, error) {
	in, err := plan.FromStore(s)
	if err != nil {
		return nil, in, err
	}
	out := make([]Row, 0, len(in.Heads))
	for _, h := range in.Heads {
		out = append(out, rowOf(h.At(now), in, now))
	}
	slices.SortFunc(out, func(a, b Row) int {
		return cmp.Or(cmp.Compare(a.H.Project, b.H.Project), cmp.Compare(a.H.Env, b.H.Env), cmp.Compare(a.H.Domain, b.H.Domain))
	})
	return out, in, nil
}

// rowOf is h's row: its server, and its status against its channel among
// in's.
func rowOf(h *fold.Head, in plan.Input, now time.Time) Row {
	return Row{H: h, Ref: h.Project + "/" + h.Env + "/" + h.Domain, Server: plan.ServerOf(h, in.Config), Channel: plan.StatusOf(h, in, plan.Options{Now: now})}
}

func (p *Page) apps(r *http.Request) (string, int, any, error) {
	f, err := filterOf(r.URL.Query())
	if err != nil {
		return "", 0, nil, err
	}
	now := p.cfg.Now()
	all, _, err := rows(p.cfg.Store, now)
	if err != nil {
		return "", 0, nil, err
	}
	qs, err := p.cfg.Store.Quarantine(r.Context(), false)
	if err != nil {
		return "", 0, nil, err
	}
	d := appsData{base: p.base(r, "Apps", "apps"), Filter: f, Total: len(all), Quarantined: len(qs)}
	d.Options.Watch, d.Options.Changed = watchWords, changedWindows
	seen := map[string]map[string]bool{}
	add := func(list *[]string, kind, v string) {
		if v == "" || seen[kind][v] {
			return
		}
		if seen[kind] == nil {
			seen[kind] = map[string]bool{}
		}
		seen[kind][v] = true
		*list = append(*list, v)
	}
	for _, row := range all {
		h := row.H
		add(&d.Options.Projects, "p", h.Project)
		add(&d.Options.Envs, "e", h.Env)
		add(&d.Options.Servers, "s", row.Server)
		add(&d.Options.Recipes, "r", h.Recipe)
		add(&d.Options.States, "st", h.State)
		if h.Follows != nil {
			add(&d.Options.Recipes, "r", h.Follows.Recipe)
			add(&d.Options.Channels, "c", h.Follows.Recipe+"/"+h.Follows.Channel)
		}
		d.Counts.Apps++
		if h.Drift != "" {
			d.Counts.Drift++
		}
		if row.Lags() {
			d.Counts.Lagging++
		}
		if h.Lock != nil {
			d.Counts.Locked++
		}
		if h.Forked {
			d.Counts.Forked++
		}
		if row.Failed() {
			d.Counts.Failed++
		}
		if row.matches(f, now) {
			d.Rows = append(d.Rows, row)
		}
	}
	for _, l := range []*[]string{&d.Options.Projects, &d.Options.Envs, &d.Options.Servers, &d.Options.Recipes, &d.Options.Channels, &d.Options.States} {
		slices.Sort(*l)
	}
	if f.Sort == "last" {
		slices.SortStableFunc(d.Rows, func(a, b Row) int { return b.H.Time.Compare(a.H.Time) })
	}
	return "apps", http.StatusOK, d, nil
}

// Item is one line of a timeline: an event said for people.
type Item struct {
	record.View
	// What says what the event did, in a few words; Detail adds what
	// Swarm or the operator said.
	What, Detail string
	// Tone is how it went: "good", "bad", "warn" or "" (neither).
	Tone string
	// Log is "channel" for a promotion of the channel the app follows,
	// "" for the app's own events.
	Log string
	// BatchStart says the item is the first of its batch (BatchID) in
	// the list: the batch's line goes before it.
	BatchStart bool
}

type appData struct {
	base
	Row         Row
	Report      store.HeadReport
	Items       []Item
	N           int  // how many events the timeline asked for, 0 for all
	More        bool // the log has more than the timeline shows
	ChannelLink string
}

// defaultTimeline is how many events an app's page shows unless ?n= says.
const defaultTimeline = 200

func (p *Page) app(r *http.Request) (string, int, any, error) {
	ref := pathRef(r)
	n, err := count(r.URL.Query().Get("n"), defaultTimeline)
	if err != nil {
		return "", 0, nil, err
	}
	s, now := p.cfg.Store, p.cfg.Now()
	h, err := s.Head(ref)
	if err != nil {
		return "", 0, nil, err
	}
	rep, err := s.Report(r.Context(), h.At(now))
	if err != nil {
		return "", 0, nil, err
	}
	in, err := plan.ChannelsFrom(s, "")
	if err != nil {
		return "", 0, nil, err
	}
	in.Heads = []*fold.Head{rep.Head}
	row := rowOf(rep.Head, in, now)
	// One more than shown says whether there are more.
	events, err := s.Log(row.Ref, n+min(n, 1))
	if err != nil {
		return "", 0, nil, err
	}
	more := n > 0 && len(events) > n
	if more {
		events = events[:n]
	}
	views, err := s.Views(r.Context(), events)
	if err != nil {
		return "", 0, nil, err
	}
	items := make([]Item, 0, len(views))
	for _, v := range views {
		items = append(items, itemOf(v))
	}
	d := appData{base: p.base(r, h.Domain, "apps"), Row: row, Report: rep, N: n, More: more}
	if f := h.Follows; f != nil {
		d.ChannelLink = channelURL(f.Recipe, f.Channel)
		// The channel's promotions belong in the app's story: they are
		// why it lags. Only those the timeline's span covers.
		for _, c := range in.Channels {
			if c.Recipe != f.Recipe || c.Channel != f.Channel {
				continue
			}
			var oldest time.Time
			if more && len(items) > 0 {
				oldest = items[len(items)-1].Time
			}
			for _, pr := range c.History {
				if pr.Time.Before(oldest) {
					continue
				}
				items = append(items, promotionItem(c, pr))
			}
		}
		slices.SortStableFunc(items, func(a, b Item) int { return b.Time.Compare(a.Time) })
	}
	batch := ""
	for i := range items {
		if items[i].BatchID != batch {
			batch = items[i].BatchID
			items[i].BatchStart = batch != ""
		}
	}
	d.Items = items
	return "app", http.StatusOK, d, nil
}

// count reads ?n=: a whole number, 0 for all; empty is def.
func count(v string, def int) (int, error) {
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%w: n=%q: want a whole number of events, 0 for all", errBadFilter, v)
	}
	return n, nil
}

// itemOf says an event for people: its kind's own words, never a value
// of the env (an env change names its keys).
func itemOf(v record.View) Item {
	it := Item{View: v, Detail: v.Message}
	version := v.Version
	if v.ChaosVersion != "" {
		version = strings.TrimSpace(version + " chaos " + v.ChaosVersion)
	}
	switch v.Outcome {
	case "succeeded":
		it.Tone = "good"
	case "failed":
		it.Tone = "bad"
	}
	switch {
	case v.Rollback != nil:
		it.What = "rolled back from " + orDash(v.Rollback.FromVersion) + " to " + orDash(v.Rollback.TargetVersion)
	case v.Observation != nil:
		// What Swarm was seen doing is news by what it saw, not by the
		// observation's own outcome.
		o := v.Observation
		it.Tone = ""
		switch {
		case o.Missing:
			it.What, it.Tone = "Swarm runs nothing of it (stack missing)", "warn"
		default:
			it.What = "Swarm runs " + orDash(o.Running())
			if o.UpdateState != "" {
				it.What += " (" + o.UpdateState + ")"
				if strings.HasPrefix(o.UpdateState, "rollback") || o.UpdateState == "paused" {
					it.Tone = "bad"
				}
			}
			var down []string
			for _, sv := range o.Services {
				if sv.Running < sv.Desired {
					down = append(down, fmt.Sprintf("%s %d/%d", sv.Name, sv.Running, sv.Desired))
				}
			}
			if len(down) > 0 {
				it.What += ", short of tasks: " + strings.Join(down, ", ")
				it.Tone = "warn"
			}
		}
		if o.UpdateMessage != "" {
			it.Detail = strings.TrimSpace(o.UpdateMessage + "  " + it.Detail)
		}
	case v.EnvChange != nil:
		it.What = "env " + v.EnvChange.Summary()
		if v.EnvChange.Reason != "" && v.EnvChange.Reason != "rekey" {
			it.Detail = strings.TrimSpace(v.EnvChange.Reason + "  " + it.Detail)
		}
	case v.Secret != nil:
		it.What = v.Kind + " " + v.Secret.Name + " " + v.Secret.Version
	case v.Lock != nil:
		it.What = "locked until " + v.Lock.Expires.UTC().Format(timeFormat)
	case v.Unlock != nil:
		it.What = "unlocked"
	case v.Move != nil:
		it.What = "moved from " + orDash(v.Move.FromServer) + " to " + orDash(v.Move.ToServer)
	case v.Channel != "" && (v.Kind == "follow" || v.Kind == "unfollow"):
		it.What = v.Kind + " " + v.Recipe + "/" + v.Channel
	case v.Purge != nil:
		it.What, it.Tone = "purged "+v.Purge.Path, "warn"
		it.Detail = strings.TrimSpace(v.Purge.Reason + "  " + it.Detail)
	case version != "":
		it.What = version
		if v.LocalEnv {
			it.What += " (" + record.LocalEnvNote + ")"
		}
	}
	if v.Swarm != nil && v.Swarm.UpdateState != "" {
		it.Detail = strings.TrimSpace("Swarm: " + v.Swarm.UpdateState + " " + v.Swarm.UpdateMessage + "  " + it.Detail)
	}
	if v.BrokeLock != "" {
		it.Detail = strings.TrimSpace("broke lock " + short(v.BrokeLock) + "  " + it.Detail)
	}
	return it
}

// promotionItem is a promotion of the channel an app follows, as a line
// of the app's timeline.
func promotionItem(c *fold.Channel, pr fold.Promotion) Item {
	it := Item{Log: "channel", Tone: ""}
	it.ID, it.Time, it.Kind, it.Operator = pr.EventID, pr.Time, "promote", pr.Operator
	it.What = c.Recipe + "/" + c.Channel + " → " + pr.Version
	if pr.Forced {
		it.What += " (forced past the rule)"
		it.Tone = "warn"
	}
	it.Detail = pr.Message
	return it
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func short(id string) string { return id[:min(len(id), store.ShortLen)] }

type channelsData struct {
	base
	Channels []channelRow
}

// channelRow is a channel with who follows it and how many lag.
type channelRow struct {
	C         *fold.Channel
	Followers int
	Lagging   int
	Blocked   int
}

func (p *Page) channels(r *http.Request) (string, int, any, error) {
	now := p.cfg.Now()
	all, in, err := rows(p.cfg.Store, now)
	if err != nil {
		return "", 0, nil, err
	}
	d := channelsData{base: p.base(r, "Channels", "channels")}
	for _, c := range in.Channels {
		cr := channelRow{C: c}
		for _, row := range all {
			if st := row.Channel; st != nil && st.Channel == c.Recipe+"/"+c.Channel {
				cr.Followers++
				if st.Lags {
					cr.Lagging++
				}
				if st.Action == plan.Blocked {
					cr.Blocked++
				}
			}
		}
		d.Channels = append(d.Channels, cr)
	}
	return "channels", http.StatusOK, d, nil
}

type channelData struct {
	base
	C         *fold.Channel
	Followers []Row
	History   []fold.Promotion // newest first
}

func (p *Page) channel(r *http.Request) (string, int, any, error) {
	ref := projects.ChannelRef{Recipe: r.PathValue("recipe"), Channel: r.PathValue("channel")}
	if err := ref.Validate(); err != nil {
		return "", 0, nil, err
	}
	now := p.cfg.Now()
	all, in, err := rows(p.cfg.Store, now)
	if err != nil {
		return "", 0, nil, err
	}
	var c *fold.Channel
	for _, ch := range in.Channels {
		if ch.Recipe == ref.Recipe && ch.Channel == ref.Channel {
			c = ch
		}
	}
	d := channelData{base: p.base(r, ref.String(), "channels"), C: c}
	for _, row := range all {
		if row.Channel != nil && row.Channel.Channel == ref.String() {
			d.Followers = append(d.Followers, row)
		}
	}
	if c == nil {
		if len(d.Followers) == 0 {
			return "", 0, nil, fmt.Errorf("channel %s: %w (no promotion, no app follows it)", ref, store.ErrNotFound)
		}
		d.C = &fold.Channel{Recipe: ref.Recipe, Channel: ref.Channel}
	}
	d.History = slices.Clone(d.C.History)
	slices.Reverse(d.History)
	return "channel", http.StatusOK, d, nil
}

type planData struct {
	base
	Plan    *plan.Plan
	Query   url.Values
	Channel string
	// Channels are the channels to choose from: promoted or followed.
	Channels []string
}

func (p *Page) plan(r *http.Request) (string, int, any, error) {
	q := r.URL.Query()
	// The form sends what it leaves empty: empty is unset.
	for k, v := range q {
		if len(v) == 1 && v[0] == "" {
			delete(q, k)
		}
	}
	o, err := plan.ParseQuery(q, p.cfg.Now())
	if err != nil {
		return "", 0, nil, err
	}
	in, err := plan.FromStore(p.cfg.Store)
	if err != nil {
		return "", 0, nil, err
	}
	d := planData{base: p.base(r, "Plan", "plan"), Plan: plan.Make(in, o), Query: q, Channel: q.Get("channel")}
	for _, c := range in.Channels {
		d.Channels = append(d.Channels, c.Recipe+"/"+c.Channel)
	}
	for _, h := range in.Heads {
		if h.Follows != nil {
			d.Channels = append(d.Channels, h.Follows.Recipe+"/"+h.Follows.Channel)
		}
	}
	slices.Sort(d.Channels)
	d.Channels = slices.Compact(d.Channels)
	return "plan", http.StatusOK, d, nil
}

type changesData struct {
	base
	Window string
	Items  []Item
	More   bool
}

// maxChanges bounds the changes page: the newest this many.
const maxChanges = 500

func (p *Page) changes(r *http.Request) (string, int, any, error) {
	q := r.URL.Query()
	f := Filter{Changed: cmp.Or(q.Get("changed"), "7d")}
	if _, err := filterOf(url.Values{"changed": {f.Changed}}); err != nil {
		return "", 0, nil, err
	}
	since := p.cfg.Now().Add(-f.window())
	events, err := p.cfg.Store.Events(store.Query{Since: since, N: maxChanges + 1, Project: q.Get("project"), Env: q.Get("env")})
	if err != nil {
		return "", 0, nil, err
	}
	d := changesData{base: p.base(r, "Changes", "changes"), Window: f.Changed, More: len(events) > maxChanges}
	events = events[:min(len(events), maxChanges)]
	// Observations are Swarm's news, not an operator's change, unless
	// they saw something go wrong.
	views, err := p.cfg.Store.Views(r.Context(), events)
	if err != nil {
		return "", 0, nil, err
	}
	for _, v := range views {
		it := itemOf(v)
		if v.Kind == record.KindName(metav1.Kind_KIND_OBSERVE) && it.Tone == "" {
			continue
		}
		d.Items = append(d.Items, it)
	}
	return "changes", http.StatusOK, d, nil
}

// appURL is an app's page: /apps/project/env/domain, each part escaped.
func appURL(project, env, domain string) string {
	return "/apps/" + url.PathEscape(project) + "/" + url.PathEscape(env) + "/" + url.PathEscape(domain)
}

// channelURL is a channel's page.
func channelURL(recipe, channel string) string {
	return "/channels/" + url.PathEscape(recipe) + "/" + url.PathEscape(channel)
}
