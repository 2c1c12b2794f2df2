package page

import (
	"bytes"
	"fmt"
	"html"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"git.coopcloud.tech/coop-cloud/meta/rollout/plan"
	"git.coopcloud.tech/coop-cloud/meta/store"
	"git.coopcloud.tech/coop-cloud/meta/store/fold"
	"git.coopcloud.tech/coop-cloud/meta/store/record"
)

var now = time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)

// newTestPage is a Page with no store: for rendering templates with data
// made by hand.
func newTestPage(t *testing.T) *Page {
	t.Helper()
	p, err := New(Config{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// renderT renders template name with data, and checks that every element
// that must be closed is, and that no value went missing.
func renderT(t *testing.T, p *Page, name string, data any) string {
	t.Helper()
	var buf bytes.Buffer
	if err := p.pages[name].Execute(&buf, data); err != nil {
		t.Fatalf("render %s: %v", name, err)
	}
	out := buf.String()
	for _, tag := range []string{"table", "thead", "tbody", "tr", "td", "th", "ul", "ol", "li", "dl", "dt", "dd", "div", "form", "select", "optgroup", "option", "span", "a", "p", "main", "header", "nav", "time", "code", "b"} {
		open := len(regexp.MustCompile(`<`+tag+`[ >]`).FindAllString(out, -1))
		if closed := strings.Count(out, "</"+tag+">"); open != closed {
			t.Errorf("render %s: %d <%s> but %d </%s>", name, open, tag, closed, tag)
		}
	}
	if strings.Contains(out, "<no value>") || strings.Contains(out, "%!") {
		t.Fatalf("render %s: a missing value shows: %s", name, out)
	}
	// html/template writes some characters as references (+ as &#43;):
	// what a browser shows is the text unescaped.
	return html.UnescapeString(out)
}

func testBase(title string) base {
	return base{Title: title, Now: now, Live: true, Generation: 3}
}

// head is a deployed app with everything a row shows.
func head(project, env, domain string) *fold.Head {
	return &fold.Head{
		Domain: domain, Project: project, Env: env, State: fold.StateDeployed, Version: "1.2.0+3.1", Recipe: "nextcloud",
		Since: now.Add(-48 * time.Hour), DeployedBy: "Alice", EventID: "01JABCDEFGHJKMNPQRSTVWXYZ0", Kind: "deploy", Outcome: "succeeded",
		Operator: "Alice", Time: now.Add(-48 * time.Hour), Events: 3,
	}
}

func TestAppsTemplate(t *testing.T) {
	p := newTestPage(t)
	long := strings.Repeat("a", 63)
	longDomain := strings.Repeat(long+".", 3) + strings.Repeat("b", 61) // 253
	if len(longDomain) != 253 {
		t.Fatalf("long domain is %d long", len(longDomain))
	}
	lock := head("coop", "prod", "locked.example.org")
	lock.Lock = &fold.Lock{Holder: "Bob", Reason: "upgrading <postgres> & co", Since: now.Add(-time.Minute), Expires: now.Add(25 * time.Minute)}
	forked := head("coop", "prod", "forked.example.org")
	forked.Forked, forked.Heads = true, []fold.Ref{{EventID: "a"}, {EventID: "b"}}
	lagging := head("coop", "prod", "lags.example.org")
	lagging.Follows = &fold.Follow{Recipe: "nextcloud", Channel: "stable"}
	observed := head("coop", "prod", "seen.example.org")
	observed.Observed, observed.ObservedVersion = &fold.Observation{Time: now.Add(-time.Minute)}, "1.1.0+3.0"
	observed.Drift, observed.DriftDetail = fold.DriftSwarmRollback, "Swarm runs 1.1.0+3.0, the log says 1.2.0+3.1"
	never := &fold.Head{Domain: "new.example.org", Project: "coop", Env: "prod", State: fold.StateUnknown}

	cases := []struct {
		name string
		data appsData
		want []string
		not  []string
	}{
		{"no apps", appsData{base: testBase("Apps")}, []string{"The log has no apps yet"}, []string{"<table"}},
		{"none match", appsData{base: testBase("Apps"), Total: 2, Filter: Filter{Q: "zzz"}}, []string{"No app matches this filter", `href="/">clear`}, []string{"<table"}},
		{"names at their limits", appsData{base: testBase("Apps"), Total: 1, Rows: []Row{{H: head(long, long, longDomain), Ref: long + "/" + long + "/" + longDomain, Server: long}}},
			[]string{longDomain, "/apps/" + long + "/" + long + "/" + longDomain}, nil},
		{"every column", appsData{base: testBase("Apps"), Total: 5, Quarantined: 2, Counts: Counts{Apps: 5, Drift: 1, Locked: 1, Forked: 1, Lagging: 1}, Rows: []Row{
			{H: lock, Ref: "coop/prod/locked.example.org"},
			{H: forked, Ref: "coop/prod/forked.example.org"},
			{H: lagging, Ref: "coop/prod/lags.example.org", Channel: &plan.Status{Channel: "nextcloud/stable", Version: "1.3.0+3.2", Lags: true, Action: plan.Upgrade}},
			{H: observed, Ref: "coop/prod/seen.example.org"},
			{H: never, Ref: "coop/prod/new.example.org"},
		}},
			[]string{
				"2 commits quarantined", "Bob", "25m left", "upgrading <postgres> & co", "forked", "upgrade to 1.3.0+3.2",
				`href="/channels/nextcloud/stable"`, "swarm-rollback", "Swarm runs 1.1.0+3.0, the log says 1.2.0+3.1", "not observed", "2d ago",
				`href="/?state=drift"`, "1 drifted",
			}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := renderT(t, p, "apps", c.data)
			for _, w := range c.want {
				if !strings.Contains(out, w) {
					t.Errorf("missing %q", w)
				}
			}
			for _, w := range c.not {
				if strings.Contains(out, w) {
					t.Errorf("has %q", w)
				}
			}
		})
	}
}

func TestAppsTemplateEveryDriftKind(t *testing.T) {
	p := newTestPage(t)
	d := appsData{base: testBase("Apps")}
	for i, word := range driftWords {
		h := head("coop", "prod", fmt.Sprintf("app%d.example.org", i))
		h.Observed, h.ObservedVersion = &fold.Observation{Time: now}, "9.9.9"
		h.Drift, h.DriftDetail = word, "detail of "+word
		d.Rows = append(d.Rows, Row{H: h, Ref: "coop/prod/" + h.Domain})
	}
	d.Total = len(d.Rows)
	out := renderT(t, p, "apps", d)
	for _, word := range driftWords {
		if !strings.Contains(out, `data-drift="`+word+`"`) || !strings.Contains(out, `title="detail of `+word+`">`+word+`</span>`) {
			t.Errorf("drift %s not shown with its detail", word)
		}
	}
}

func TestAppsTemplateThousandApps(t *testing.T) {
	p := newTestPage(t)
	d := appsData{base: testBase("Apps")}
	for i := range 1000 {
		h := head("coop", fmt.Sprintf("env%d", i%3), fmt.Sprintf("app%04d.example.org", i))
		d.Rows = append(d.Rows, Row{H: h, Ref: h.Project + "/" + h.Env + "/" + h.Domain})
	}
	d.Total = 1000
	out := renderT(t, p, "apps", d)
	if n := strings.Count(out, "<tr data-ref="); n != 1000 {
		t.Fatalf("%d rows, want 1000", n)
	}
	if !strings.Contains(out, "1000 of 1000 apps") {
		t.Error("count missing")
	}
}

func TestAppTemplate(t *testing.T) {
	p := newTestPage(t)
	h := head("coop", "prod", "cloud.example.org")
	h.Observed = &fold.Observation{Time: now.Add(-time.Minute), Operator: "hub", ObservedView: record.ObservedView{Services: []record.ServiceView{{Name: "app", Running: 0, Desired: 1, LastError: "exit 1"}}}}
	h.Drift, h.DriftDetail = fold.DriftDown, "nothing runs"
	h.EnvDigest, h.EnvChangedSinceDeploy = "sha256:0123456789abcdef", true
	h.Secrets = []fold.Secret{{Name: "db_password", Version: "v2"}}
	h.LastFailure = &fold.Ref{Kind: "upgrade", Version: "1.3.0", Outcome: "failed", Operator: "Bob", Time: now.Add(-time.Hour), Detail: "task: non-zero exit"}
	h.Follows = &fold.Follow{Recipe: "nextcloud", Channel: "stable"}
	items := []Item{
		itemOf(record.View{ID: "e1", Time: now.Add(-time.Hour), Kind: "upgrade", Outcome: "failed", Version: "1.3.0", Operator: "Bob", BatchID: "b1", BatchSummary: "upgrade 3 apps"}),
		itemOf(record.View{ID: "e2", Time: now.Add(-2 * time.Hour), Kind: "env", Operator: "Alice", EnvChange: &record.EnvView{Added: []string{"SMTP_HOST"}, Changed: []string{"DOMAIN"}}}),
		itemOf(record.View{ID: "e3", Time: now.Add(-3 * time.Hour), Kind: "observe", Operator: "hub", Observation: &record.ObservedView{Version: "1.1.0", UpdateState: "rollback_completed", UpdateMessage: "update rolled back"}}),
		itemOf(record.View{ID: "e4", Time: now.Add(-4 * time.Hour), Kind: "lock", Operator: "Bob", Message: "maintenance", Lock: &record.LockView{Expires: now}}),
		promotionItem(&fold.Channel{Recipe: "nextcloud", Channel: "stable"}, fold.Promotion{Ref: fold.Ref{EventID: "p1", Version: "1.3.0", Operator: "Carol", Time: now.Add(-5 * time.Hour)}, Forced: true}),
	}
	items[0].BatchStart = true
	d := appData{base: testBase(h.Domain), Row: Row{H: h, Ref: "coop/prod/cloud.example.org", Channel: &plan.Status{Channel: "nextcloud/stable", Version: "1.3.0", Lags: true, Action: plan.Blocked, Blocked: []string{"failed: the last upgrade failed"}}},
		Report: store.HeadReport{Head: h}, Items: items, N: 200, ChannelLink: "/channels/nextcloud/stable"}
	out := renderT(t, p, "app", d)
	for _, w := range []string{
		"cloud.example.org", "down", "nothing runs", "app 0/1: exit 1", "db_password", "changed since the deploy",
		"batch b1: upgrade 3 apps", "env +SMTP_HOST ~DOMAIN", "Swarm runs 1.1.0 (rollback_completed)", "update rolled back",
		"locked until 2026-12-02 12:00 UTC", "nextcloud/stable → 1.3.0 (forced past the rule)", "failed: the last upgrade failed",
		"task: non-zero exit",
	} {
		if !strings.Contains(out, w) {
			t.Errorf("missing %q", w)
		}
	}
}

func TestOtherTemplates(t *testing.T) {
	p := newTestPage(t)
	c := &fold.Channel{Recipe: "nextcloud", Channel: "stable", Version: "1.3.0", Rule: &fold.Rule{From: "testing", Soak: "24h0m0s", SoakFor: 24 * time.Hour},
		History: []fold.Promotion{{Ref: fold.Ref{Version: "1.3.0", Operator: "Carol", Time: now}, Previous: "1.2.0", Message: "soaked"}}}
	c.Promoted = &c.History[0]
	empty := &fold.Channel{Recipe: "gitea", Channel: "edge"}
	cases := []struct {
		name string
		data any
		want []string
	}{
		{"channels", channelsData{base: testBase("Channels"), Channels: []channelRow{{C: c, Followers: 3, Lagging: 1}, {C: empty}}}, []string{"nextcloud/stable", "after testing, soak 24h0m0s", "none yet"}},
		{"no channels", channelsData{base: testBase("Channels")}, []string{"No channel has been promoted yet"}},
		{"channel", channelData{base: testBase("nextcloud/stable"), C: c, History: c.History}, []string{"1.2.0 → <b>1.3.0</b>", "soaked", "No app follows it"}},
		{"plan", planData{base: testBase("Plan"), Plan: &plan.Plan{Apps: []plan.App{{Domain: "a.example.org", Project: "coop", Env: "prod", Action: plan.Upgrade, Command: []string{"abra", "app", "upgrade", "a.example.org", "1.3.0"}, Wave: 1}}, Waves: []plan.Wave{{Number: 1, Env: "prod", Server: "prod", Apps: []string{"coop/prod/a.example.org"}}}}},
			[]string{"abra app upgrade a.example.org 1.3.0", "wave 1: prod", `href="/apps/coop/prod/a.example.org"`}},
		{"empty plan", planData{base: testBase("Plan"), Plan: &plan.Plan{}}, []string{"No app follows a channel"}},
		{"changes", changesData{base: testBase("Changes"), Window: "7d"}, []string{"Nothing changed in this time"}},
		{"login", loginData{base: testBase("Sign in"), LoginForm: LoginForm{Next: "/apps/x", Problem: "That token is not one of this hub's"}}, []string{`name="next" value="/apps/x"`, "That token is not one of this hub's", `type="password"`}},
		{"error", errorData{base: testBase("Not Found"), Status: 404, Message: "app <x>: not found"}, []string{"404 Not Found", "app <x>: not found"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := renderT(t, p, c.name[strings.LastIndex(c.name, " ")+1:], c.data)
			for _, w := range c.want {
				if !strings.Contains(out, w) {
					t.Errorf("missing %q in\n%s", w, out)
				}
			}
		})
	}
}

// The page is its own: nothing is fetched from another site, and no
// script or style is inline (the Content-Security-Policy forbids them).
func TestNothingFromOutside(t *testing.T) {
	p := newTestPage(t)
	out := renderT(t, p, "apps", appsData{base: testBase("Apps")})
	if regexp.MustCompile(`(src|href)="(https?:)?//`).MatchString(out) {
		t.Error("the page links to another site")
	}
	if regexp.MustCompile(`<script>|<style|style="| on[a-z]+="`).MatchString(out) {
		t.Error("inline script or style")
	}
	rec := httptest.NewRecorder()
	p.ServeHTTP(rec, httptest.NewRequest("GET", "/static/style.css", nil))
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), "prefers-color-scheme: dark") {
		t.Errorf("style.css: %d", rec.Code)
	}
	if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("CSP %q", csp)
	}
}

