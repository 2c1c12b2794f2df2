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

// StreamConfig is the stream meta creates on first use, kept on one
// server; Prepare and Connect give it the replicas they are asked for.
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

// ErrCannotPlace means the NATS cluster cannot keep as many replicas of a
// stream or bucket as asked: it has fewer JetStream servers than that, or
// too few of them are up, or it is one server.
var ErrCannotPlace = errors.New("NATS cannot place the replicas")

// placement codes are the JetStream API's answers to a stream of more
// replicas than the cluster can place: no suitable peers, insufficient
// resources, replicas on a server that is not clustered.
var placement = map[jetstream.ErrorCode]bool{10005: true, 10023: true, 10074: true}

// placed wraps err, the answer to creating or updating what with replicas,
// in ErrCannotPlace when the cluster could not place them.
func placed(what string, replicas int, err error) error {
	var api *jetstream.APIError
	if errors.As(err, &api) && placement[api.ErrorCode] {
		return fmt.Errorf("%w: %s with %d replicas: %v; replicas need a JetStream cluster of at least as many servers, that many of them up",
			ErrCannotPlace, what, replicas, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// EnsureStream creates the events stream with replicas copies (0 is 1),
// or returns it when it exists, with whatever limits its operators set
// since; one kept on fewer servers than replicas is raised to replicas.
// Never lowered: a collective that raised it by hand (nats stream edit)
// keeps its copies when a hub starts without saying how many.
func EnsureStream(ctx context.Context, js jetstream.JetStream, replicas int) (jetstream.Stream, error) {
	replicas = max(replicas, 1)
	s, err := js.Stream(ctx, StreamName)
	if err == nil {
		return raise(ctx, js, s, replicas)
	}
	if !errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, fmt.Errorf("look up stream %s: %w", StreamName, err)
	}
	cfg := StreamConfig()
	cfg.Replicas = replicas
	s, err = js.CreateStream(ctx, cfg)
	if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		if s, err = js.Stream(ctx, StreamName); err != nil { // created meanwhile by another hub
			return nil, fmt.Errorf("look up stream %s: %w", StreamName, err)
		}
		return raise(ctx, js, s, replicas)
	}
	if err != nil {
		return nil, placed("create stream "+StreamName, replicas, err)
	}
	return s, nil
}

// raise brings s to replicas copies when it has fewer.
func raise(ctx context.Context, js jetstream.JetStream, s jetstream.Stream, replicas int) (jetstream.Stream, error) {
	cfg := s.CachedInfo().Config
	if cfg.Replicas >= replicas {
		return s, nil
	}
	cfg.Replicas = replicas
	s, err := js.UpdateStream(ctx, cfg)
	if err != nil {
		return nil, placed("raise stream "+StreamName+" to more replicas", replicas, err)
	}
	return s, nil
}

// EnsureBucket creates the key-value bucket cfg describes with replicas
// copies (0 is 1), or brings one that exists to cfg's settings, keeping
// its replicas when it has more (as EnsureStream does).
func EnsureBucket(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig, replicas int) (jetstream.KeyValue, error) {
	cfg.Replicas = max(replicas, 1)
	if kv, err := js.KeyValue(ctx, cfg.Bucket); err == nil {
		st, err := kv.Status(ctx)
		if err != nil {
			return nil, fmt.Errorf("bucket %s: %w", cfg.Bucket, err)
		}
		if b, ok := st.(*jetstream.KeyValueBucketStatus); ok {
			cfg.Replicas = max(cfg.Replicas, b.StreamInfo().Config.Replicas)
		}
	} else if !errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, fmt.Errorf("bucket %s: %w", cfg.Bucket, err)
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, cfg)
	if err != nil {
		return nil, placed("bucket "+cfg.Bucket, cfg.Replicas, err)
	}
	return kv, nil
}

// Prepare makes the events stream and the followers' buckets exist, with
// replicas copies each (0 is 1), and brings the buckets' settings (their
// TTLs) to this meta's: what the hub does once it connects, so that
// followers, whose credentials allow them to use these but not to make or
// change them, find them ready.
func Prepare(ctx context.Context, js jetstream.JetStream, replicas int) error {
	if _, err := EnsureStream(ctx, js, replicas); err != nil {
		return err
	}
	for _, cfg := range []jetstream.KeyValueConfig{leasesConfig(), parkedConfig()} {
		if _, err := EnsureBucket(ctx, js, cfg, replicas); err != nil {
			return err
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
	// Replicas is how many servers of a cluster keep the stream when
	// Connect creates it (see EnsureStream); 0 is 1.
	Replicas int
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
	if _, err := EnsureStream(ctx, js, o.Replicas); err != nil {
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
