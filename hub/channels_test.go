package hub

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/hub/tokens"
	"git.coopcloud.tech/coop-cloud/meta/notify"
	"git.coopcloud.tech/coop-cloud/meta/projects"
	"git.coopcloud.tech/coop-cloud/meta/store"
)

var (
	ncStable  = projects.ChannelRef{Recipe: "nextcloud", Channel: "stable"}
	ncStaging = projects.ChannelRef{Recipe: "nextcloud", Channel: "staging"}
)

// release records versions of recipe, returning their event ids.
func release(t *testing.T, s *store.Store, recipe string, versions ...string) []string {
	t.Helper()
	var specs []store.ReleaseSpec
	for _, v := range versions {
		specs = append(specs, store.ReleaseSpec{Recipe: recipe, Version: v, Commit: strings.Repeat("c", 40),
			Images: nil, Notes: "release " + v})
	}
	out, err := s.AddReleases(context.Background(), specs, false, alice, time.Now(), store.AppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, ev := range out.Events {
		ids = append(ids, ev.GetId())
	}
	return ids
}

func promote(t *testing.T, s *store.Store, ref projects.ChannelRef, version string) string {
	t.Helper()
	out, err := s.Promote(context.Background(), store.PromoteSpec{Channel: ref, Version: version, Message: "go"}, alice, time.Now(), store.AppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return out.Event.GetId()
}

// gitCommitFile commits data at path of s's clone by hand, as someone with
// write access and no meta would.
func gitCommitFile(t *testing.T, s *store.Store, path string, data []byte) {
	t.Helper()
	full := filepath.Join(s.Root(), filepath.FromSlash(path))
	os.MkdirAll(filepath.Dir(full), 0o755)
	os.WriteFile(full, data, 0o644)
	for _, args := range [][]string{{"add", path}, {"-c", "user.name=Mallory", "-c", "user.email=m@example.com", "commit", "-qm", "junk"}} {
		if out, err := exec.Command("git", append([]string{"-C", s.Root()}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
}

// The hub serves a recipe's releases, each with the channels at it, and
// its channels with their history; a recipe's logs are never apps.
func TestReleasesAndChannelsAPI(t *testing.T) {
	s := newLog(t)
	appendEv(t, s, metav1.Kind_KIND_DEPLOY, "cloud.example.com", "1.0.0+29.0.0")
	release(t, s, "nextcloud", "1.0.0+29.0.0", "1.1.0+29.0.1", "1.2.0+29.0.2")
	release(t, s, "matrix-synapse", "3.0.0+v1.100.0")
	promote(t, s, ncStable, "1.0.0+29.0.0")
	promote(t, s, ncStaging, "1.1.0+29.0.1")
	last := promote(t, s, ncStable, "1.1.0+29.0.1")
	srv := httptest.NewServer(NewHandler(s))
	defer srv.Close()

	var rels []map[string]any
	if code := get(t, srv.URL+"/v1/releases", &rels); code != 200 || len(rels) != 4 {
		t.Fatalf("releases: %d %v", code, rels)
	}
	// Recipes by name, each's releases as recorded.
	if rels[0]["recipe"] != "matrix-synapse" || rels[1]["recipe"] != "nextcloud" || rels[1]["version"] != "1.0.0+29.0.0" {
		t.Fatalf("releases in the wrong order: %v", rels)
	}
	for _, key := range []string{"recipe", "version", "commit", "images", "notes", "recorded", "also_recorded_by", "channels"} {
		if _, ok := rels[1][key]; !ok {
			t.Errorf("a release has no %q: %v", key, rels[1])
		}
	}
	if ch, ok := rels[1]["channels"].([]any); !ok || len(ch) != 0 {
		t.Errorf("a release no channel points at: channels %v, want []", rels[1]["channels"])
	}
	if ch, _ := rels[2]["channels"].([]any); len(ch) != 2 || ch[0] != "stable" || ch[1] != "staging" {
		t.Errorf("1.1.0's channels %v, want [stable staging]", rels[2]["channels"])
	}
	if im, ok := rels[2]["images"].([]any); !ok || len(im) != 0 {
		t.Errorf("images %v, want []", rels[2]["images"])
	}
	if rec, _ := rels[1]["recorded"].(map[string]any); rec["operator"] != "Alice" || rels[1]["commit"] != strings.Repeat("c", 40) || rels[1]["notes"] != "release 1.0.0+29.0.0" {
		t.Errorf("release %v", rels[1])
	}
	var one []map[string]any
	if code := get(t, srv.URL+"/v1/releases/nextcloud", &one); code != 200 || len(one) != 3 {
		t.Fatalf("nextcloud's releases: %d %v", code, one)
	}
	if code := get(t, srv.URL+"/v1/releases?recipe=matrix-synapse", &one); code != 200 || len(one) != 1 || one[0]["version"] != "3.0.0+v1.100.0" {
		t.Fatalf("?recipe=: %d %v", code, one)
	}

	var channels []map[string]any
	if code := get(t, srv.URL+"/v1/channels", &channels); code != 200 || len(channels) != 2 || channels[0]["channel"] != "stable" || channels[1]["channel"] != "staging" {
		t.Fatalf("channels: %d %v", code, channels)
	}
	var c map[string]any
	if code := get(t, srv.URL+"/v1/channels/nextcloud/stable", &c); code != 200 || c["version"] != "1.1.0+29.0.1" || c["recipe"] != "nextcloud" {
		t.Fatalf("stable: %d %v", code, c)
	}
	if h, _ := c["history"].([]any); len(h) != 2 || h[1].(map[string]any)["event_id"] != last || h[1].(map[string]any)["previous"] != "1.0.0+29.0.0" {
		t.Fatalf("stable's history: %v", c["history"])
	}
	if f, ok := c["forks"].([]any); !ok || len(f) != 0 || c["forked"] != false {
		t.Fatalf("forks %v, forked %v", c["forks"], c["forked"])
	}
	var none []map[string]any
	if code := get(t, srv.URL+"/v1/channels?recipe=matrix-synapse", &none); code != 200 || none == nil || len(none) != 0 {
		t.Fatalf("a recipe with no channels: %d %v, want []", code, none)
	}

	// A recipe's logs are no app's.
	var heads []map[string]any
	if code := get(t, srv.URL+"/v1/apps", &heads); code != 200 || len(heads) != 1 || heads[0]["domain"] != "cloud.example.com" {
		t.Fatalf("apps: %d %v", code, heads)
	}

	for url, want := range map[string]int{
		"/v1/releases/wordpress":                 404,
		"/v1/releases?recipe=wordpress":          404,
		"/v1/releases/Next_Cloud":                400,
		"/v1/releases/next.cloud":                400,
		"/v1/releases/_recipes":                  400,
		"/v1/releases/next%00cloud":              400,
		"/v1/releases/next%2Fcloud":              400,
		"/v1/releases?recipe=":                   400,
		"/v1/releases/a/b":                       404, // no such endpoint
		"/v1/channels/nextcloud/beta":            404,
		"/v1/channels/wordpress/stable":          404,
		"/v1/channels/nextcloud/_releases":       400,
		"/v1/channels/nextcloud/st%0Able":        400,
		"/v1/channels/nextcloud/st.able":         400,
		"/v1/channels/Nextcloud/stable":          400,
		"/v1/channels/nextcloud/stable%2Fx":      400,
		"/v1/channels?recipe=wordpress":          404,
		"/v1/channels?recipe=a%20b":              400,
		"/v1/apps/stable":                        404,
		"/v1/apps/_recipes%2Fnextcloud%2Fstable": 400,
	} {
		var e map[string]string
		if code := get(t, srv.URL+url, &e); code != want || e["error"] == "" {
			t.Errorf("%s: %d %v, want %d with an error", url, code, e, want)
		}
	}
}

// A record of a recipe's log that is not a valid event, committed by hand,
// breaks neither the releases nor the channels: they are served without it.
func TestABadRecordOfARecipeLogIsLeftOut(t *testing.T) {
	s := newLog(t)
	release(t, s, "nextcloud", "1.0.0+29.0.0")
	promote(t, s, ncStable, "1.0.0+29.0.0")
	gitCommitFile(t, s, "projects/_recipes/nextcloud/_releases/2026-11/01JD0000000000000000000001.pb", []byte("not a record"))
	gitCommitFile(t, s, "projects/_recipes/nextcloud/stable/2026-11/01JD0000000000000000000002.pb", []byte("not a record either"))
	// A channel whose only record is junk.
	gitCommitFile(t, s, "projects/_recipes/nextcloud/beta/2026-11/01JD0000000000000000000003.pb", []byte("junk"))
	srv := httptest.NewServer(NewHandler(s))
	defer srv.Close()
	var rels []map[string]any
	if code := get(t, srv.URL+"/v1/releases/nextcloud", &rels); code != 200 || len(rels) != 1 || rels[0]["version"] != "1.0.0+29.0.0" {
		t.Fatalf("releases: %d %v", code, rels)
	}
	var channels []map[string]any
	if code := get(t, srv.URL+"/v1/channels", &channels); code != 200 || len(channels) != 1 || channels[0]["version"] != "1.0.0+29.0.0" {
		t.Fatalf("channels: %d %v", code, channels)
	}
	var e map[string]any
	if code := get(t, srv.URL+"/v1/channels/nextcloud/beta", &e); code != 404 {
		t.Fatalf("a channel of nothing but junk: %d %v", code, e)
	}
	var plan map[string]any
	if code := get(t, srv.URL+"/v1/plan", &plan); code != 200 {
		t.Fatalf("plan: %d %v", code, plan)
	}
	var q []map[string]any
	if code := get(t, srv.URL+"/v1/quarantine", &q); code != 200 || len(q) != 3 {
		t.Fatalf("quarantine: %d %v, want the three junk records", code, q)
	}
	for _, c := range q {
		problems, _ := c["problems"].([]any)
		if len(problems) != 1 || !strings.HasPrefix(problems[0].(map[string]any)["path"].(string), "projects/_recipes/nextcloud/") {
			t.Errorf("quarantined %v", c)
		}
	}
}

// /v1/plan is the planner's answer for every following app, or for one
// channel's; a channel that is not recipe/channel is refused.
func TestPlanAPI(t *testing.T) {
	s := newLog(t)
	ctx := context.Background()
	release(t, s, "nextcloud", "1.0.0+29.0.0", "1.1.0+29.0.1")
	appendEv(t, s, metav1.Kind_KIND_DEPLOY, "a.example.com", "1.0.0+29.0.0")
	appendEv(t, s, metav1.Kind_KIND_DEPLOY, "b.example.com", "1.1.0+29.0.1")
	appendEv(t, s, metav1.Kind_KIND_DEPLOY, "c.example.com", "1.0.0+29.0.0")
	promote(t, s, ncStable, "1.1.0+29.0.1")
	for domain, ref := range map[string]projects.ChannelRef{"a.example.com": ncStable, "b.example.com": ncStable, "c.example.com": ncStaging} {
		if _, err := s.Follow(ctx, domain, ref, "", alice, time.Now(), store.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(NewHandler(s))
	defer srv.Close()
	var p struct {
		Apps []struct {
			Domain, Action string
			Command        []string
		}
		Counts map[string]int
		Waves  []any
	}
	if code := get(t, srv.URL+"/v1/plan", &p); code != 200 || len(p.Apps) != 3 || p.Counts["upgrade"] != 1 || p.Counts["up_to_date"] != 1 || p.Counts["blocked"] != 1 {
		t.Fatalf("plan: %d %+v", code, p)
	}
	if code := get(t, srv.URL+"/v1/plan?channel=nextcloud/stable", &p); code != 200 || len(p.Apps) != 2 || p.Apps[0].Domain != "a.example.com" || p.Apps[0].Action != "upgrade" || len(p.Waves) != 1 {
		t.Fatalf("stable's plan: %d %+v", code, p)
	}
	if !strings.Contains(strings.Join(p.Apps[0].Command, " "), "1.1.0+29.0.1") {
		t.Fatalf("upgrade command %q", p.Apps[0].Command)
	}
	for url, want := range map[string]int{
		"/v1/plan?channel=nextcloud":         400,
		"/v1/plan?channel=nextcloud/st.able": 400,
		"/v1/plan?channel=../etc":            400,
		"/v1/plan?channel=":                  400,
		"/v1/plan?wave_size=-1":              400,
		"/v1/plan?wave_size=x":               400,
	} {
		var e map[string]string
		if code := get(t, srv.URL+url, &e); code != want || e["error"] == "" {
			t.Errorf("%s: %d %v, want %d with an error", url, code, e, want)
		}
	}
}

// hook is a webhook receiver that keeps every body it got.
type hook struct {
	mu     sync.Mutex
	bodies []map[string]any
}

func (k *hook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	data, _ := io.ReadAll(r.Body)
	var v map[string]any
	json.Unmarshal(data, &v)
	k.mu.Lock()
	k.bodies = append(k.bodies, v)
	k.mu.Unlock()
}

func (k *hook) got() []map[string]any {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]map[string]any(nil), k.bodies...)
}

// Releases and promotions reach followers like every event: on NATS, on
// the subject of their log (meta.events._recipes.<recipe>.<log>.<kind>),
// ce-subject the log's address, and to the webhooks.
func TestRecipeEventsArePublished(t *testing.T) {
	s := newLog(t)
	k := &hook{}
	srv := httptest.NewServer(k)
	defer srv.Close()
	h, stop := runHub(t, Config{Store: s, NATSListen: "127.0.0.1:0", DataDir: t.TempDir(), HTTPListen: "127.0.0.1:0", Poll: 50 * time.Millisecond,
		Webhooks: []Webhook{{Name: "dash", URL: srv.URL, Secret: newSecret(t)}}})
	defer stop()
	time.Sleep(200 * time.Millisecond) // the endpoint starts with new events
	rel := release(t, s, "nextcloud", "1.0.0+29.0.0")[0]
	pro := promote(t, s, ncStable, "1.0.0+29.0.0")
	h.Wake()
	waitFor(t, "two deliveries", func() bool { return len(k.got()) == 2 })

	nc, err := connectAs(t, h, h.HubSeed())
	if err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(nc)
	str, err := js.Stream(context.Background(), notify.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][2]string{
		rel: {"meta.events._recipes.nextcloud._releases.release", "_recipes/nextcloud/_releases"},
		pro: {"meta.events._recipes.nextcloud.stable.promote", "_recipes/nextcloud/stable"},
	}
	seen := 0
	for seq := uint64(1); ; seq++ {
		m, err := str.GetMsg(context.Background(), seq)
		if err != nil {
			break
		}
		id := m.Header.Get("ce-id")
		w, ok := want[id]
		if !ok {
			continue // meta.yaml's move has no event; anything else is not ours
		}
		seen++
		if m.Subject != w[0] || m.Header.Get("ce-subject") != w[1] || m.Header.Get("ce-type") == "" {
			t.Errorf("event %s on %s, ce-subject %q, ce-type %q; want %v", id, m.Subject, m.Header.Get("ce-subject"), m.Header.Get("ce-type"), w)
		}
	}
	if seen != 2 {
		t.Fatalf("%d of the 2 recipe events on the stream", seen)
	}
	got := k.got()
	if got[0]["id"] != rel || got[0]["kind"] != "release" || got[0]["project"] != "_recipes" || got[0]["env"] != "nextcloud" || got[0]["domain"] != "_releases" || got[0]["recipe"] != "nextcloud" {
		t.Errorf("the release's webhook: %v", got[0])
	}
	if got[1]["id"] != pro || got[1]["kind"] != "promote" || got[1]["channel"] != "stable" || got[1]["version"] != "1.0.0+29.0.0" || got[1]["recipe"] != "nextcloud" {
		t.Errorf("the promotion's webhook: %v", got[1])
	}
}

// The recipes' endpoints take the API's tokens like every other /v1 route.
func TestRecipeEndpointsNeedAToken(t *testing.T) {
	s := newLog(t)
	release(t, s, "nextcloud", "1.0.0+29.0.0")
	promote(t, s, ncStable, "1.0.0+29.0.0")
	path := filepath.Join(t.TempDir(), "tokens.json")
	h := serveHub(t, Config{Store: s, TokensFile: path})
	base := "http://" + h.HTTPAddr()
	ci, err := tokens.Create(path, "ci", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/v1/releases", "/v1/releases/nextcloud", "/v1/channels", "/v1/channels/nextcloud/stable", "/v1/plan", "/v1/plan?channel=nextcloud/stable"} {
		refused(t, p+" without a token", ask(t, http.DefaultClient, "GET", base+p, nil), "")
		if a := ask(t, http.DefaultClient, "GET", base+p, bearerHeader(ci)); a.status != 200 {
			t.Errorf("%s with a token: %d %s", p, a.status, a.body)
		}
	}
}
