package notify

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/notify/notifytest"
)

// A consumer made now starts where its config says; one that exists
// resumes where it was whatever the config says, the server refusing to
// change a start (which a CreateOrUpdate would try).
func TestNewConsumerStarts(t *testing.T) {
	js := jetStream(t)
	old := publish(t, js, []string{"e0", "e1"})
	time.Sleep(50 * time.Millisecond)
	cut := time.Now()
	time.Sleep(50 * time.Millisecond)
	mid := publish(t, js, []string{"e2"})
	tests := []struct {
		name string
		cfg  ConsumerConfig
		want []string // before the live event
	}{
		{"all", ConsumerConfig{}, append(append([]string{}, old...), mid...)},
		{"new", ConsumerConfig{New: true}, nil},
		{"since", ConsumerConfig{Since: cut}, mid},
		{"since wins over new", ConsumerConfig{Since: cut, New: true}, mid},
		{"since before the stream", ConsumerConfig{Since: cut.Add(-time.Hour)}, append(append([]string{}, old...), mid...)},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var consumers []*Consumer
	for _, tt := range tests {
		tt.cfg.Durable, tt.cfg.Filter = strings.ReplaceAll(tt.name, " ", "-"), SubjectPrefix+".>"
		c, err := NewConsumer(ctx, js, tt.cfg)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		consumers = append(consumers, c)
	}
	live := publish(t, js, []string{"e3"})
	for i, tt := range tests {
		want := append(append([]string{}, tt.want...), live...)
		if got := take(t, consumers[i], len(want)); strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("%s: got %v, want %v", tt.name, got, want)
		}
	}
	// Made again with another start (and another filter), each resumes.
	more := publish(t, js, []string{"e4"})
	for _, tt := range tests {
		cfg := ConsumerConfig{Durable: strings.ReplaceAll(tt.name, " ", "-"), Filter: SubjectPrefix + ".coop.>", New: !tt.cfg.New}
		c, err := NewConsumer(ctx, js, cfg)
		if err != nil {
			t.Fatalf("%s made again: %v", tt.name, err)
		}
		if got := take(t, c, 1); got[0] != more[0] {
			t.Errorf("%s made again: got %v, want %v", tt.name, got, more)
		}
	}
}

// take consumes n events and returns their ids.
func take(t *testing.T, c *Consumer, n int) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var got []string
	if err := c.Consume(ctx, func(ev *metav1.Event, _ Delivery) Verdict {
		if got = append(got, ev.GetId()); len(got) == n {
			cancel()
		}
		return Ack
	}); err != nil {
		t.Fatal(err)
	}
	return got
}

// The pause after each failed attempt doubles from Backoff, capped at
// MaxBackoff, or at Backoff when that is longer.
func TestFollowBackoff(t *testing.T) {
	tests := []struct {
		backoff time.Duration
		attempt uint64
		want    time.Duration
	}{
		{0, 1, time.Second},
		{0, 2, 2 * time.Second},
		{200 * time.Millisecond, 1, 200 * time.Millisecond},
		{200 * time.Millisecond, 3, 800 * time.Millisecond},
		{time.Second, 9, 256 * time.Second},
		{time.Second, 10, MaxBackoff},
		{time.Second, 1 << 40, MaxBackoff},
		{time.Hour, 1, time.Hour},
		{time.Hour, 5, time.Hour},
	}
	for _, tt := range tests {
		f := &follower{o: FollowOptions{Backoff: tt.backoff}}
		if got := f.backoff(tt.attempt); got != tt.want {
			t.Errorf("backoff %v, attempt %d: %v, want %v", tt.backoff, tt.attempt, got, tt.want)
		}
	}
}

// A second Follow under a held name fails at once with an *InUseError that
// says who holds it, and so does one whose name is held by something meta
// did not write; once the holder stops, the name is free.
func TestFollowHoldsItsName(t *testing.T) {
	srv := notifytest.Server(t)
	js := notifytest.JetStream(t, srv.ClientURL())
	o := FollowOptions{Options: Options{URL: srv.ClientURL(), ConnectTimeout: time.Second}, Name: "ci", Filter: SubjectPrefix + ".>"}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	var firstErr error
	go func() {
		defer wg.Done()
		firstErr = Follow(ctx, o, func(*metav1.Event) error { return nil })
	}()
	waitConsumer(t, js, "ci")

	start := time.Now()
	err := Follow(context.Background(), o, func(*metav1.Event) error { return nil })
	var inUse *InUseError
	if !errors.As(err, &inUse) || !errors.Is(err, ErrNameInUse) || inUse.Name != "ci" || inUse.Holder.PID == 0 || inUse.Holder.Host == "" {
		t.Fatalf("second Follow: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the refusal took %v", d)
	}

	cancel()
	wg.Wait()
	if firstErr != nil {
		t.Fatalf("first Follow: %v", firstErr)
	}
	// Free now; then held by a value meta did not write.
	kv, err := leases(context.Background(), js)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Create(context.Background(), "ci", []byte("not json")); err != nil {
		t.Fatalf("the name was not let go of: %v", err)
	}
	err = Follow(context.Background(), o, func(*metav1.Event) error { return nil })
	if !errors.As(err, &inUse) || inUse.Holder != (Holder{}) || !strings.Contains(err.Error(), `"ci" is in use by another meta watch:`) {
		t.Fatalf("Follow under a forged hold: %v", err)
	}
}

