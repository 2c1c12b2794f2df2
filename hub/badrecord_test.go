package hub

import (
	"context"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
)

// One record that is not a valid event, committed by hand, does not stop
// the events after it from reaching followers: the hub publishes those,
// says once what it left out, and moves on (review F2).
func TestCatchUpGoesPastABadRecord(t *testing.T) {
	s := newLog(t)
	good := appendEv(t, s, metav1.Kind_KIND_DEPLOY, "a.example.com", "1.0.0")
	bad := "projects/coop/prod/a.example.com/2026-11/01JD0000000000000000000001.pb"
	full := filepath.Join(s.Root(), filepath.FromSlash(bad))
	os.MkdirAll(filepath.Dir(full), 0o755)
	os.WriteFile(full, []byte("not a record"), 0o644)
	for _, args := range [][]string{{"add", bad}, {"-c", "user.name=Mallory", "-c", "user.email=m@example.com", "commit", "-qm", "junk"}} {
		if out, err := exec.Command("git", append([]string{"-C", s.Root()}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	after := appendEv(t, s, metav1.Kind_KIND_DEPLOY, "b.example.com", "2.0.0")
	var logged []string
	h, err := New(context.Background(), Config{Store: s, NATSListen: "127.0.0.1:0", DataDir: t.TempDir(), HTTPListen: "127.0.0.1:0",
		Logf: func(format string, args ...any) { logged = append(logged, format) }})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if n, err := h.CatchUp(context.Background()); err != nil || n != 2 {
		t.Fatalf("catch-up published %d, %v; want the two good events", n, err)
	}
	if ids := streamIDs(t, h); len(ids) != 2 || ids[0] != good || ids[1] != after {
		t.Fatalf("stream %v, want %s then %s", ids, good, after)
	}
	if len(logged) != 1 || !strings.Contains(logged[0], "not published") {
		t.Fatalf("logged %q", logged)
	}
	if n, _ := h.CatchUp(context.Background()); n != 0 || len(logged) != 1 {
		t.Fatalf("a second catch-up published %d and logged %q", n, logged)
	}
	// The API says what it leaves out, and who committed it.
	srv := httptest.NewServer(NewHandler(s))
	defer srv.Close()
	var q []map[string]any
	if code := get(t, srv.URL+"/v1/quarantine", &q); code != 200 || len(q) != 1 || q[0]["author"] != "Mallory <m@example.com>" || q[0]["subject"] != "junk" {
		t.Fatalf("quarantine: %d %v", code, q)
	}
	var head map[string]any
	if code := get(t, srv.URL+"/v1/apps/a.example.com", &head); code != 200 || head["version"] != "1.0.0" {
		t.Fatalf("head: %d %v", code, head)
	}
	if problems, _ := head["quarantined"].([]any); len(problems) != 1 || problems[0].(map[string]any)["path"] != bad {
		t.Fatalf("head's quarantined: %v", head["quarantined"])
	}
}
