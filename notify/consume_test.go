package notify

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/notify/notifytest"
)

// step is one answer of a scripted handler: its verdict, given after
// cancelling Consume's context when cancel is set.
type step struct {
	verdict Verdict
	cancel  bool
}

// call is one event reaching a handler: the index of the published
// message, the attempt, and at least how long after the call before it.
type call struct {
	msg     int
	attempt uint64
	after   time.Duration
}

// A consumer settles each event as its handler says, one at a time in
// stream order. Each case publishes messages ("bad" is not an event),
// consumes them with a scripted handler, and then checks what a second
// consumer on the same durable gets: nothing that was acknowledged,
// terminated or dropped comes again.
func TestConsume(t *testing.T) {
	tests := []struct {
		name   string
		msgs   []string
		script []step
		want   []call
		// stops means Consume returns without ctx being cancelled.
		stops bool
		// then is what the second consumer gets.
		then []call
	}{
		{
			name:   "an undecodable message is terminated and does not block the next",
			msgs:   []string{"bad", "e1"},
			script: []step{{Ack, true}},
			want:   []call{{msg: 1, attempt: 1}},
		},
		{
			name:   "a retry comes again after the delay, before the next event",
			msgs:   []string{"e0", "e1"},
			script: []step{{RetryAfter(400 * time.Millisecond), false}, {Ack, false}, {Ack, true}},
			want:   []call{{msg: 0, attempt: 1}, {msg: 0, attempt: 2, after: 400 * time.Millisecond}, {msg: 1, attempt: 1}},
		},
		{
			name:   "a retry at once comes straight back, counted",
			msgs:   []string{"e0"},
			script: []step{{RetryAfter(0), false}, {RetryAfter(0), false}, {Ack, true}},
			want:   []call{{msg: 0, attempt: 1}, {msg: 0, attempt: 2}, {msg: 0, attempt: 3}},
		},
		{
			name:   "stop returns and gives the event back",
			msgs:   []string{"e0", "e1"},
			script: []step{{Stop, false}},
			want:   []call{{msg: 0, attempt: 1}},
			stops:  true,
			then:   []call{{msg: 0, attempt: 2}, {msg: 1, attempt: 1}},
		},
		{
			name:   "an event handled while ctx is cancelled is acknowledged",
			msgs:   []string{"e0", "e1"},
			script: []step{{Ack, true}},
			want:   []call{{msg: 0, attempt: 1}},
			then:   []call{{msg: 1, attempt: 1}},
		},
		{
			name:   "drop terminates",
			msgs:   []string{"e0", "e1"},
			script: []step{{Drop, false}, {Ack, true}},
			want:   []call{{msg: 0, attempt: 1}, {msg: 1, attempt: 1}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			js := jetStream(t)
			ids := publish(t, js, tt.msgs)
			cfg := ConsumerConfig{Durable: "test", Description: "TestConsume", Filter: SubjectPrefix + ".>", AckWait: time.Second}

			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			var rec recorder
			err := consume(ctx, t, js, cfg, func(ev *metav1.Event, d Delivery) Verdict {
				i := rec.add(ev, d)
				if i >= len(tt.script) {
					t.Errorf("call %d beyond the script", i+1)
					cancel()
					return Ack
				}
				if tt.script[i].cancel {
					cancel()
				}
				return tt.script[i].verdict
			})
			if err != nil {
				t.Fatalf("Consume: %v", err)
			}
			if stopped := ctx.Err() == nil; stopped != tt.stops {
				t.Errorf("Consume returned on its own: %v, want %v", stopped, tt.stops)
			}
			rec.check(t, "consumer", ids, tt.want)

			// Long enough for an event left unacknowledged to come again
			// after AckWait.
			ctx2, cancel2 := context.WithTimeout(context.Background(), 2500*time.Millisecond)
			defer cancel2()
			var again recorder
			if err := consume(ctx2, t, js, cfg, func(ev *metav1.Event, d Delivery) Verdict {
				again.add(ev, d)
				return Ack
			}); err != nil {
				t.Fatalf("second Consume: %v", err)
			}
			again.check(t, "second consumer", ids, tt.then)
		})
	}
}

func jetStream(t *testing.T) jetstream.JetStream {
	t.Helper()
	return notifytest.JetStream(t, notifytest.Server(t).ClientURL())
}

// publish puts the messages on the stream in order and returns their
// event ids ("" for one that is not an event).
func publish(t *testing.T, js jetstream.JetStream, msgs []string) []string {
	t.Helper()
	ctx := context.Background()
	if _, err := EnsureStream(ctx, js, 0); err != nil {
		t.Fatal(err)
	}
	ids := make([]string, len(msgs))
	for i, m := range msgs {
		msg := nats.NewMsg(SubjectPrefix + ".coop.env.app.note")
		msg.Header.Set("Content-Type", "text/plain")
		msg.Data = []byte("not an event")
		if m != "bad" {
			ev := event(metav1.Kind_KIND_NOTE, "a.example.com")
			var err error
			if msg, err = Message(ev, "test", false); err != nil {
				t.Fatal(err)
			}
			ids[i] = ev.GetId()
		}
		if _, err := js.PublishMsg(ctx, msg); err != nil {
			t.Fatal(err)
		}
	}
	return ids
}

func consume(ctx context.Context, t *testing.T, js jetstream.JetStream, cfg ConsumerConfig, handle func(*metav1.Event, Delivery) Verdict) error {
	t.Helper()
	c, err := NewConsumer(ctx, js, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c.Consume(ctx, handle)
}

// recorder keeps the calls a handler got.
type recorder struct {
	mu    sync.Mutex
	ids   []string
	times []time.Time
	tries []uint64
}

// add records a call and returns its index.
func (r *recorder) add(ev *metav1.Event, d Delivery) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ids = append(r.ids, ev.GetId())
	r.times = append(r.times, time.Now())
	r.tries = append(r.tries, d.Attempt)
	return len(r.ids) - 1
}

func (r *recorder) check(t *testing.T, who string, ids []string, want []call) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	got := make([]string, len(r.ids))
	for i, id := range r.ids {
		got[i] = fmt.Sprintf("%s#%d", id, r.tries[i])
	}
	wanted := make([]string, len(want))
	for i, c := range want {
		wanted[i] = fmt.Sprintf("%s#%d", ids[c.msg], c.attempt)
	}
	if fmt.Sprint(got) != fmt.Sprint(wanted) {
		t.Fatalf("%s got %v, want %v", who, got, wanted)
	}
	for i, c := range want {
		if i > 0 && r.times[i].Sub(r.times[i-1]) < c.after {
			t.Errorf("%s: call %d came %v after the one before, want at least %v", who, i+1, r.times[i].Sub(r.times[i-1]), c.after)
		}
	}
}
