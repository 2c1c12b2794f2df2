package hub

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"git.coopcloud.tech/coop-cloud/meta/notify/notifytest"
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

// A renewal whose answer was lost (the server stored it, the hub never
// heard): the hub's next try finds its own hold under a revision it does
// not know. It must know the hold for its own and keep delivering, not
// wait for it to lapse as if another hub held it.
func TestWebhooksLeaseKnowsItsOwnHoldAfterALostAnswer(t *testing.T) {
	nc, err := nats.Connect(notifytest.Server(t).ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	kv, err := js.CreateKeyValue(ctx, leaseConfig(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	l := newLeader(kv, time.Hour)
	if !l.try(ctx) || !l.holds() {
		t.Fatal("the lease was not taken")
	}
	// The renewal the hub never heard the answer to.
	if _, err := kv.Update(ctx, webhooksKey, l.me, l.rev); err != nil {
		t.Fatal(err)
	}
	l.try(ctx)
	if !l.holds() {
		t.Error("the hub does not know its own hold: nobody delivers until it lapses")
	}
	// Another hub's hold is still not taken for its own.
	other := newLeader(kv, time.Hour)
	if other.try(ctx) || other.holds() {
		t.Error("another hub took the held lease")
	}
}
