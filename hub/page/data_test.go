package page

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/projects"
	"git.coopcloud.tech/coop-cloud/meta/store"
)

var alice = &metav1.Actor{Name: "Alice", Email: "alice@example.org"}

// seeded is a log of three apps in two envs, one of them drifted, one
// locked, one following a channel that moved past it.
func seeded(t *testing.T) *store.Store {
	t.Helper()
	s, err := store.Init(t.TempDir(), store.InitOptions{Project: "coop", Env: "prod", Operator: store.Signature{Name: "Alice", When: time.Now()}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	at := time.Now().Add(-time.Hour)
	add := func(ev *metav1.Event) {
		t.Helper()
		if ev.Outcome == metav1.Outcome_OUTCOME_UNSPECIFIED {
			ev.Outcome = metav1.Outcome_OUTCOME_SUCCEEDED
		}
		at = at.Add(time.Second)
		if _, err := s.Append(ctx, ev, alice, at, store.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	addr := func(env, app string) *metav1.Address { return &metav1.Address{Project: "coop", Env: env, App: app} }
	add(&metav1.Event{Kind: metav1.Kind_KIND_DEPLOY, Address: addr("prod", "cloud.example.org"), Recipe: "nextcloud", Version: "1.0.0"})
	add(&metav1.Event{Kind: metav1.Kind_KIND_DEPLOY, Address: addr("prod", "git.example.org"), Recipe: "gitea", Version: "2.0.0"})
	add(&metav1.Event{Kind: metav1.Kind_KIND_DEPLOY, Address: addr("staging", "cloud.staging.example.org"), Recipe: "nextcloud", Version: "1.0.0"})
	// Swarm runs another version on git.example.org.
	add(&metav1.Event{Kind: metav1.Kind_KIND_OBSERVE, Address: addr("prod", "git.example.org"), Body: &metav1.Event_Observation{Observation: &metav1.Observation{Service: "git_example_org_app", Version: "1.9.0"}}})
	// Bob holds a lock on cloud.example.org.
	add(&metav1.Event{Kind: metav1.Kind_KIND_LOCK, Address: addr("prod", "cloud.example.org"), Message: "db migration", Body: &metav1.Event_Lock{Lock: &metav1.Lock{Expires: timestamppb.New(time.Now().Add(time.Hour))}}})
	// A release, a channel at it, and an app behind it.
	stable := projects.ChannelRef{Recipe: "nextcloud", Channel: "stable"}
	if _, err := s.AddReleases(ctx, []store.ReleaseSpec{{Recipe: "nextcloud", Version: "1.0.0"}, {Recipe: "nextcloud", Version: "1.1.0"}}, false, alice, time.Now(), store.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Follow(ctx, "cloud.staging.example.org", stable, "", alice, time.Now(), store.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Promote(ctx, store.PromoteSpec{Channel: stable, Version: "1.1.0"}, alice, time.Now(), store.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	return s
}

func get(t testing.TB, h http.Handler, url string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", url, nil))
	body, _ := io.ReadAll(rec.Body)
	return rec.Code, string(body)
}

func TestPagesOfASeededLog(t *testing.T) {
	s := seeded(t)
	p, err := New(Config{Store: s, CacheFor: -1})
	if err != nil {
		t.Fatal(err)
	}
	rows := func(body string) []string {
		var out []string
		for _, part := range strings.Split(body, `<tr data-ref="`)[1:] {
			out = append(out, part[:strings.IndexByte(part, '"')])
		}
		return out
	}
	cases := []struct {
		url    string
		status int
		rows   []string // for the main page: the apps shown, in order
		want   []string
	}{
		{"/", 200, []string{"coop/prod/cloud.example.org", "coop/prod/git.example.org", "coop/staging/cloud.staging.example.org"}, []string{"1 drifted", "1 locked", "1 behind their channel"}},
		{"/?env=staging", 200, []string{"coop/staging/cloud.staging.example.org"}, nil},
		{"/?recipe=gitea", 200, []string{"coop/prod/git.example.org"}, nil},
		{"/?state=drift", 200, []string{"coop/prod/git.example.org"}, []string{"unrecorded-version"}},
		{"/?state=locked", 200, []string{"coop/prod/cloud.example.org"}, []string{"db migration"}},
		{"/?state=lagging", 200, []string{"coop/staging/cloud.staging.example.org"}, nil},
		{"/?channel=nextcloud/stable", 200, []string{"coop/staging/cloud.staging.example.org"}, nil},
		{"/?server=staging", 200, []string{"coop/staging/cloud.staging.example.org"}, nil},
		{"/?q=GIT", 200, []string{"coop/prod/git.example.org"}, nil},
		{"/?state=deployed&env=prod&changed=24h&sort=last", 200, []string{"coop/prod/cloud.example.org", "coop/prod/git.example.org"}, nil},
		{"/?q=nothing", 200, nil, []string{"No app matches this filter"}},
		{"/?changed=forever", 400, nil, []string{"changed=&#34;forever&#34;"}},
		{"/?sort=size", 400, nil, []string{"want name or last"}},
		{"/apps/git.example.org", 200, nil, []string{"unrecorded-version", "Swarm runs 1.9.0", "2.0.0"}},
		{"/apps/coop/staging/cloud.staging.example.org", 200, nil, []string{"nextcloud/stable → 1.1.0", "follow nextcloud/stable", "upgrade"}},
		{"/apps/cloud.example.org?n=1", 200, nil, []string{"the newest 1 shown", "show all"}},
		{"/apps/cloud.example.org?n=x", 400, nil, nil},
		{"/apps/nobody.example.org", 404, nil, []string{"nobody.example.org"}},
		{"/apps/Bad_Name", 400, nil, nil},
		{"/channels", 200, nil, []string{"nextcloud/stable", "1.1.0"}},
		{"/channels/nextcloud/stable", 200, nil, []string{"cloud.staging.example.org", "→ <b>1.1.0</b>"}},
		{"/channels/nextcloud/nope", 404, nil, nil},
		{"/channels/Bad_/x", 400, nil, nil},
		{"/plan", 200, nil, []string{"abra app upgrade --no-input cloud.staging.example.org 1.1.0", "1 to upgrade"}},
		{"/plan?channel=nextcloud/stable&wave_size=1", 200, nil, []string{"wave 1"}},
		{"/plan?wave_size=-1", 400, nil, nil},
		{"/changes", 200, nil, []string{"git.example.org", "db migration", "follow nextcloud/stable"}},
		{"/changes?changed=never", 400, nil, nil},
		{"/nowhere", 404, nil, []string{"There is no page at /nowhere"}},
	}
	for _, c := range cases {
		t.Run(c.url, func(t *testing.T) {
			status, body := get(t, p, c.url)
			if status != c.status {
				t.Fatalf("status %d, want %d: %s", status, c.status, body)
			}
			if strings.HasPrefix(c.url, "/?") || c.url == "/" {
				if got := rows(body); strings.Join(got, " ") != strings.Join(c.rows, " ") {
					t.Errorf("rows %v, want %v", got, c.rows)
				}
			}
			for _, w := range c.want {
				if !strings.Contains(body, w) {
					t.Errorf("missing %q", w)
				}
			}
		})
	}
}

// A page is rendered once per change for everyone who asks within
// CacheFor, and anew once the hub publishes.
func TestCache(t *testing.T) {
	s := seeded(t)
	live := NewLive()
	p, err := New(Config{Store: s, Live: live, CacheFor: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	_, before := get(t, p, "/?q=new")
	if !strings.Contains(before, "No app matches") {
		t.Fatal("premise: no app new.example.org")
	}
	ev, err := s.Append(context.Background(), &metav1.Event{Kind: metav1.Kind_KIND_DEPLOY, Outcome: metav1.Outcome_OUTCOME_SUCCEEDED, Version: "1", Address: &metav1.Address{App: "new.example.org"}}, alice, time.Now(), store.AppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, body := get(t, p, "/?q=new"); body != before {
		t.Fatal("served anew before anything was published")
	}
	live.Publish([]*metav1.Event{ev.Event})
	if _, body := get(t, p, "/?q=new"); !strings.Contains(body, "new.example.org") {
		t.Fatal("still the old page after a change was published")
	}
}

// A browser that takes gzip gets the page compressed, the same page.
func TestGzip(t *testing.T) {
	p, err := New(Config{Store: seeded(t)})
	if err != nil {
		t.Fatal(err)
	}
	_, plain := get(t, p, "/")
	for _, c := range []struct {
		accept string
		gz     bool
	}{{"gzip, deflate, br", true}, {"br;q=1.0, gzip;q=0.8", true}, {"gzip;q=0", false}, {"identity", false}, {"", false}} {
		r := httptest.NewRequest("GET", "/", nil)
		if c.accept != "" {
			r.Header.Set("Accept-Encoding", c.accept)
		}
		rec := httptest.NewRecorder()
		p.ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		if got := rec.Header().Get("Content-Encoding") == "gzip"; got != c.gz {
			t.Errorf("Accept-Encoding %q: gzip %v, want %v", c.accept, got, c.gz)
		}
		if c.gz {
			zr, err := gzip.NewReader(bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			if body, err = io.ReadAll(zr); err != nil {
				t.Fatal(err)
			}
		}
		if string(body) != plain {
			t.Errorf("Accept-Encoding %q: not the same page", c.accept)
		}
	}
}
