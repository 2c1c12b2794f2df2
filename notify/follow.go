package notify

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/projects"
	"git.coopcloud.tech/coop-cloud/meta/store/record"
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

// PromotionFilter is the subject of ref's promotions, as Subject makes it
// for a promotion event in the channel's log:
// meta.events._recipes.<recipe>.<channel>.promote.
func PromotionFilter(ref projects.ChannelRef) (string, error) {
	a := ref.Address()
	parts := []string{a.Project, a.Env, a.App, kindToken(metav1.Kind_KIND_PROMOTE)}
	for i, p := range parts {
		t, err := Token(p)
		if err != nil {
			return "", fmt.Errorf("channel %s: %w", ref, err)
		}
		parts[i] = t
	}
	return SubjectPrefix + "." + strings.Join(parts, "."), nil
}

// FollowOptions say what to follow, as whom, from where, and what becomes
// of an event its handler fails on.
type FollowOptions struct {
	Options
	// Name names the durable consumer: a follower with the same name
	// resumes where the last one stopped. One follower at a time holds a
	// name (see LeaseBucket).
	Name string
	// Filter is a subject filter (see FilterSubject).
	Filter string
	// FromStart starts a follower new under Name with the first event the
	// stream keeps, and Since (when set) with the first one published at
	// or after it; else it starts with the events published from now on.
	// A follower that exists resumes where it stopped whatever they say.
	FromStart bool
	Since     time.Time
	// MaxAttempts is how many times an event is given to the handler
	// before it is parked (see ParkedBucket); 0 never parks.
	MaxAttempts int
	// Backoff is the pause after an event's first failed attempt; it
	// doubles after each one, up to MaxBackoff (or Backoff, when longer).
	// Zero is one second.
	Backoff time.Duration
	// Logf hears what Follow rides out: NATS unreachable and then
	// reachable again (one line each), an attempt that failed, an event
	// parked, any other error that a second try meets again (once until
	// it changes). nil ignores them.
	Logf func(format string, args ...any)
}

// MaxBackoff caps the pause between two attempts at an event.
const MaxBackoff = 5 * time.Minute

// reconnectWait is how long a follower waits between two tries to reach
// NATS.
const reconnectWait = time.Second

// Fatal marks a handler's error as one that no retry mends (the output it
// writes to is gone): Follow gives the event back, stops and returns the
// error.
func Fatal(err error) error { return fatalError{err} }

type fatalError struct{ error }

func (e fatalError) Unwrap() error { return e.error }

// unreachableError is a failure to reach NATS or to stay connected.
type unreachableError struct{ error }

func (e unreachableError) Unwrap() error { return e.error }

// Follow calls handle with every event on the stream that matches the
// filter and that this follower (by name) has not handled yet, one at a
// time in stream order, until ctx ends. An event is acknowledged when
// handle returns nil; otherwise it comes again after a backoff, and the
// events behind it wait, until the MaxAttempts-th attempt fails: then it is
// parked and the next event comes. A follower outlives NATS: it waits for
// the server to come (back) and carries on. Follow fails at once with an
// *InUseError when another follower holds the name, when the server refuses
// its credentials, and with the error of a handle that returned Fatal.
func Follow(ctx context.Context, o FollowOptions, handle func(*metav1.Event) error) error {
	if err := ValidName(o.Name); err != nil {
		return err
	}
	f := &follower{o: o, lease: newLease(o.Name), handle: handle}
	for {
		err := f.session(ctx)
		var fatal fatalError
		switch {
		case errors.Is(err, ErrNameInUse):
			return err
		case errors.As(err, &fatal):
			return fatal.error
		case err == nil || ctx.Err() != nil:
			return nil
		}
		f.trouble(err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(reconnectWait):
		}
	}
}

// follower is one Follow: its hold on the name and what it last said,
// kept across connections.
type follower struct {
	o      FollowOptions
	lease  *lease
	handle func(*metav1.Event) error
	said   string // the last trouble reported, "" once following again
	seen   string // an error met once and not reported yet
	away   bool   // NATS was reported unreachable
}

func (f *follower) logf(format string, args ...any) {
	if f.o.Logf != nil {
		f.o.Logf(format, args...)
	}
}

// trouble reports err unless it was the last thing reported: NATS being
// away is one line however long it stays away. Any other error is
// reported when the next try meets it again: one that a reconnect mends
// is not worth a line, nor is what a server going away says before it
// hangs up ("server shutdown", "no responders"), which is followed by the
// unreachable line.
func (f *follower) trouble(err error) {
	msg := err.Error()
	if errors.As(err, new(unreachableError)) {
		msg = fmt.Sprintf("NATS at %s is unreachable; retrying", DisplayURL(f.o.URL))
		f.away = true
	} else if msg != f.seen {
		f.seen = msg
		return
	}
	f.seen = ""
	if msg != f.said {
		f.logf("%s", msg)
		f.said = msg
	}
}

// following says NATS is back if it was reported away.
func (f *follower) following() {
	if f.away {
		f.logf("NATS at %s is reachable again", DisplayURL(f.o.URL))
	}
	f.away, f.said, f.seen = false, "", ""
}