func TestAgo(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		want string
	}{{0, "just now"}, {59 * time.Second, "just now"}, {5 * time.Minute, "5m ago"}, {3 * time.Hour, "3h ago"}, {47 * time.Hour, "47h ago"}, {72 * time.Hour, "3d ago"}, {-5 * time.Minute, "in 5m"}} {
		if got := ago(c.d); got != c.want {
			t.Errorf("ago(%v) = %q, want %q", c.d, got, c.want)
		}
	}
}

// What people typed (names, reasons, messages) is text, never markup.
func TestTypedTextIsEscaped(t *testing.T) {
	p := newTestPage(t)
	h := head("coop", "prod", "x.example.org")
	h.Operator = `<script>alert(1)</script>`
	h.Lock = &fold.Lock{Holder: `"><img src=x>`, Reason: "<b>now</b>", Expires: now.Add(time.Hour)}
	var buf bytes.Buffer
	if err := p.pages["apps"].Execute(&buf, appsData{base: testBase("Apps"), Total: 1, Rows: []Row{{H: h, Ref: "coop/prod/x.example.org"}}}); err != nil {
		t.Fatal(err)
	}
	for _, raw := range []string{"<script>alert", `"><img`, "<b>now</b>"} {
		if strings.Contains(buf.String(), raw) {
			t.Errorf("%q is in the page as markup", raw)
		}
	}
}

