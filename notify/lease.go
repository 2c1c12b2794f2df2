package notify

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// LeaseBucket is the key-value bucket in which each running follower holds
// its name, one key per name, so that a second follower under the same
// name is refused instead of sharing (and so splitting) the events.
const LeaseBucket = "META_WATCH_LEASES"

// LeaseTTL is how long a follower's hold on its name outlives its last
// renewal: how long a follower that died without letting go (SIGKILL, a
// machine lost) keeps a new one under its name out. A running follower
// renews every LeaseTTL/3; one that stops lets go at once.
const LeaseTTL = 10 * time.Second

// ErrNameInUse means another follower holds the name.
var ErrNameInUse = errors.New("follower name in use")

// InUseError says who holds a follower's name.
type InUseError struct {
	Name   string
	Holder Holder // zero when the hold cannot be read
}

func (e *InUseError) Error() string {
	who := "another meta watch"
	if e.Holder.Host != "" {
		who += fmt.Sprintf(" (pid %d on %s, since %s)", e.Holder.PID, e.Holder.Host, e.Holder.Since.UTC().Format(time.RFC3339))
	}
	return fmt.Sprintf("follower name %q is in use by %s: one watcher per --name, so give this one a --name of its own (it gets every event too), "+
		"or stop the other; a watcher that died lets go of its name within %s", e.Name, who, LeaseTTL)
}

// Is makes errors.Is(err, ErrNameInUse) hold.
func (e *InUseError) Is(target error) bool { return target == ErrNameInUse }

// Holder is what a follower writes in its hold: enough for a person to
// find it, and a token only it knows.
type Holder struct {
	Host  string    `json:"host"`
	PID   int       `json:"pid"`
	Since time.Time `json:"since"`
	Token string    `json:"token"`
}

// lease is one follower's hold on its name, kept across connections: rev
// is the revision of its hold, 0 while it holds none.
type lease struct {
	name  string
	me    Holder
	value []byte
	rev   uint64
}

// NewHolder is this process as the holder of a lease: its host and pid,
// now, and a fresh random token. The hub's webhooks lease writes it too.
func NewHolder() Holder {
	host, _ := os.Hostname()
	tok := make([]byte, 16)
	rand.Read(tok)
	return Holder{Host: host, PID: os.Getpid(), Since: time.Now().UTC(), Token: hex.EncodeToString(tok)}
}

func newLease(name string) *lease {
	me := NewHolder()
	value, _ := json.Marshal(me)
	return &lease{name: name, me: me, value: value}
}

// leasesConfig is the bucket of holds. Its TTL is what makes a hold that
// is not renewed lapse.
func leasesConfig() jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket: LeaseBucket, Description: "meta watch: which follower runs under each name", History: 1, TTL: LeaseTTL,
	}
}

// leases opens the bucket of holds.
func leases(ctx context.Context, js jetstream.JetStream) (jetstream.KeyValue, error) {
	return openBucket(ctx, js, leasesConfig())
}

// openBucket opens a followers' bucket, creating it when it does not exist
// yet. It does not update one that exists: the hub does that (EnsureStream),
// and a follower's credentials allow it to use the bucket, not to change it.
func openBucket(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, cfg.Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateKeyValue(ctx, cfg)
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = js.KeyValue(ctx, cfg.Bucket) // created meanwhile
		}
	}
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", cfg.Bucket, err)
	}
	return kv, nil
}

// acquire takes the name, or renews the hold this lease has on it. It
// fails with an *InUseError when another follower holds the name.
func (l *lease) acquire(ctx context.Context, kv jetstream.KeyValue) error {
	if l.rev != 0 {
		rev, err := kv.Update(ctx, l.name, l.value, l.rev)
		if err == nil {
			l.rev = rev
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return fmt.Errorf("follower %s: renew its hold on the name: %w", l.name, err)
		}
		// The hold lapsed (NATS was away longer than LeaseTTL) or was
		// taken: take it again if it is free.
		l.rev = 0
	}
	// Three tries: a hold can lapse between the create that finds it and
	// the read of who holds it.
	for try := 0; try < 3; try++ {
		rev, err := kv.Create(ctx, l.name, l.value)
		if err == nil {
			l.rev = rev
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return fmt.Errorf("follower %s: hold the name: %w", l.name, err)
		}
		e, err := kv.Get(ctx, l.name)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("follower %s: read who holds the name: %w", l.name, err)
		}
		var h Holder
		if json.Unmarshal(e.Value(), &h) != nil {
			h = Holder{} // not a hold meta wrote: someone else's, still
		}
		if h.Token == l.me.Token {
			l.rev = e.Revision() // ours: an update whose answer was lost
			return nil
		}
		return &InUseError{Name: l.name, Holder: h}
	}
	return fmt.Errorf("follower %s: the hold on the name keeps changing", l.name)
}

// keep renews the hold every LeaseTTL/3 until ctx ends, and calls lost
// when another follower took the name. Renewals that fail otherwise (NATS
// away) are tried again at the next tick; the lost connection ends the
// follower's session anyway.
func (l *lease) keep(ctx context.Context, kv jetstream.KeyValue, lost func(error)) {
	t := time.NewTicker(LeaseTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := l.acquire(ctx, kv); errors.Is(err, ErrNameInUse) {
			lost(err)
			return
		}
	}
}

// release lets go of the name, unless someone else holds it by now.
func (l *lease) release(kv jetstream.KeyValue) {
	if l.rev == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), ackBudget)
	defer cancel()
	kv.Delete(ctx, l.name, jetstream.LastRevision(l.rev))
	l.rev = 0
}
