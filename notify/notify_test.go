package notify

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/notify/notifytest"
	"git.coopcloud.tech/coop-cloud/meta/projects"
	"git.coopcloud.tech/coop-cloud/meta/store/record"
)

func event(kind metav1.Kind, app string) *metav1.Event {
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	id := record.NewID(at)
	idTime, _ := record.IDTime(id)
	return &metav1.Event{
		Format: record.FormatVersion, Id: id, Time: timestamppb.New(idTime),
		Actor:   &metav1.Actor{Name: "Alice"},
		Address: &metav1.Address{Project: "coop", Env: "swarm.example.com", App: app},
		Kind:    kind, Outcome: metav1.Outcome_OUTCOME_SUCCEEDED, Version: "1.0.0",
	}
}

func TestSubject(t *testing.T) {
	tests := []struct {
		ev   *metav1.Event
		want string
	}{
		{event(metav1.Kind_KIND_DEPLOY, "matrix.example.com"), "meta.events.coop.swarm_example_com.matrix_example_com.deploy"},
		{event(metav1.Kind_KIND_SECRET_INSERT, "a-b.example.com"), "meta.events.coop.swarm_example_com.a-b_example_com.secret-insert"},
		{event(metav1.Kind(42), "x.org"), "meta.events.coop.swarm_example_com.x_org.unknown-42"},
	}
	for _, tt := range tests {
		got, err := Subject(tt.ev)
		if err != nil || got != tt.want {
			t.Errorf("Subject = %q, %v; want %q", got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "a b", "a*", "a>", "ü"} {
		if _, err := Token(bad); !errors.Is(err, ErrSubject) {
			t.Errorf("Token(%q) = %v, want ErrSubject", bad, err)
		}
	}
}

func TestMessageIsACloudEvent(t *testing.T) {
	ev := event(metav1.Kind_KIND_ROLLBACK, "matrix.example.com")
	for _, asJSON := range []bool{false, true} {
		msg, err := Message(ev, "ssh://git.example.org/coop/log.git", asJSON)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{
			"ce-specversion": "1.0",
			"ce-id":          ev.GetId(),
			"ce-source":      "ssh://git.example.org/coop/log.git",
			"ce-type":        "tech.coopcloud.meta.event.rollback",
			"ce-time":        "2026-11-23T10:00:00Z",
			"ce-subject":     "coop/swarm.example.com/matrix.example.com",
			"Nats-Msg-Id":    ev.GetId(),
		}
		for k, v := range want {
			if got := msg.Header.Get(k); got != v {
				t.Errorf("json=%v: header %s = %q, want %q", asJSON, k, got, v)
			}
		}
		back, err := Decode(msg)
		if err != nil || !proto.Equal(back, ev) {
			t.Fatalf("json=%v: decoded %v, %v", asJSON, back, err)
		}
	}
}

// Events reach the stream once however often they are published, and a
// follower can filter by subject.
func TestPublishToStream(t *testing.T) {
	srv := notifytest.Server(t)
	ctx := context.Background()
	p, err := Connect(ctx, Options{URL: srv.ClientURL(), Source: "test", ConnectTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	deploy := event(metav1.Kind_KIND_DEPLOY, "a.example.com")
	note := event(metav1.Kind_KIND_NOTE, "a.example.com")
	for _, ev := range []*metav1.Event{deploy, note, deploy} {
		if err := p.Publish(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	s, err := js.Stream(ctx, StreamName)
	if err != nil {
		t.Fatal(err)
	}
	info, _ := s.Info(ctx)
	if info.State.Msgs != 2 {
		t.Fatalf("stream holds %d messages, want 2 (the repeated deploy is a duplicate)", info.State.Msgs)
	}
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{"meta.events.*.*.*.deploy"}})
	if err != nil {
		t.Fatal(err)
	}
	msg, err := c.Next(jetstream.FetchMaxWait(5 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	back, err := Decode(&nats.Msg{Subject: msg.Subject(), Header: msg.Headers(), Data: msg.Data()})
	if err != nil || back.GetId() != deploy.GetId() {
		t.Fatalf("filtered consumer got %v, %v", back, err)
	}
	// A second Connect finds the stream it made.
	if p2, err := Connect(ctx, Options{URL: srv.ClientURL(), ConnectTimeout: time.Second}); err != nil {
		t.Fatal(err)
	} else {
		p2.Close()
	}
}

func TestConnectFailsFastWithoutAServer(t *testing.T) {
	_, err := Connect(context.Background(), Options{URL: "nats://127.0.0.1:1", ConnectTimeout: 200 * time.Millisecond})
	if err == nil {
		t.Fatal("connected to nothing")
	}
}

// A follower name is what NATS takes as a durable consumer's name and as a
// key: anything else is refused, with ErrName, before anything reaches
// NATS.
func TestFollowerNames(t *testing.T) {
	for name, ok := range map[string]bool{
		"ci": true, "watch-alice-laptop_2": true, strings.Repeat("a", 255): true,
		"": false, "a.b": false, "a b": false, "a*": false, "a>": false, "a/b": false, `a\b`: false,
		"a\tb": false, "a\x1bb": false, "é": false, strings.Repeat("a", 256): false,
	} {
		err := ValidName(name)
		if (err == nil) != ok || (err != nil && !errors.Is(err, ErrName)) {
			t.Errorf("ValidName(%q) = %v", name, err)
		}
	}
}

// A URL is printed without the credentials it may carry.
func TestDisplayURL(t *testing.T) {
	for in, want := range map[string]string{
		"nats://127.0.0.1:4222":                    "nats://127.0.0.1:4222",
		"nats://alice:s3cret@hub.example.com:4222": "nats://hub.example.com:4222",
		"nats://t0ken@hub.example.com":             "nats://hub.example.com",
		"tls://a:b@one:4222, nats://c@two:4222":    "tls://one:4222,nats://two:4222",
		"alice:pw@hub:4222":                        "hub:4222",
		"nats://u:p@w@hub:4222/path?x=@":           "nats://hub:4222/path?x=@",
		"":                                         "",
	} {
		if got := DisplayURL(in); got != want {
			t.Errorf("DisplayURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// A channel's promotion filter is the subject its promotions are published
// on, and no other channel's, and not its releases'.
func TestPromotionFilter(t *testing.T) {
	for _, ref := range []projects.ChannelRef{{Recipe: "nextcloud", Channel: "stable"}, {Recipe: "matrix-synapse", Channel: "beta_2"}} {
		filter, err := PromotionFilter(ref)
		if err != nil {
			t.Fatal(err)
		}
		a := ref.Address()
		promo := &metav1.Event{Id: "x", Kind: metav1.Kind_KIND_PROMOTE, Address: &metav1.Address{Project: a.Project, Env: a.Env, App: a.App}}
		if got, _ := Subject(promo); got != filter {
			t.Errorf("%s: filter %q, a promotion's subject %q", ref, filter, got)
		}
		rel := &metav1.Event{Id: "y", Kind: metav1.Kind_KIND_RELEASE, Address: &metav1.Address{Project: a.Project, Env: a.Env, App: "_releases"}}
		if got, _ := Subject(rel); got == filter {
			t.Errorf("%s: a release's subject is the promotions' filter", ref)
		}
	}
	if got, _ := PromotionFilter(projects.ChannelRef{Recipe: "nextcloud", Channel: "stable"}); got != "meta.events._recipes.nextcloud.stable.promote" {
		t.Errorf("nextcloud/stable: %q", got)
	}
}
