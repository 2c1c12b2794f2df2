package notify

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
)

// Verdict is what a consumer's handler says should become of the event it
// was given. The zero Verdict is Ack.
type Verdict struct {
	action action
	delay  time.Duration
}

type action int

const (
	ack action = iota
	drop
	stop
	retry
)

// The verdicts a handler can give besides RetryAfter.
var (
	// Ack: the event is handled; the next one comes.
	Ack = Verdict{action: ack}
	// Drop: the event can never be handled; it is terminated, never to
	// come again, so that it does not hold up the ones behind it.
	Drop = Verdict{action: drop}
	// Stop: the event is not handled and this consumer stops. The event
	// is given back at once, so whoever consumes the durable next gets it
	// first.
	Stop = Verdict{action: stop}
)

// RetryAfter says the event is not handled yet: it comes again after d
// (at once when d is zero), and the events behind it wait for it.
func RetryAfter(d time.Duration) Verdict { return Verdict{action: retry, delay: d} }

// Delivery says how an event reached a handler.
type Delivery struct {
	// Attempt counts the deliveries of this event to this durable: 1 the
	// first time, 2 after one retry, and so on. A handler can base a
	// backoff on it.
	Attempt uint64
	// Sequence is the event's message's place in the stream.
	Sequence uint64
}

// ConsumerConfig names a durable consumer of the events stream and says
// where it starts.
type ConsumerConfig struct {
	// Durable names the consumer: whoever consumes under the same name
	// resumes where the last one stopped.
	Durable string
	// Description is shown in the server's consumer listings.
	Description string
	// Filter is a subject filter (see FilterSubject); empty takes every
	// event on the stream.
	Filter string
	// New starts a consumer created now with the events published after
	// it, rather than with the first event the stream keeps; Since, when
	// set, with the first event published at or after it. A consumer that
	// exists resumes where it was whatever they say.
	New   bool
	Since time.Time
	// AckWait is how long the server waits for a verdict on an event
	// before it gives it out again; zero is the server's default (30s).
	// It should outlast the longest a handler may take.
	AckWait time.Duration
}

// Consumer is a durable consumer of the events stream that hands events
// to a handler one at a time, in stream order. It is the one place where
// events are decoded, acknowledged, retried and dropped for followers.
// (The hub's webhook deliveries do not consume the stream: they are fed
// from git, see hub/webhooks.go.)
type Consumer struct {
	durable string
	c       jetstream.Consumer
}

// NewConsumer makes sure the events stream exists and creates the durable
// consumer c describes, or updates the one that exists (its filter, its
// AckWait), keeping where it is.
func NewConsumer(ctx context.Context, js jetstream.JetStream, c ConsumerConfig) (*Consumer, error) {
	s, err := EnsureStream(ctx, js, 0) // a follower raises nothing
	if err != nil {
		return nil, err
	}
	cfg := jetstream.ConsumerConfig{
		Durable:       c.Durable,
		Description:   c.Description,
		FilterSubject: c.Filter,
		AckPolicy:     jetstream.AckExplicitPolicy,
		// One at a time: the next event waits for this one's verdict, so
		// a handler sees events in order even when it fails and retries.
		MaxAckPending: 1,
		AckWait:       c.AckWait,
	}
	// Where a consumer starts is fixed when it is made (the server refuses
	// to change it), so one that exists keeps its own start: it resumes,
	// whatever start this caller would give a new one. A second try covers
	// a consumer made by someone else between the look-up and the create.
	for try := 0; ; try++ {
		existing, err := s.Consumer(ctx, c.Durable)
		var jc jetstream.Consumer
		switch {
		case err == nil:
			was := existing.CachedInfo().Config
			cfg.DeliverPolicy, cfg.OptStartSeq, cfg.OptStartTime = was.DeliverPolicy, was.OptStartSeq, was.OptStartTime
			jc, err = s.UpdateConsumer(ctx, cfg)
		case errors.Is(err, jetstream.ErrConsumerNotFound):
			cfg.DeliverPolicy, cfg.OptStartTime = c.start()
			jc, err = s.CreateConsumer(ctx, cfg)
			if errors.Is(err, jetstream.ErrConsumerExists) && try == 0 {
				continue
			}
		}
		if err != nil {
			return nil, fmt.Errorf("consumer %s: %w", c.Durable, err)
		}
		return &Consumer{durable: c.Durable, c: jc}, nil
	}
}

// start is where a consumer made now begins.
func (c ConsumerConfig) start() (jetstream.DeliverPolicy, *time.Time) {
	switch {
	case !c.Since.IsZero():
		t := c.Since.UTC()
		return jetstream.DeliverByStartTimePolicy, &t
	case c.New:
		return jetstream.DeliverNewPolicy, nil
	}
	return jetstream.DeliverAllPolicy, nil
}

// ackBudget bounds how long a consumer that is stopping waits for the
// server to confirm its last acknowledgement.
const ackBudget = 5 * time.Second

// fetchWait is how long one fetch waits for an event, and so how soon a
// consumer waiting for events notices that ctx ended.
const fetchWait = time.Second

// Consume calls handle with each event, one at a time in stream order,
// and does what its verdict says, until ctx ends (nil), handle says Stop
// (nil), or fetching or acknowledging fails (an error; the consumer can be
// consumed again). A message that is not an event is terminated without
// reaching handle. ctx is not handed to handle: an event being handled
// when ctx ends is handled to the end and its verdict carried out, and
// only then does Consume return.
func (c *Consumer) Consume(ctx context.Context, handle func(*metav1.Event, Delivery) Verdict) error {
	for ctx.Err() == nil {
		batch, err := c.c.Fetch(1, jetstream.FetchMaxWait(fetchWait))
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("consumer %s: fetch: %w", c.durable, err)
		}
		for msg := range batch.Messages() {
			done, err := c.handle(ctx, msg, handle)
			if done || err != nil {
				return err
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && ctx.Err() == nil {
			return fmt.Errorf("consumer %s: fetch: %w", c.durable, err)
		}
	}
	return nil
}

// handle gives one message to handle and carries out the verdict; done
// means handle said Stop. Errors of Nak and Term are not reported: a
// message they failed to settle comes again after AckWait and is settled
// then, and a lost connection shows at the next fetch.
func (c *Consumer) handle(ctx context.Context, msg jetstream.Msg, handle func(*metav1.Event, Delivery) Verdict) (done bool, err error) {
	ev, err := Decode(&nats.Msg{Subject: msg.Subject(), Header: msg.Headers(), Data: msg.Data()})
	if err != nil {
		msg.Term() // never decodable: do not block the stream on it
		return false, nil
	}
	d := Delivery{Attempt: 1}
	if md, err := msg.Metadata(); err == nil {
		d.Attempt, d.Sequence = md.NumDelivered, md.Sequence.Stream
	}
	v := handle(ev, d)
	switch v.action {
	case drop:
		msg.Term()
	case stop:
		msg.Nak()
		return true, nil
	case retry:
		msg.NakWithDelay(v.delay)
	default:
		// Handled is acknowledged, even when the consumer is told to stop
		// at this very moment: else the event comes again only after
		// AckWait, and twice. DoubleAck waits for the server to confirm,
		// so that a caller that closes the connection once Consume
		// returns does not lose the acknowledgement.
		ackCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ackBudget)
		defer cancel()
		if err := msg.DoubleAck(ackCtx); err != nil {
			return false, fmt.Errorf("consumer %s: acknowledge event %s: %w", c.durable, ev.GetId(), err)
		}
	}
	return false, nil
}