// session connects, holds the name and follows until ctx ends (nil), the
// connection fails, or the name is lost.
func (f *follower) session(ctx context.Context) error {
	o := f.o
	// No reconnects within a session: a lost connection ends it, and
	// Follow, which connects again, is the one place that waits for NATS.
	opts := append([]nats.Option{nats.Name("meta watch " + o.Name), nats.Timeout(o.ConnectTimeout), nats.MaxReconnects(0)}, o.NATSOptions...)
	nc, err := nats.Connect(o.URL, opts...)
	if errors.Is(err, nats.ErrAuthorization) || errors.Is(err, nats.ErrAuthExpired) || errors.Is(err, nats.ErrAuthRevoked) {
		// No retry mends it, and "unreachable" would say the wrong thing.
		return fatalError{fmt.Errorf("NATS at %s refused this follower: %w; give the follower credentials of the hub (--nats-nkey FILE, e.g. the follower.nk meta serve writes, or --nats-creds FILE)", DisplayURL(o.URL), err)}
	}
	if err != nil {
		return unreachableError{err}
	}
	defer nc.Close()
	lost := func(err error) error {
		if !nc.IsConnected() {
			return unreachableError{err}
		}
		return err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("follower %s: %w", o.Name, err)
	}
	kv, err := leases(ctx, js)
	if err == nil {
		err = f.lease.acquire(ctx, kv)
	}
	if err != nil {
		return lost(err)
	}
	c, err := NewConsumer(ctx, js, ConsumerConfig{
		Durable:     o.Name,
		Description: "meta watch",
		Filter:      o.Filter,
		New:         !o.FromStart,
		Since:       o.Since,
		AckWait:     time.Minute,
	})
	if err != nil {
		if ctx.Err() != nil {
			f.lease.release(kv) // stopped right after taking the name
		}
		return lost(err) // it names the consumer, which is the follower's name
	}
	f.following()

	sctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		f.lease.keep(sctx, kv, cancel)
	}()
	var fatal error
	err = c.Consume(sctx, func(ev *metav1.Event, d Delivery) Verdict {
		v, err := f.verdict(sctx, js, ev, d)
		if err != nil {
			fatal = err
		}
		return v
	})
	cancel(nil)
	wg.Wait()
	if cause := context.Cause(sctx); errors.Is(cause, ErrNameInUse) {
		return cause
	}
	if err != nil && fatal == nil {
		return lost(err)
	}
	f.lease.release(kv)
	return fatal
}

// verdict hands ev to the handler and says what becomes of it: acked,
// retried after a backoff, or parked after the last attempt. A Fatal
// error gives it back (Stop) and is returned.
func (f *follower) verdict(ctx context.Context, js jetstream.JetStream, ev *metav1.Event, d Delivery) (Verdict, error) {
	err := f.handle(ev)
	if err == nil {
		return Ack, nil
	}
	var fatal fatalError
	if errors.As(err, &fatal) {
		return Stop, fatal
	}
	limit := f.o.MaxAttempts
	delay := f.backoff(d.Attempt)
	if limit > 0 && d.Attempt >= uint64(limit) {
		// Parking outlives a stop under way: it is one write.
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ackBudget)
		defer cancel()
		if _, perr := park(pctx, js, f.o.Name, ev, d, err); perr != nil {
			f.logf("event %s: %v (attempt %d of %d); it could not be parked (%v), so it comes again in %s", ev.GetId(), err, d.Attempt, limit, perr, delay)
			return RetryAfter(delay), nil
		}
		f.logf("event %s parked after %s: %v; later events go on (meta watch --name %s --parked lists it)", ev.GetId(), record.Count(int(d.Attempt), "attempt"), err, f.o.Name)
		return Drop, nil
	}
	of := ""
	if limit > 0 {
		of = fmt.Sprintf(" of %d", limit)
	}
	f.logf("event %s: %v (attempt %d%s); again in %s", ev.GetId(), err, d.Attempt, of, delay)
	return RetryAfter(delay), nil
}

// backoff is the pause after the given attempt failed: Backoff, doubled
// for each attempt after the first, capped.
func (f *follower) backoff(attempt uint64) time.Duration {
	b := f.o.Backoff
	if b <= 0 {
		b = time.Second
	}
	ceiling := max(MaxBackoff, b)
	for i := uint64(1); i < attempt && b < ceiling; i++ {
		b *= 2
	}
	return min(b, ceiling)
}

// maxNameLen is the longest name NATS takes for a durable consumer.
const maxNameLen = 255

// ErrName means a follower name that cannot name a NATS durable consumer.
var ErrName = errors.New("invalid follower name")

// ValidName accepts a follower name: letters, digits, '_' and '-', which
// NATS takes as a durable consumer's name and as a key (its other
// characters, '.', '*', '>', spaces and the like, it does not).
func ValidName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: it is empty", ErrName)
	}
	if len(name) > maxNameLen {
		return fmt.Errorf("%w: %d bytes long, at most %d", ErrName, len(name), maxNameLen)
	}
	for _, c := range name {
		if !tokenRune(c) {
			return fmt.Errorf("%w %q: %q is not allowed, only letters, digits, '_' and '-' (it names a NATS durable consumer)", ErrName, name, c)
		}
	}
	return nil
}

// DisplayURL is a server URL (or a comma-separated list of them) as meta
// prints it: without the user, password or token a URL may carry.
func DisplayURL(s string) string {
	parts := strings.Split(s, ",")
	for i, p := range parts {
		p = strings.TrimSpace(p)
		scheme, rest := "", p
		if j := strings.Index(p, "://"); j >= 0 {
			scheme, rest = p[:j+3], p[j+3:]
		}
		host, tail := rest, ""
		if j := strings.IndexAny(rest, "/?#"); j >= 0 {
			host, tail = rest[:j], rest[j:]
		}
		if j := strings.LastIndex(host, "@"); j >= 0 {
			host = host[j+1:]
		}
		parts[i] = scheme + host + tail
	}
	return strings.Join(parts, ",")
}
