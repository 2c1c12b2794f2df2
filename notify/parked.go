package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	metav1 "git.coopcloud.tech/coop-cloud/meta/gen/meta/v1"
	"git.coopcloud.tech/coop-cloud/meta/store/record"
)

// ParkedBucket is the key-value bucket that records the events followers
// gave up on, one key per follower and stream sequence
// ("<follower>.<sequence>"), kept as long as the stream keeps events.
const ParkedBucket = "META_WATCH_PARKED"

// Parked is an event a follower gave up on after its last attempt; its
// JSON keys are those of `meta watch --parked --json`.
type Parked struct {
	Follower string    `json:"follower"`
	EventID  string    `json:"event_id"`
	Domain   string    `json:"domain"`
	Kind     string    `json:"kind"`
	Sequence uint64    `json:"stream_sequence"`
	Attempts uint64    `json:"attempts"`
	Error    string    `json:"error"`
	Time     time.Time `json:"parked_at"`
}

func parkedConfig() jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{Bucket: ParkedBucket, Description: "meta watch: events a follower gave up on", History: 1, TTL: MaxAge}
}

// park records that the follower gave up on ev.
func park(ctx context.Context, js jetstream.JetStream, follower string, ev *metav1.Event, d Delivery, cause error) (Parked, error) {
	p := Parked{
		Follower: follower, EventID: ev.GetId(), Domain: ev.GetAddress().GetApp(), Kind: record.KindName(ev.GetKind()),
		Sequence: d.Sequence, Attempts: d.Attempt, Error: cause.Error(), Time: time.Now().UTC(),
	}
	kv, err := openBucket(ctx, js, parkedConfig())
	if err != nil {
		return p, err
	}
	data, err := json.Marshal(p)
	if err != nil {
		return p, err
	}
	if _, err := kv.Put(ctx, follower+"."+strconv.FormatUint(d.Sequence, 10), data); err != nil {
		return p, fmt.Errorf("record event %s as parked: %w", p.EventID, err)
	}
	return p, nil
}

// ListParked connects to NATS once and returns the events the follower
// named name parked, oldest first.
func ListParked(ctx context.Context, o Options, name string) ([]Parked, error) {
	if err := ValidName(name); err != nil {
		return nil, err
	}
	opts := append([]nats.Option{nats.Name("meta watch --parked"), nats.Timeout(o.ConnectTimeout), nats.MaxReconnects(0)}, o.NATSOptions...)
	nc, err := nats.Connect(o.URL, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s: %w", DisplayURL(o.URL), err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	kv, err := js.KeyValue(ctx, ParkedBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return []Parked{}, nil // nothing was ever parked
	}
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", ParkedBucket, err)
	}
	keys, err := kv.ListKeysFiltered(ctx, name+".*")
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", ParkedBucket, err)
	}
	out := []Parked{}
	seen := map[string]bool{}
	for key := range keys.Keys() {
		if seen[key] {
			continue // a lister may give a key twice
		}
		seen[key] = true
		e, err := kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("bucket %s: %s: %w", ParkedBucket, key, err)
		}
		var p Parked
		if err := json.Unmarshal(e.Value(), &p); err != nil || p.Follower != name {
			return nil, fmt.Errorf("bucket %s: %s is not a parked event meta wrote; delete it with `nats kv del %s %s`", ParkedBucket, key, ParkedBucket, key)
		}
		out = append(out, p)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b Parked) int { return a.Time.Compare(b.Time) })
	return out, nil
}