// An app's page says each drift kind, with why, and what Swarm runs.
func TestAppTemplateEveryDriftKind(t *testing.T) {
	p := newTestPage(t)
	for _, word := range driftWords {
		t.Run(word, func(t *testing.T) {
			h := head("coop", "prod", "cloud.example.org")
			h.Observed, h.ObservedVersion = &fold.Observation{Time: now, ObservedView: record.ObservedView{UpdateState: "rollback_completed", Missing: word == fold.DriftDown}}, "1.1.0"
			h.Drift, h.DriftDetail = word, "because <"+word+">"
			out := renderT(t, p, "app", appData{base: testBase(h.Domain), Row: Row{H: h, Ref: "coop/prod/cloud.example.org"}, Report: store.HeadReport{Head: h}})
			for _, w := range []string{`data-drift="` + word + `"`, `<span class="tag bad">` + word + `</span> because <` + word + `>`, "1.1.0", "rollback_completed"} {
				if !strings.Contains(out, w) {
					t.Errorf("missing %q", w)
				}
			}
			if (word == fold.DriftDown) != strings.Contains(out, "stack missing") {
				t.Error("a missing stack is said only when Swarm saw none")
			}
		})
	}
}

// driftWords are every drift reason.
var driftWords = []string{fold.DriftSwarmRollback, fold.DriftUpdating, fold.DriftUpdatePaused, fold.DriftUnrecorded, fold.DriftNotDeployed, fold.DriftDown, fold.DriftDegraded}