func waitConsumer(t *testing.T, js jetstream.JetStream, name string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := js.Consumer(context.Background(), StreamName, name); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no consumer %s", name)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A handler that fails is retried, the events behind it waiting, until the
// MaxAttempts-th attempt parks it; a Fatal error stops Follow with the
// event given back, for the next follower to get first.
func TestFollowRetriesParksAndStops(t *testing.T) {
	srv := notifytest.Server(t)
	js := notifytest.JetStream(t, srv.ClientURL())
	ids := publish(t, js, []string{"e0", "e1", "e2"})
	o := FollowOptions{Options: Options{URL: srv.ClientURL(), ConnectTimeout: time.Second}, Name: "hook", Filter: SubjectPrefix + ".>",
		FromStart: true, MaxAttempts: 2, Backoff: 50 * time.Millisecond}
	var mu sync.Mutex
	var lines, got []string
	o.Logf = func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		lines = append(lines, format)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := Follow(ctx, o, func(ev *metav1.Event) error {
		got = append(got, ev.GetId())
		switch ev.GetId() {
		case ids[0]:
			return errors.New("down")
		case ids[2]:
			return Fatal(errors.New("stdout is gone"))
		}
		return nil
	})
	if err == nil || err.Error() != "stdout is gone" {
		t.Fatalf("Follow = %v, want the fatal error", err)
	}
	if want := []string{ids[0], ids[0], ids[1], ids[2]}; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("handled %v, want %v", got, want)
	}
	if len(lines) != 2 || !strings.Contains(lines[1], "parked after") {
		t.Fatalf("reported %q", lines)
	}
	parked, err := ListParked(context.Background(), o.Options, "hook")
	if err != nil || len(parked) != 1 || parked[0].EventID != ids[0] || parked[0].Attempts != 2 || parked[0].Error != "down" || parked[0].Sequence != 1 {
		t.Fatalf("ListParked = %+v, %v", parked, err)
	}
	// The event Fatal gave back comes first to the next follower, which
	// holds the name (the first let go of it).
	got = nil
	err = Follow(ctx, o, func(ev *metav1.Event) error {
		got = append(got, ev.GetId())
		cancel()
		return nil
	})
	if err != nil || len(got) != 1 || got[0] != ids[2] {
		t.Fatalf("next Follow = %v, handled %v, want %s", err, got, ids[2])
	}
}

// A parked record meta did not write is reported, naming its key, not
// passed off as a parked event.
func TestListParkedRefusesForgedRecords(t *testing.T) {
	srv := notifytest.Server(t)
	js := notifytest.JetStream(t, srv.ClientURL())
	o := Options{URL: srv.ClientURL(), ConnectTimeout: time.Second}
	if got, err := ListParked(context.Background(), o, "hook"); err != nil || got == nil || len(got) != 0 {
		t.Fatalf("ListParked with no bucket = %v, %v; want an empty list", got, err)
	}
	kv, err := js.CreateOrUpdateKeyValue(context.Background(), parkedConfig())
	if err != nil {
		t.Fatal(err)
	}
	for key, value := range map[string]string{
		"hook.1":  "not json",
		"hook.2":  `{"follower":"other","event_id":"x"}`,
		"other.3": `{"follower":"other","event_id":"y"}`,
	} {
		kv.PutString(context.Background(), key, value)
		_, err := ListParked(context.Background(), o, "hook")
		forged := strings.HasPrefix(key, "hook.")
		if forged && (err == nil || !strings.Contains(err.Error(), key+" is not a parked event meta wrote")) || !forged && err != nil {
			t.Errorf("with %s = %s: %v", key, value, err)
		}
		kv.Purge(context.Background(), key)
	}
	if _, err := ListParked(context.Background(), o, "a.b"); !errors.Is(err, ErrName) {
		t.Errorf("ListParked(a.b) = %v", err)
	}
}
