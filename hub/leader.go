package hub

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"git.coopcloud.tech/coop-cloud/meta/notify"
)

// Two hubs of one log may run at once against one NATS cluster, for high
// availability. Publishing needs no coordination: both publish what git
// has, and the stream keeps each event once, since its message id is the
// event's id (notify.Message) and the stream drops a repeat within
// notify.DuplicateWindow. Webhooks do: an endpoint that two hubs both
// deliver to would get every event twice. So one hub at a time delivers
// them, the one that holds the webhooks lease, a key in leaseBucket that
// lapses hubLeaseTTL after its holder stops renewing it (SIGKILL, a lost
// machine); the other hub then takes it, reads the endpoints' cursors the
// first one saved after each event, and goes on from there. The event the
// first one was posting when it died is posted again (with the same
// webhook-id, which the spec tells endpoints to deduplicate on): at least
// once, never lost. One lease, not a claim per event: deliveries keep
// their order, and a claim per (webhook, event) would still need a holder
// to retry it.
//
// This is not notify's follower lease: a second follower under a name is
// refused, a second hub waits its turn.
const (
	leaseBucket = "META_HUB_LEASE"
	webhooksKey = "webhooks"
	hubLeaseTTL = 10 * time.Second
)

func leaseConfig(ttl time.Duration) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{Bucket: leaseBucket, Description: "meta hub: which hub delivers the webhooks", History: 1, TTL: ttl}
}

// leader is this hub's hold on the webhooks lease.
type leader struct {
	kv  jetstream.KeyValue
	ttl time.Duration
	me  []byte
	mu  sync.Mutex
	rev uint64 // of the hold; 0 while not holding
	// renewed is when the last successful take or renewal was sent: the
	// server's TTL runs from when it stored it, later, so a hold believed
	// until renewed+ttl is never believed after it lapsed.
	renewed time.Time
}

func newLeader(kv jetstream.KeyValue, ttl time.Duration) *leader {
	me, _ := json.Marshal(notify.NewHolder())
	return &leader{kv: kv, ttl: ttl, me: me}
}

// holds says whether this hub may deliver now.
func (l *leader) holds() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rev != 0 && time.Since(l.renewed) < l.ttl
}

// try renews the hold, or takes the lease when it is free; gained says
// this hub holds it and did not before.
func (l *leader) try(ctx context.Context) (gained bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	had := l.rev != 0 && time.Since(l.renewed) < l.ttl
	sent := time.Now()
	if l.rev != 0 {
		rev, err := l.kv.Update(ctx, webhooksKey, l.me, l.rev)
		if err == nil {
			l.rev, l.renewed = rev, sent
			return !had
		}
		if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return false // NATS away: holds() runs out on its own
		}
		l.rev = 0 // lapsed, maybe taken
	}
	rev, err := l.kv.Create(ctx, webhooksKey, l.me)
	if errors.Is(err, jetstream.ErrKeyExists) {
		// Held: by the other hub, or by this one under a revision it
		// never heard of (a take or renewal whose answer was lost). Its
		// own token says which; its own is renewed at once, so that the
		// hold it believes in runs from a write it saw.
		e, gerr := l.kv.Get(ctx, webhooksKey)
		if gerr != nil || !bytes.Equal(e.Value(), l.me) {
			return false
		}
		if rev, err = l.kv.Update(ctx, webhooksKey, l.me, e.Revision()); err != nil {
			return false
		}
		l.rev, l.renewed = rev, sent
		return !had
	}
	if err != nil {
		return false // NATS away
	}
	l.rev, l.renewed = rev, sent
	return true
}

// keep renews the hold, or waits for the lease, every ttl/3 until ctx
// ends; gained is called each time this hub takes it.
func (l *leader) keep(ctx context.Context, gained func()) {
	t := time.NewTicker(l.ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if l.try(ctx) {
			gained()
		}
	}
}

// release lets go of the lease, unless the other hub holds it by now.
func (l *leader) release() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.rev == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	l.kv.Delete(ctx, webhooksKey, jetstream.LastRevision(l.rev))
	l.rev = 0
}
