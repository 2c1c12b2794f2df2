package hub

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"git.coopcloud.tech/coop-cloud/meta/store"
)

// The API shows a lease only while it holds, as `meta head` does (bug C):
// a lock past its expiry reads as null.
func TestAPIShowsOnlyLeasesInForce(t *testing.T) {
	s := newLog(t)
	appendEv(t, s, 1, "a.example.com", "1.0.0")
	appendEv(t, s, 1, "b.example.com", "1.0.0")
	ctx := context.Background()
	// a's lease is for an hour, b's for a day; the API is asked two hours
	// on, by the store's clock.
	if _, err := s.Lock(ctx, "a.example.com", alice, time.Now(), time.Hour, "quick fix", store.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Lock(ctx, "b.example.com", alice, time.Now(), 24*time.Hour, "upgrading", store.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	s.Clock = func() time.Time { return time.Now().Add(2 * time.Hour) }
	srv := httptest.NewServer(NewHandler(s))
	defer srv.Close()
	var head map[string]any
	if get(t, srv.URL+"/v1/apps/a.example.com", &head); head["lock"] != nil {
		t.Errorf("a: expired lease shown: %v", head["lock"])
	}
	if get(t, srv.URL+"/v1/apps/b.example.com", &head); head["lock"] == nil {
		t.Errorf("b: lease in force not shown")
	}
	var heads []map[string]any
	get(t, srv.URL+"/v1/apps", &heads)
	if len(heads) != 2 || heads[0]["lock"] != nil || heads[1]["lock"] == nil {
		t.Errorf("apps: locks %v and %v, want null and b's", heads[0]["lock"], heads[1]["lock"])
	}
}
