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

// StreamName is the JetStream stream that keeps events for followers.
const StreamName = "META_EVENTS"

// Stream limits: a year of events, at most 1 GiB, each event kept once
// however often it is published within DuplicateWindow. Only the hub
// publishes, from git; it publishes an event twice when it stopped between
// publishing and remembering how far it got, or when its record of that
// was lost. The window is long so that such a second publish, days later,
// is still dropped.
const (
	MaxAge          = 365 * 24 * time.Hour
	MaxBytes        = 1 << 30
	DuplicateWindow = 7 * 24 * time.Hour
)

// StreamConfig is the stream meta creates on first use.
func StreamConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        StreamName,
		Description: "meta operator log events, one CloudEvent per event",
		Subjects:    []string{SubjectPrefix + ".>"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      MaxAge,
		MaxBytes:    MaxBytes,
		Discard:     jetstream.DiscardOld,
		Duplicates:  DuplicateWindow,
	}
}

// EnsureStream creates the events stream, or returns it when it exists
// (with whatever limits its operators set since).
func EnsureStream(ctx context.Context, js jetstream.JetStream) (jetstream.Stream, error) {
	s, err := js.Stream(ctx, StreamName)
	if err == nil {
		return s, nil
	}
	if !errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, fmt.Errorf("look up stream %s: %w", StreamName, err)
	}
	s, err = js.CreateStream(ctx, StreamConfig())
	if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		return js.Stream(ctx, StreamName) // created meanwhile by another publisher
	}
	if err != nil {
		return nil, fmt.Errorf("create stream %s: %w", StreamName, err)
	}
	return s, nil
}

// Prepare makes the events stream and the followers' buckets exist, and
// brings the buckets' settings (their TTLs) to this meta's: what the hub
// does once it connects, so that followers, whose credentials allow them
// to use these but not to make or change them, find them ready.
func Prepare(ctx context.Context, js jetstream.JetStream) error {
	if _, err := EnsureStream(ctx, js); err != nil {
		return err
	}
	for _, cfg := range []jetstream.KeyValueConfig{leasesConfig(), parkedConfig()} {
		if _, err := js.CreateOrUpdateKeyValue(ctx, cfg); err != nil {
			return fmt.Errorf("bucket %s: %w", cfg.Bucket, err)
		}
	}
	return nil
}

// Publisher publishes events to the stream: the hub's, which is the one
// publisher of events (it publishes what it read from git).
type Publisher struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	source string
	asJSON bool
}

// Options say how to reach NATS and what to publish.
type Options struct {
	// URL is the server or cluster, e.g. nats://127.0.0.1:4222 (several,
	// comma separated, for a cluster).
	URL string
	// Source is the ce-source of every event: what log it comes from.
	Source string
	// JSON publishes the events' JSON view instead of protobuf.
	JSON bool
	// ConnectTimeout bounds how long connecting may take.
	ConnectTimeout time.Duration
	// NATSOptions are passed on, for credentials (nats.UserCredentials,
	// nats.Token, nats.UserInfo, TLS).
	NATSOptions []nats.Option
}

// Connect reaches NATS and makes sure the stream exists.
func Connect(ctx context.Context, o Options) (*Publisher, error) {
	opts := append([]nats.Option{nats.Name("meta"), nats.Timeout(o.ConnectTimeout), nats.MaxReconnects(0)}, o.NATSOptions...)
	nc, err := nats.Connect(o.URL, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s: %w", DisplayURL(o.URL), err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	if _, err := EnsureStream(ctx, js); err != nil {
		nc.Close()
		return nil, err
	}
	return &Publisher{nc: nc, js: js, source: o.Source, asJSON: o.JSON}, nil
}

// Publish puts ev on the stream; publishing the same event again is
// acknowledged and dropped as a duplicate.
func (p *Publisher) Publish(ctx context.Context, ev *metav1.Event) error {
	msg, err := Message(ev, p.source, p.asJSON)
	if err != nil {
		return err
	}
	if _, err := p.js.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("publish event %s: %w", ev.GetId(), err)
	}
	return nil
}

// Close drains and closes the connection.
func (p *Publisher) Close() { p.nc.Close() }

// Ping reaches NATS as Connect would and asks for the JetStream account,
// creating nothing: what `meta doctor` checks.
func Ping(ctx context.Context, o Options) error {
	opts := append([]nats.Option{nats.Name("meta doctor"), nats.Timeout(o.ConnectTimeout), nats.MaxReconnects(0)}, o.NATSOptions...)
	nc, err := nats.Connect(o.URL, opts...)
	if err != nil {
		return fmt.Errorf("connect to NATS at %s: %w", DisplayURL(o.URL), err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	if _, err := js.AccountInfo(ctx); err != nil {
		return fmt.Errorf("NATS at %s answers, but without JetStream for this account: %w", DisplayURL(o.URL), err)
	}
	return nil
}
