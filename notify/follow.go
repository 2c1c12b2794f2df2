package notify

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/projects"
)

// FilterSubject turns what a person types into a subject filter: nothing
// for every event, an app's domain for its events, or a subject under
// meta.events as it is.
func FilterSubject(filter string) (string, error) {
	switch {
	case filter == "":
		return SubjectPrefix + ".>", nil
	case strings.HasPrefix(filter, SubjectPrefix+"."):
		return filter, nil
	}
	if err := projects.ValidateApp(filter); err != nil {
		return "", fmt.Errorf("filter %q is neither a domain nor a subject under %s: %w", filter, SubjectPrefix, err)
	}
	app, _ := Token(filter)
	return SubjectPrefix + ".*.*." + app + ".*", nil
}

// FollowOptions say what to follow and as whom.
type FollowOptions struct {
	Options
	// Name names the durable consumer: a follower with the same name
	// resumes where the last one stopped.
	Name string
	// Filter is a subject filter (see FilterSubject).
	Filter string
	// OnError hears about problems Follow rides out (NATS not up yet, a
	// lost connection); nil ignores them.
	OnError func(error)
}

// Follow calls handle with every event on the stream that matches the
// filter and that this follower (by name) has not handled yet, one at a
// time in stream order, until ctx ends. An event is acknowledged only when
// handle returns nil; otherwise it comes again after a pause. A follower
// outlives NATS: it waits for the server to come (back) and carries on.
func Follow(ctx context.Context, o FollowOptions, handle func(*metav1.Event) error) error {
	if err := validConsumerName(o.Name); err != nil {
		return err
	}
	report := o.OnError
	if report == nil {
		report = func(error) {}
	}
	for ctx.Err() == nil {
		err := followOnce(ctx, o, handle)
		if err == nil || ctx.Err() != nil {
			return nil
		}
		report(err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
	return nil
}

// followRetry is how soon an event whose handler failed comes again.
const followRetry = 5 * time.Second

// followOnce follows until ctx ends or the connection fails.
func followOnce(ctx context.Context, o FollowOptions, handle func(*metav1.Event) error) error {
	opts := append([]nats.Option{nats.Name("meta watch " + o.Name), nats.Timeout(o.ConnectTimeout), nats.MaxReconnects(-1)}, o.NATSOptions...)
	nc, err := nats.Connect(o.URL, opts...)
	if err != nil {
		return fmt.Errorf("connect to NATS at %s: %w (retrying)", o.URL, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("follower %s: %w", o.Name, err)
	}
	c, err := NewConsumer(ctx, js, ConsumerConfig{
		Durable:     o.Name,
		Description: "meta watch",
		Filter:      o.Filter,
		AckWait:     time.Minute,
	})
	if err != nil {
		return err // it names the consumer, which is the follower's name
	}
	return c.Consume(ctx, func(ev *metav1.Event, _ Delivery) Verdict {
		if err := handle(ev); err != nil {
			return RetryAfter(followRetry)
		}
		return Ack
	})
}

// validConsumerName accepts what NATS takes as a consumer name: a subject
// token as it stands (Token would change a '.').
func validConsumerName(name string) error {
	if t, err := Token(name); err != nil || t != name {
		return fmt.Errorf("follower name %q: only letters, digits, '_' and '-'", name)
	}
	return nil
}
